use std::os::unix::fs::symlink;

use tempfile::TempDir;

use super::*;
use crate::render::{RenderMode, RenderOptions, render};

/// A checkout in a temporary directory, from `(relative path, contents)` pairs.
fn checkout(files: &[(&str, &str)]) -> TempDir {
    let root = tempfile::tempdir().unwrap();
    for (path, contents) in files {
        let path = root.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    }
    root
}

fn config_map(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: shop\n")
}

fn render_dir(root: &Path, sub_path: &str) -> Result<Vec<Manifest>, RenderErrors> {
    let target = RenderTarget::resolve(root, Path::new(sub_path))?;
    render_plain(&target, crate::render::DEFAULT_MAX_FILE_SIZE)
}

fn files_and_names(manifests: &[Manifest]) -> Vec<(String, String)> {
    manifests
        .iter()
        .map(|m| (m.source.file.clone(), m.object_ref.name.clone()))
        .collect()
}

fn errors(result: Result<Vec<Manifest>, RenderErrors>) -> Vec<RenderError> {
    result.expect_err("the render should fail").into_vec()
}

#[test]
fn nested_directories_in_sorted_order() {
    let root = checkout(&[
        ("apps/web/deploy.yml", &config_map("web-deploy")),
        ("apps/web/10-service.yaml", &config_map("web-service")),
        (
            "apps/api.json",
            r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "api"}}"#,
        ),
        ("apps/Zeta.YAML", &config_map("zeta")),
        ("apps/README.md", "# not a manifest\n"),
        ("apps/web/kustomization.yaml", "resources: [deploy.yml]\n"),
        ("apps/.github/workflows/ci.yaml", "on: push\n"),
        (".git/config.yaml", "not: rendered\n"),
        (
            "namespaces.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n",
        ),
    ]);
    let manifests = render_dir(root.path(), "").unwrap();
    let expected = [
        ("apps/Zeta.YAML", "zeta"),
        ("apps/api.json", "api"),
        ("apps/web/10-service.yaml", "web-service"),
        ("apps/web/deploy.yml", "web-deploy"),
        ("namespaces.yaml", "shop"),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|(f, n)| (f.to_string(), n.to_string()))
        .collect();
    assert_eq!(files_and_names(&manifests), expected);

    // A sub-path renders only its subtree, with labels still relative to the repository root.
    let manifests = render_dir(root.path(), "./apps/web").unwrap();
    assert_eq!(manifests[0].source.file, "apps/web/10-service.yaml");
    assert_eq!(manifests.len(), 2);
}

#[test]
fn duplicate_across_two_files_names_both() {
    let root = checkout(&[
        ("base/web.yaml", &config_map("web")),
        (
            "prod/web-copy.yaml",
            &format!("# copied by hand\n{}", config_map("web")),
        ),
    ]);
    let errors = errors(render_dir(root.path(), "."));
    let [
        RenderError::DuplicateObject {
            object,
            first,
            second,
        },
    ] = errors.as_slice()
    else {
        panic!("{errors:?}");
    };
    assert_eq!(object.to_string(), "core/ConfigMap/shop/web");
    assert_eq!((first.file.as_str(), first.line), ("base/web.yaml", 1));
    assert_eq!(
        (second.file.as_str(), second.line),
        ("prod/web-copy.yaml", 2)
    );
    let shown = errors[0].to_string();
    assert!(
        shown.contains("base/web.yaml:1") && shown.contains("prod/web-copy.yaml:2"),
        "{shown}"
    );
}

#[test]
fn errors_of_all_files_are_reported_together() {
    let root = checkout(&[
        (
            "a.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [\n",
        ),
        ("b.yaml", &config_map("fine")),
        (
            "c.yaml",
            "apiVersion: v1\nmetadata: {name: nameless-kind}\n",
        ),
    ]);
    fs::write(root.path().join("d.yaml"), b"kind: \xff\n").unwrap();
    let failure = render_dir(root.path(), ".").unwrap_err();
    let errors = failure.errors();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(matches!(&errors[0], RenderError::InvalidYaml { file, .. } if file == "a.yaml"));
    assert!(
        matches!(&errors[1], RenderError::NotAKubernetesObject { at, .. } if at.file == "c.yaml")
    );
    assert!(
        matches!(&errors[2], RenderError::NotUtf8 { file, line: 1, column: 7 } if file == "d.yaml")
    );
    assert!(
        failure
            .to_string()
            .starts_with("render failed with 3 errors:\n  a.yaml:3:"),
        "{failure}"
    );
}

#[test]
fn symlink_leaving_the_repository_is_refused() {
    let outside = checkout(&[("secret.yaml", &config_map("stolen"))]);
    let root = checkout(&[("app.yaml", &config_map("app"))]);
    symlink(
        outside.path().join("secret.yaml"),
        root.path().join("linked.yaml"),
    )
    .unwrap();
    symlink(outside.path(), root.path().join("linked-dir")).unwrap();
    let errors = errors(render_dir(root.path(), "."));
    let links: Vec<_> = errors
        .iter()
        .map(|error| match error {
            RenderError::SymlinkEscapes { link, .. } => link.as_str(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(links, ["linked-dir", "linked.yaml"]);
    assert!(
        errors[0]
            .to_string()
            .contains("symlink points outside the repository")
    );
}

#[test]
fn symlinks_inside_are_followed_once_and_cycles_end() {
    let root = checkout(&[
        ("shared/common.yaml", &config_map("common")),
        ("apps/app.yaml", &config_map("app")),
    ]);
    symlink("../shared", root.path().join("apps/shared")).unwrap(); // second path to the same files
    symlink("..", root.path().join("apps/loop")).unwrap(); // a cycle back to the root
    symlink("app.yaml", root.path().join("apps/alias.yaml")).unwrap();
    let manifests = render_dir(root.path(), ".").unwrap();
    assert_eq!(
        files_and_names(&manifests),
        [
            ("apps/alias.yaml".to_owned(), "app".to_owned()),
            ("apps/shared/common.yaml".to_owned(), "common".to_owned()),
        ]
    );
}

#[test]
fn broken_symlink_is_reported() {
    let root = checkout(&[]);
    symlink("gone.yaml", root.path().join("dangling.yaml")).unwrap();
    let errors = errors(render_dir(root.path(), "."));
    assert!(
        matches!(&errors[..], [RenderError::BrokenSymlink { link }] if link == "dangling.yaml")
    );
}

#[test]
fn oversize_file_is_refused() {
    let big = format!(
        "{}data:\n  blob: \"{}\"\n",
        config_map("big"),
        "x".repeat(2000)
    );
    let root = checkout(&[("big.yaml", &big), ("small.yaml", &config_map("small"))]);
    let target = RenderTarget::resolve(root.path(), Path::new("")).unwrap();
    let errors = render_plain(&target, 1024).unwrap_err().into_vec();
    let [
        RenderError::FileTooLarge {
            file,
            size,
            limit: 1024,
        },
    ] = errors.as_slice()
    else {
        panic!("{errors:?}");
    };
    assert_eq!((file.as_str(), *size), ("big.yaml", big.len() as u64));
    assert!(render_plain(&target, 4096).is_ok());
}

#[test]
fn sub_path_must_exist_and_stay_inside() {
    let outside = checkout(&[("x.yaml", &config_map("x"))]);
    let root = checkout(&[("apps/app.yaml", &config_map("app"))]);
    symlink(outside.path(), root.path().join("elsewhere")).unwrap();
    let resolve =
        |sub_path: &str| RenderTarget::resolve(root.path(), Path::new(sub_path)).unwrap_err();
    assert!(
        matches!(resolve("missing"), RenderError::SubPathNotFound { sub_path } if sub_path == "missing")
    );
    assert!(matches!(
        resolve("../x"),
        RenderError::SubPathEscapes { .. }
    ));
    assert!(matches!(
        resolve("apps/../apps"),
        RenderError::SubPathEscapes { .. }
    ));
    assert!(matches!(
        resolve("/etc"),
        RenderError::SubPathEscapes { .. }
    ));
    assert!(matches!(
        resolve("elsewhere"),
        RenderError::SubPathEscapes { .. }
    ));
    assert!(matches!(
        resolve("apps/app.yaml"),
        RenderError::SubPathNotDirectory { .. }
    ));
}

#[tokio::test]
async fn mode_follows_the_kustomization_file() {
    let root = checkout(&[
        ("overlay/kustomization.yaml", "resources: [app.yaml]\n"),
        ("overlay/app.yaml", &config_map("app")),
    ]);
    let no_tools = RenderOptions {
        search_path: Some("".into()),
        ..RenderOptions::default()
    };
    // Auto sees the kustomization file and wants kustomize, which this search path lacks.
    let failure = render(root.path(), Path::new("overlay"), &no_tools)
        .await
        .unwrap_err();
    assert!(matches!(failure.errors(), [RenderError::KustomizeNotFound]));
    assert_eq!(
        failure.to_string(),
        "render failed: kustomize not found on PATH: install kustomize or kubectl"
    );
    // Plain renders the files and leaves the kustomization file alone.
    let plain = RenderOptions {
        mode: RenderMode::Plain,
        ..no_tools
    };
    let manifests = render(root.path(), Path::new("overlay"), &plain)
        .await
        .unwrap();
    assert_eq!(
        files_and_names(&manifests),
        [("overlay/app.yaml".to_owned(), "app".to_owned())]
    );
}
