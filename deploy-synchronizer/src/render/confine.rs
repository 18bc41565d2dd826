//! A Kustomization reads only the repository it is in.
//!
//! kustomize keeps a kustomization's *files* below its own directory, but it loads any
//! *directory* it is given as a resource, base or component from anywhere on the disk:
//! `resources: [../../../../checkouts/other-tenant/apps]` would render another tenant's checkout,
//! or any kustomization on the synchronizer's disk, into this sync's namespace. Flux closes this
//! with a filesystem rooted at the repository; kustomize's command line has no such option. So
//! before it runs, every kustomization it would read is read here first, and a local reference
//! that leads out of the repository, by `..`, an absolute path or a symlink, refuses the render,
//! naming the file, the field and the reference.
//!
//! [`references`] (pure) lists a kustomization's local references; [`confine`] follows them
//! through the checkout. Remote references (`https://…`, `git@…`) are kustomize's business and
//! are left alone; so is a kustomization that does not parse (kustomize says why).

use std::collections::{BTreeSet, VecDeque};
use std::path::{Component, Path, PathBuf};

use serde_json::Value;
use sluice_shared::kustomize::KUSTOMIZATION_FILES;

use super::RenderError;

/// Fields whose entries are paths (or, in `patchesStrategicMerge`, inline patches).
const PATH_LISTS: [&str; 9] = [
    "resources",
    "bases",
    "components",
    "crds",
    "configurations",
    "generators",
    "transformers",
    "validators",
    "patchesStrategicMerge",
];

/// Fields whose entries are objects with a `path`.
const PATH_OBJECTS: [&str; 3] = ["patches", "patchesJson6902", "replacements"];

/// At most this many kustomizations are followed from one target (a generous bound for a tree
/// of overlays, bases and components; a cycle is followed once).
const MAX_KUSTOMIZATIONS: usize = 1000;

/// One local path a kustomization names: the field (`resources`, `configMapGenerator.files`)
/// and the path as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub field: String,
    pub path: String,
}

/// The local paths `kustomization` names, in the order written. Inline patches, URLs and
/// `git@` remotes are not paths.
pub fn references(kustomization: &Value) -> Vec<Reference> {
    let mut found = Vec::new();
    let mut add = |field: String, path: &str| {
        if is_local_path(path) {
            found.push(Reference {
                field,
                path: path.to_owned(),
            });
        }
    };
    for field in PATH_LISTS {
        for entry in entries(kustomization, field) {
            if let Some(path) = entry.as_str() {
                add(field.to_owned(), path);
            }
        }
    }
    for field in PATH_OBJECTS {
        for entry in entries(kustomization, field) {
            if let Some(path) = entry.get("path").and_then(Value::as_str) {
                add(format!("{field}.path"), path);
            }
        }
    }
    for generator in ["configMapGenerator", "secretGenerator"] {
        for entry in entries(kustomization, generator) {
            for file in entry
                .get("files")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                // `key=path` or `path`.
                if let Some(file) = file.as_str() {
                    let path = file.split_once('=').map_or(file, |(_, path)| path);
                    add(format!("{generator}.files"), path);
                }
            }
            for env in entry
                .get("envs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(env) = env.as_str() {
                    add(format!("{generator}.envs"), env);
                }
            }
            if let Some(env) = entry.get("env").and_then(Value::as_str) {
                add(format!("{generator}.env"), env);
            }
        }
    }
    if let Some(path) = kustomization
        .pointer("/openapi/path")
        .and_then(Value::as_str)
    {
        add("openapi.path".to_owned(), path);
    }
    found
}

fn entries<'a>(kustomization: &'a Value, field: &str) -> impl Iterator<Item = &'a Value> {
    kustomization
        .get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// A path, not an inline patch (a YAML document in a string) or a remote.
fn is_local_path(entry: &str) -> bool {
    !entry.is_empty()
        && !entry.contains('\n')
        && !entry.contains("://")
        && !entry.starts_with("git@")
}

/// `path` with `.` and `..` folded away, without touching the disk (`..` at `/` stays at `/`).
pub fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Follows every kustomization reachable from `dir` through its local references; `Err` names
/// the first reference that leads out of `root` (both canonical, as [`super::RenderTarget`]
/// holds them).
pub fn confine(root: &Path, dir: &Path) -> Result<(), RenderError> {
    let mut queue = VecDeque::from([dir.to_owned()]);
    let mut seen = BTreeSet::new();
    while let Some(dir) = queue.pop_front() {
        if !seen.insert(dir.clone()) || seen.len() > MAX_KUSTOMIZATIONS {
            continue;
        }
        let Some((file, kustomization)) = read_kustomization(&dir) else {
            continue;
        };
        for reference in references(&kustomization) {
            let escapes = || RenderError::KustomizationEscapes {
                file: shown(root, &file),
                field: reference.field.clone(),
                reference: reference.path.clone(),
            };
            let target = lexical(&dir.join(&reference.path));
            if !target.starts_with(root) {
                return Err(escapes());
            }
            // Through symlinks: where it really is. A missing path is kustomize's to report (or
            // a remote it fetches).
            let Ok(real) = std::fs::canonicalize(&target) else {
                continue;
            };
            if !real.starts_with(root) {
                return Err(escapes());
            }
            if real.is_dir() {
                queue.push_back(real);
            }
        }
    }
    Ok(())
}

/// The kustomization file of `dir` (kustomize's names, in its order) and its content, if it
/// has one that parses.
fn read_kustomization(dir: &Path) -> Option<(PathBuf, Value)> {
    let file = KUSTOMIZATION_FILES
        .iter()
        .map(|name| dir.join(name))
        .find(|file| file.is_file())?;
    let bytes = std::fs::read(&file).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let value = serde_saphyr::from_str::<Value>(text).ok()?;
    Some((file, value))
}

/// `file` relative to the repository, as the user knows it.
fn shown(root: &Path, file: &Path) -> String {
    file.strip_prefix(root)
        .unwrap_or(file)
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_field_that_names_a_path_is_listed_and_nothing_else() {
        let kustomization = json!({
            "resources": ["deployment.yaml", "../base", "https://github.com/org/repo//deploy?ref=v1", "git@github.com:org/repo.git"],
            "components": ["../components/tls"],
            "patchesStrategicMerge": ["patch.yaml", "apiVersion: v1\nkind: ConfigMap\n"],
            "patches": [{"path": "replicas.yaml", "target": {"kind": "Deployment"}}, {"patch": "- op: remove"}],
            "configMapGenerator": [{"name": "env", "files": ["app.properties", "key=../../secrets/key"], "envs": ["prod.env"]}],
            "secretGenerator": [{"name": "tls", "env": "tls.env"}],
            "openapi": {"path": "schema.json"},
            "images": [{"name": "web", "newTag": "1.2.3"}]
        });
        let listed: Vec<(String, String)> = references(&kustomization)
            .into_iter()
            .map(|r| (r.field, r.path))
            .collect();
        let want = [
            ("resources", "deployment.yaml"),
            ("resources", "../base"),
            ("components", "../components/tls"),
            ("patchesStrategicMerge", "patch.yaml"),
            ("patches.path", "replicas.yaml"),
            ("configMapGenerator.files", "app.properties"),
            ("configMapGenerator.files", "../../secrets/key"),
            ("configMapGenerator.envs", "prod.env"),
            ("secretGenerator.env", "tls.env"),
            ("openapi.path", "schema.json"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(f, p)| ((*f).to_owned(), (*p).to_owned()))
            .collect();
        assert_eq!(listed, want);
    }

    #[test]
    fn lexical_folds_dots_without_the_disk() {
        assert_eq!(
            lexical(Path::new("/repo/apps/prod/../../base/./x")),
            Path::new("/repo/base/x")
        );
        assert_eq!(lexical(Path::new("/repo/../../../etc")), Path::new("/etc"));
    }

    fn write(root: &Path, path: &str, content: &str) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    #[test]
    fn overlays_and_bases_inside_pass_a_base_outside_is_refused_by_name() {
        let disk = tempfile::tempdir().unwrap();
        let disk = std::fs::canonicalize(disk.path()).unwrap();
        let root = disk.join("repo");
        write(&root, "base/kustomization.yaml", "resources: [cm.yaml]\n");
        write(&root, "base/cm.yaml", "kind: ConfigMap\n");
        write(
            &root,
            "prod/kustomization.yaml",
            "resources:\n  - ../base\n  - https://example.com/remote.yaml\n",
        );
        assert!(confine(&root, &root.join("prod")).is_ok());

        // Another tenant's checkout beside this one, reached through the base.
        write(
            &disk,
            "other/kustomization.yaml",
            "resources: [secret.yaml]\n",
        );
        write(
            &root,
            "base/kustomization.yaml",
            "resources:\n  - cm.yaml\n  - ../../other   # theirs\n",
        );
        let error = confine(&root, &root.join("prod")).unwrap_err().to_string();
        assert!(error.contains("base/kustomization.yaml"), "{error}");
        assert!(error.contains("resources"), "{error}");
        assert!(error.contains("../../other"), "{error}");
    }

    #[test]
    fn a_symlink_out_of_the_repository_is_refused_and_a_cycle_ends() {
        let disk = tempfile::tempdir().unwrap();
        let disk = std::fs::canonicalize(disk.path()).unwrap();
        let root = disk.join("repo");
        write(&disk, "elsewhere/kustomization.yaml", "resources: []\n");
        write(&root, "a/kustomization.yaml", "resources: [../b]\n");
        write(&root, "b/kustomization.yaml", "resources: [../a]\n");
        assert!(
            confine(&root, &root.join("a")).is_ok(),
            "a cycle is followed once"
        );

        std::os::unix::fs::symlink(disk.join("elsewhere"), root.join("shared")).unwrap();
        write(
            &root,
            "a/kustomization.yaml",
            "resources: [../b, ../shared]\n",
        );
        let error = confine(&root, &root.join("a")).unwrap_err().to_string();
        assert!(error.contains("../shared"), "{error}");
    }
}
