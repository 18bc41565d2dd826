//! What the writeback_* tests share: a config repository seeded on the world's git server with
//! a marked Deployment, Helm values, a README, and the ImageUpdate spec that writes to it.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::Utc;
use config_updater::edit::{ImageRef, PolicyId};
use config_updater::resource::{CommitTemplate, GitWriteBack, ImageUpdateSpec};
use config_updater::writeback::{Chosen, Outcome, WriteBackError, push_update_signed};
use git2::{Oid, Repository};
use sluice_e2e::World;
use sluice_e2e::git_support::remote;
use sluice_shared::git::{CommitSigner, Remote};

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
    let mut files = vec![
        ("apps/web/deployment.yaml", DEPLOYMENT),
        ("apps/web/values.yaml", VALUES),
        ("README.md", "The config repo.\n"),
    ];
    files.extend_from_slice(extra);
    sluice_e2e::updater::seed(world, prefix, &files).await
}

/// The repository `name` on the world's git server over HTTP, with basic auth.
pub fn http(world: &World, name: &str) -> Remote {
    remote(&world.git_http_url(name), world.git_basic_auth())
}

/// One write-back round choosing `tag` for `name` (to `push_branch` if given), from `work`.
pub async fn round(
    world: &World,
    name: &str,
    push_branch: Option<&str>,
    tag: &str,
    work: PathBuf,
) -> Result<Outcome, WriteBackError> {
    signed_round(world, name, push_branch, tag, work, None).await
}

/// [`round`], each commit signed with `signer` when given.
pub async fn signed_round(
    world: &World,
    name: &str,
    push_branch: Option<&str>,
    tag: &str,
    work: PathBuf,
    signer: Option<CommitSigner>,
) -> Result<Outcome, WriteBackError> {
    push_update_signed(
        http(world, name),
        spec(world, name, push_branch),
        chosen(tag),
        work,
        Utc::now(),
        signer,
    )
    .await
}

/// The commit of a round that pushed.
pub fn pushed(outcome: Outcome) -> String {
    match outcome {
        Outcome::Pushed { commit, .. } => commit,
        other => panic!("expected a push, got {other:?}"),
    }
}

/// A round with nothing to commit and nothing to report.
pub fn up_to_date() -> Outcome {
    Outcome::UpToDate {
        problems: vec![],
        reverted: vec![],
        proposed: None,
    }
}

/// [`DEPLOYMENT`] with the tag bytes, and only those, changed to `tag`.
pub fn bumped(tag: &str) -> String {
    DEPLOYMENT.replace("web:1.4.2 #", &format!("web:{tag} #"))
}

/// The deployment at `reference` on the server, with the commit.
pub fn deployment_at(world: &World, name: &str, reference: &str) -> (Oid, String) {
    let (tip, bytes) = file_at(world, name, reference, "apps/web/deployment.yaml");
    (tip, String::from_utf8(bytes).unwrap())
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
            pull_request: None,
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
pub fn fresh_dir(root: &tempfile::TempDir) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    root.path().join(format!("work-{n}"))
}
