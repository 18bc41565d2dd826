//! What the writeback_* tests share: a config repository seeded on the world's git server with
//! a marked Deployment, Helm values, a README, and the ImageUpdate spec that writes to it.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use config_updater::edit::{ImageRef, PolicyId};
use config_updater::resource::{CommitTemplate, GitWriteBack, ImageUpdateSpec};
use config_updater::writeback::Chosen;
use git2::{Oid, Repository};
use sluice_e2e::{World, unique_name};

pub const IMAGE: &str = "127.0.0.1:5000/demo/web";

pub const DEPLOYMENT: &str = "---
# The web app, deployed by Sluice.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: web   # the app
          image: 127.0.0.1:5000/demo/web:1.4.2 # {\"$imagepolicy\": \"apps:web\"}
          ports: [ {containerPort: 8080} ]
";

pub const VALUES: &str = "image:\r\n  repository: 127.0.0.1:5000/demo/web # {\"$imagepolicy\": \"apps:web:name\"}\r\n  tag: \"1.4.2\" # {\"$imagepolicy\": \"apps:web:tag\"}\r\n";

pub const TEMPLATE: &str = "chore(images): automated bump\n\n{{changes}}\n";

/// Seeds `name` with the deployment, the values and a README; returns the name and the seed.
pub async fn seed(world: &World, prefix: &str, extra: &[(&str, &str)]) -> (String, Oid) {
    let name = unique_name(prefix);
    let dir = tempfile::tempdir().unwrap();
    let mut files = vec![
        ("apps/web/deployment.yaml", DEPLOYMENT),
        ("apps/web/values.yaml", VALUES),
        ("README.md", "The config repo.\n"),
    ];
    files.extend_from_slice(extra);
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let commit = world
        .git_seed(&name, Some(dir.path()))
        .await
        .expect("git-seed prints the seed commit");
    (name, Oid::from_str(&commit).unwrap())
}

pub fn spec(world: &World, name: &str, push_branch: Option<&str>) -> ImageUpdateSpec {
    ImageUpdateSpec {
        git: GitWriteBack {
            url: world.git_http_url(name),
            branch: "main".into(),
            push_branch: push_branch.map(str::to_string),
            secret_ref: None,
            commit: CommitTemplate {
                author_name: "Sluice Bot".into(),
                author_email: "bot@sluice.dev".into(),
                message_template: TEMPLATE.into(),
                signing_key_ref: None,
            },
        },
        paths: vec!["apps".into()],
        update_unmarked: false,
        window: None,
        batch_delay: "0s".into(),
        interval: "5m".into(),
        suspend: false,
    }
}

pub fn chosen(tag: &str) -> BTreeMap<PolicyId, Chosen> {
    let policy = PolicyId {
        namespace: "apps".into(),
        name: "web".into(),
    };
    let image = ImageRef::parse(&format!("{IMAGE}:{tag}")).unwrap();
    BTreeMap::from([(policy, Chosen { image })])
}

/// `path` at `reference` in the server's bare repository, with the commit.
pub fn file_at(world: &World, name: &str, reference: &str, path: &str) -> (Oid, Vec<u8>) {
    let bare = Repository::open_bare(world.git_bare_repo(name)).unwrap();
    let tip = bare
        .find_reference(reference)
        .unwrap_or_else(|_| panic!("{reference} on the server"))
        .peel_to_commit()
        .unwrap();
    let entry = tip.tree().unwrap().get_path(Path::new(path)).unwrap();
    let blob = bare.find_blob(entry.id()).unwrap();
    (tip.id(), blob.content().to_vec())
}

/// `(message, author name, author email, parents)` of `commit` on the server.
pub fn commit_on_server(
    world: &World,
    name: &str,
    commit: Oid,
) -> (String, String, String, Vec<Oid>) {
    let bare = Repository::open_bare(world.git_bare_repo(name)).unwrap();
    let c = bare.find_commit(commit).unwrap();
    (
        c.message().unwrap().to_string(),
        c.author().name().unwrap().to_string(),
        c.author().email().unwrap().to_string(),
        c.parent_ids().collect(),
    )
}

/// A fresh work directory under `root` (removed with it), for one round with no clone yet.
pub fn fresh_dir(root: &tempfile::TempDir) -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    root.path().join(format!("work-{n}"))
}
