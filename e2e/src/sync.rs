//! What the sync_* stories (and the synchronizer's benchmark) share: the GitSync CRD installed, a config repo on the world's git
//! server with commits on top, a GitSync reading it with basic auth, and the synchronizer's
//! controller running in-process for the test's namespace only.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

pub use crate::Conditions;
use crate::in_process::InProcess;
use crate::{Seen, TestNamespace, World, install_crd_yaml};
use deploy_synchronizer::controller::WatchScope;
use deploy_synchronizer::controller::{self, Metrics, Options};
use deploy_synchronizer::resource::{GitSync, GitSyncStatus};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Client;
use kube::api::{ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

/// How long one step of a sync story may take: a commit applied, refused, healthy… Stories
/// that assert a step is fast (a webhook's push) wait less.
pub const DEADLINE: Duration = Duration::from_secs(90);

pub const CRD_YAML: &str = include_str!("../../manifests/crds/gitsyncs.sluice.dev.yaml");

/// Installs the GitSync CRD (server-side apply: idempotent, parallel tests agree) and waits until
/// it is served.
pub async fn install_crd(client: &Client) {
    install_crd_yaml(client, CRD_YAML, Duration::from_secs(30)).await;
}

/// The world's kubeconfig as a kube Config (the controller needs it to impersonate).
pub async fn kube_config(world: &World) -> kube::Config {
    let kubeconfig = Kubeconfig::read_from(world.kubeconfig()).expect("the world's kubeconfig");
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("a config from the world's kubeconfig")
}

/// The synchronizer's controller, running in-process for one namespace.
pub struct Synchronizer {
    controller: InProcess,
    _cache: tempfile::TempDir,
}

impl Synchronizer {
    /// The controller as `manifests/` installs it: with exactly the rights of its
    /// ServiceAccount there (see [`crate::installed`]).
    pub async fn start(world: &World, namespace: &str) -> Synchronizer {
        Self::start_with_pushes(world, namespace, None).await
    }

    /// Like [`start`](Self::start), with the webhook receiver's pushes fed to the controller.
    pub async fn start_with_pushes(
        world: &World,
        namespace: &str,
        pushes: Option<tokio::sync::mpsc::Receiver<deploy_synchronizer::webhook::PushEvent>>,
    ) -> Synchronizer {
        let config = world
            .service_account_config(crate::installed::SYNCHRONIZER)
            .await;
        Self::start_with(config, namespace, Metrics::default(), pushes)
    }

    /// The controller over `config` (another apiserver, say), counting into `metrics`.
    pub fn start_with(
        config: kube::Config,
        namespace: &str,
        metrics: Metrics,
        pushes: Option<tokio::sync::mpsc::Receiver<deploy_synchronizer::webhook::PushEvent>>,
    ) -> Synchronizer {
        Self::start_options(config, namespace, metrics, |options| {
            options.pushes = pushes
        })
    }

    /// The controller for `namespace`, on the synchronizer's ServiceAccount, under the platform
    /// team's multi-tenancy `lockdown`.
    pub async fn start_locked_down(
        world: &World,
        namespace: &str,
        lockdown: deploy_synchronizer::tenancy::Lockdown,
    ) -> Synchronizer {
        let config = world
            .service_account_config(crate::installed::SYNCHRONIZER)
            .await;
        Self::start_options(config, namespace, Metrics::default(), |options| {
            options.lockdown = lockdown
        })
    }

    /// The controller over `config` with self-heal watches of `scope` (`config` may impersonate
    /// an identity with namespaced RBAC only).
    pub fn start_scoped(config: kube::Config, namespace: &str, scope: WatchScope) -> Synchronizer {
        Self::start_options(config, namespace, Metrics::default(), |options| {
            options.heal_scope = scope
        })
    }

    /// The controller for `namespace`, counting into `metrics`, with the options `adjust` sets.
    fn start_options(
        config: kube::Config,
        namespace: &str,
        metrics: Metrics,
        adjust: impl FnOnce(&mut Options),
    ) -> Synchronizer {
        let client = Client::try_from(config.clone()).expect("a client");
        let cache = tempfile::tempdir().expect("a cache dir");
        let mut options = Options {
            namespace: Some(namespace.to_owned()),
            cache_dir: cache.path().to_owned(),
            instance: Some(format!("e2e-{namespace}")),
            ..Options::default()
        };
        adjust(&mut options);
        let controller = InProcess::spawn(|shutdown| {
            controller::run(client, config, options, metrics, shutdown)
        });
        Synchronizer {
            controller,
            _cache: cache,
        }
    }

    /// Stops the controller and waits for it to finish.
    pub async fn stop(self) {
        self.controller.stop().await;
    }
}

/// The storefront Deployment of the rollback stories, its image `{image}` (to replace), marked
/// for the Config Updater's policy `shop:storefront`.
pub const STOREFRONT: &str = r#"# The storefront, bumped by the Config Updater.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: storefront
spec:
  replicas: 1
  selector:
    matchLabels: {app: storefront}
  template:
    metadata:
      labels: {app: storefront}
    spec:
      containers:
        - name: storefront
          image: {image} # {"$imagepolicy": "shop:storefront"}
"#;

/// A basic-auth Secret for the world's git server, as a user would create it.
pub async fn git_secret(ns: &TestNamespace, world: &World, name: &str) {
    let (user, password) = world.git_credentials();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": name},
        "type": "kubernetes.io/basic-auth",
        "stringData": {"username": user, "password": password}
    }))
    .unwrap();
    ns.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .expect("creating the git Secret");
}

/// Creates GitSync `name` in the test namespace over `url`, path `path`, branch main.
pub async fn create_git_sync(ns: &TestNamespace, name: &str, url: &str, path: &str, secret: &str) {
    let spec = json!({
        "source": {
            "url": url,
            "ref": {"branch": "main"},
            "path": path,
            "interval": "2s",
            "secretRef": {"name": secret}
        },
        "targetNamespace": ns.name(),
        "healthTimeout": "2m"
    });
    create_git_sync_spec(ns, name, spec).await;
}

/// The namespace's ConfigMaps whose names start with `prefix`: name → (uid, data). A uid that
/// changed between two reads is an object deleted and made again (a wrongful prune).
pub async fn config_maps(
    ns: &TestNamespace,
    prefix: &str,
) -> BTreeMap<String, (String, BTreeMap<String, String>)> {
    let list = ns
        .api::<ConfigMap>()
        .list(&ListParams::default())
        .await
        .expect("listing the ConfigMaps");
    list.items
        .into_iter()
        .filter_map(|cm| {
            let name = cm.metadata.name?;
            let uid = cm.metadata.uid?;
            name.starts_with(prefix)
                .then(|| (name, (uid, cm.data.unwrap_or_default())))
        })
        .collect()
}

/// Creates GitSync `name` in the test namespace with `spec` as given (JSON, the CRD's shape).
/// How many of the namespace's GitSyncs have applied `revision` (their status says so).
pub async fn applied_at(ns: &TestNamespace, revision: &str) -> Result<usize, String> {
    let list = ns
        .api::<GitSync>()
        .list(&Default::default())
        .await
        .map_err(|e| e.to_string())?;
    Ok(list
        .items
        .iter()
        .filter(|s| {
            s.status
                .as_ref()
                .and_then(|s| s.last_applied_revision.as_deref())
                == Some(revision)
        })
        .count())
}

pub async fn create_git_sync_spec(ns: &TestNamespace, name: &str, spec: serde_json::Value) {
    let sync: GitSync = serde_json::from_value(json!({
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "GitSync",
        "metadata": {"name": name},
        "spec": spec
    }))
    .expect("a GitSync");
    ns.api::<GitSync>()
        .create(&PostParams::default(), &sync)
        .await
        .expect("creating the GitSync");
}

/// Merge-patches GitSync `name`'s spec, as `kubectl patch --type merge` would.
pub async fn patch_spec(ns: &TestNamespace, name: &str, spec: serde_json::Value) {
    ns.api::<GitSync>()
        .patch(
            name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({ "spec": spec })),
        )
        .await
        .expect("patching the GitSync's spec");
}

/// An SSH Secret for the world's git server: its private key and `known_hosts` as given.
pub async fn ssh_secret(ns: &TestNamespace, world: &World, name: &str, known_hosts: &str) {
    let key = std::fs::read_to_string(world.git_ssh_key()).expect("the world's ssh key");
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": name},
        "stringData": {"identity": key, "known_hosts": known_hosts}
    }))
    .unwrap();
    ns.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .expect("creating the ssh Secret");
}

/// Runs `git` in the world's bare repository `name` (tags, rev-parse…); returns its stdout.
pub fn git_in(world: &World, name: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(["-c", "safe.directory=*"])
        .args(args)
        .env("GIT_DIR", world.git_bare_repo(name))
        .env("GIT_AUTHOR_NAME", "E2E Author")
        .env("GIT_AUTHOR_EMAIL", "e2e@sluice.dev")
        .env("GIT_COMMITTER_NAME", "E2E Author")
        .env("GIT_COMMITTER_EMAIL", "e2e@sluice.dev")
        .output()
        .expect("running git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Waits until GitSync `name`'s status satisfies `until` (within [`DEADLINE`]); returns it.
/// `what` names the wait in the timeout's panic, with the status last seen ([`describe`]).
/// `until` reads as the story says it: `|s| s.applied(&fix) && s.is("Ready=True")`
/// ([`Revisions`], [`Conditions`]).
pub async fn wait_status(
    ns: &TestNamespace,
    name: &str,
    what: &str,
    until: impl Fn(&GitSyncStatus) -> bool,
) -> GitSyncStatus {
    wait_status_within(ns, name, what, DEADLINE, until).await
}

/// [`wait_status`] with a deadline of the story's own (a step it says is fast, or slow).
pub async fn wait_status_within(
    ns: &TestNamespace,
    name: &str,
    what: &str,
    timeout: Duration,
    until: impl Fn(&GitSyncStatus) -> bool,
) -> GitSyncStatus {
    crate::wait_status(&ns.api::<GitSync>(), name, what, timeout, until).await
}

/// What a GitSync's status says of revisions, for [`wait_status`]'s predicates.
pub trait Revisions {
    /// `lastAppliedRevision` is `revision`.
    fn applied(&self, revision: &str) -> bool;
    /// `lastAttemptedRevision` is `revision`.
    fn attempted(&self, revision: &str) -> bool;
}

impl Revisions for GitSyncStatus {
    fn applied(&self, revision: &str) -> bool {
        self.last_applied_revision.as_deref() == Some(revision)
    }

    fn attempted(&self, revision: &str) -> bool {
        self.last_attempted_revision.as_deref() == Some(revision)
    }
}

impl Conditions for GitSyncStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

impl Seen for GitSyncStatus {
    fn seen(&self) -> String {
        describe(self)
    }
}

/// Waits until GitSync `name` has applied `revision` and is Ready; returns its status.
pub async fn wait_applied(ns: &TestNamespace, name: &str, revision: &str) -> GitSyncStatus {
    let what = format!("{name} to apply {revision}");
    wait_status(ns, name, &what, |s| {
        s.applied(revision) && s.is("Ready=True")
    })
    .await
}

/// Waits until GitSync `name` is Ready=False with `reason`; returns its status.
pub async fn wait_refused(ns: &TestNamespace, name: &str, reason: &str) -> GitSyncStatus {
    let refused = format!("Ready=False {reason}");
    let what = format!("{name} to be {refused}");
    wait_status(ns, name, &what, |s| s.is(&refused)).await
}

/// Commits `dir`'s content as the new tip of `main` in the world's bare repository `name`, as a
/// push would, and returns the commit id.
pub async fn commit_dir(world: &World, name: &str, dir: &Path, message: &str) -> String {
    commit_dir_onto(world, name, dir, None, message).await
}

/// Like [`commit_dir`], with the commit's parent `onto` instead of main's tip when given: main
/// then moves to a commit that does not descend from its old tip, as `git push --force` of a
/// rewritten history does.
pub async fn commit_dir_onto(
    world: &World,
    name: &str,
    dir: &Path,
    onto: Option<&str>,
    message: &str,
) -> String {
    let repo = world.git_bare_repo(name);
    let index = tempfile::NamedTempFile::new().unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(["-c", "safe.directory=*"])
            .args(args)
            .env("GIT_DIR", &repo)
            .env("GIT_WORK_TREE", dir)
            .env("GIT_INDEX_FILE", index.path())
            .env("GIT_AUTHOR_NAME", "E2E Author")
            .env("GIT_AUTHOR_EMAIL", "e2e@sluice.dev")
            .env("GIT_COMMITTER_NAME", "E2E Author")
            .env("GIT_COMMITTER_EMAIL", "e2e@sluice.dev")
            .current_dir(dir)
            .output()
            .expect("running git");
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    // A fresh index file must not exist yet for git; an empty one is "corrupt".
    std::fs::remove_file(index.path()).unwrap();
    git(&["add", "--all", "--force", "."]);
    let tree = git(&["write-tree"]);
    let tip = git(&["rev-parse", "refs/heads/main"]);
    let parent = onto.map_or(tip.clone(), str::to_owned);
    let commit = git(&["commit-tree", "-p", &parent, "-m", message, &tree]);
    git(&["update-ref", "refs/heads/main", &commit, &tip]);
    commit
}

/// Writes `files` (path, content) below a fresh directory.
pub fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

/// The GitSync's status (default when it has none yet).
pub async fn status(ns: &TestNamespace, name: &str) -> Result<GitSyncStatus, String> {
    let sync = ns
        .api::<GitSync>()
        .get(name)
        .await
        .map_err(|e| e.to_string())?;
    Ok(sync.status.unwrap_or_default())
}

/// `(status, reason, message)` of condition `type_`.
pub fn condition(status: &GitSyncStatus, type_: &str) -> Option<(String, String, String)> {
    let c = status.conditions.iter().find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// GitSync `name`'s Healthy condition as `(status, reason, message)`, once `check` accepts it
/// (within 120 s).
pub async fn wait_health(
    ns: &TestNamespace,
    name: &str,
    what: &str,
    check: impl Fn(&str, &str, &str) -> bool,
) -> (String, String, String) {
    let healthy = |s: &GitSyncStatus| condition(s, "Healthy");
    let status = wait_status_within(ns, name, what, Duration::from_secs(120), |s| {
        healthy(s).is_some_and(|(s, r, m)| check(&s, &r, &m))
    })
    .await;
    healthy(&status).expect("the Healthy condition just seen")
}

/// A one-line view of a status, for "last seen" messages.
pub fn describe(status: &GitSyncStatus) -> String {
    format!(
        "attempted {:?} applied {:?} health {:?} inventory {:?} conditions {:?} history {:?}",
        status.last_attempted_revision,
        status.last_applied_revision,
        status.health,
        status
            .inventory
            .iter()
            .map(|e| format!("{}/{}", e.kind, e.name))
            .collect::<Vec<_>>(),
        status
            .conditions
            .iter()
            .map(|c| format!("{}={} {}: {}", c.type_, c.status, c.reason, c.message))
            .collect::<Vec<_>>(),
        status.history
    )
}

/// A GitHub push event for `after` on main, as github.com sends it (the fields the receiver
/// reads, and a few more).
pub fn github_push(clone_url: &str, after: &str) -> String {
    json!({
        "ref": "refs/heads/main",
        "before": "0000000000000000000000000000000000000000",
        "after": after,
        "created": false,
        "deleted": false,
        "repository": {"name": "config", "full_name": "org/config", "clone_url": clone_url},
        "pusher": {"name": "e2e"}
    })
    .to_string()
}
