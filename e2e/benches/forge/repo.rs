//! A config repository on the forge as the sections use it: seeded, changed and pushed as a
//! person does (a work clone of its own), its pull requests found, waited for and merged through
//! the daemons' own forge client, and deleted after the run.

use std::time::{Duration, Instant};

use serde_json::json;
use sluice_e2e::git_support::{blocking, me, remote, write};
use sluice_e2e::{TestNamespace, World};
use sluice_shared::forge::{Forge, PullRequest};
use sluice_shared::git::{self, GitAuth};

/// How long anything the sections wait for may take before the sample counts as failed.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The forge user's token as the git Secret `forge` (basic auth: a forge token is its git
/// password over HTTP, and the daemons read it for the forge's API too).
pub async fn forge_secret(ns: &TestNamespace, world: &World) {
    let (user, token) = world.forge_credentials();
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": "forge"},
        "type": "kubernetes.io/basic-auth",
        "stringData": {"username": user, "password": token}
    }))
    .expect("a Secret");
    ns.api()
        .create(&Default::default(), &secret)
        .await
        .expect("the forge Secret");
}

/// Deletes repository `name` from the forge (and its webhooks with it).
pub async fn delete(world: &World, name: &str) {
    let (user, _) = world.forge_credentials();
    let (status, body) = world
        .forge_api("DELETE", &format!("/repos/{user}/{name}"), None)
        .await;
    if status != 204 {
        eprintln!("deleting {name} from the forge: {status} {body}");
    }
}

pub struct Repo {
    pub world: &'static World,
    pub name: String,
    pub forge: Forge,
    work: tempfile::TempDir,
}

impl Repo {
    /// A new repository `<prefix>-…` on the forge holding `files`; and its seed commit.
    pub async fn seed(
        world: &'static World,
        prefix: &str,
        files: &[(&str, &str)],
    ) -> (Repo, String) {
        let (name, seed) = sluice_e2e::forge::seed(world, prefix, files).await;
        let repo = Repo {
            world,
            forge: world.forge(&name),
            name,
            work: tempfile::tempdir().expect("a work clone dir"),
        };
        (repo, seed.to_string())
    }

    pub fn url(&self) -> String {
        self.world.forge_url(&self.name)
    }

    /// Has the forge deliver its push events to `url`, signed with `secret`.
    pub async fn hook(&self, url: &str, secret: &str) {
        self.world
            .forge_hook(&self.name, url, secret, &["push"])
            .await;
    }

    /// Commits `content` to `path` on `branch` (started from main's tip when it is not main)
    /// and pushes it; returns the commit.
    pub async fn push(&self, branch: &str, path: &str, content: &str, message: &str) -> String {
        let (user, token) = self.world.forge_credentials();
        let origin = remote(&self.url(), GitAuth::basic(user, token));
        let dir = self.work.path().to_owned();
        let (branch, path, content, message) = (
            branch.to_owned(),
            path.to_owned(),
            content.to_owned(),
            message.to_owned(),
        );
        blocking(move || {
            let repo = git::clone_or_open(&origin, "main", &dir).expect("the work clone");
            let commit = git::commit(&repo, &branch, &[write(&path, &content)], &me(), &message)
                .expect("the commit")
                .expect("a change");
            git::push(&repo, &origin, &branch).expect("the push");
            commit.to_string()
        })
        .await
    }

    /// Waits until the forge says pull request `number` can be merged (Gitea checks that in the
    /// background after it is opened or its branch moves).
    pub async fn wait_mergeable(&self, number: u64) {
        let (user, _) = self.world.forge_credentials();
        let path = format!("/repos/{user}/{}/pulls/{number}", self.name);
        sluice_e2e::wait_until(
            &format!("pull request #{number} mergeable"),
            DEADLINE,
            || async {
                let (status, body) = self.world.forge_api("GET", &path, None).await;
                match body["mergeable"].as_bool() {
                    Some(true) => Ok(()),
                    _ => Err(format!("{status}: mergeable {}", body["mergeable"])),
                }
            },
        )
        .await;
    }

    /// Merges pull request `number` (once mergeable); returns how long the merge call took.
    pub async fn merge(&self, number: u64) -> Duration {
        self.wait_mergeable(number).await;
        let started = Instant::now();
        self.forge
            .merge_pull_request(number)
            .await
            .unwrap_or_else(|e| panic!("merging #{number} of {}: {e}", self.name));
        started.elapsed()
    }

    /// Polls the newest pull request of `branch` into main every `every` until `ok` holds for
    /// it; returns it and when it was seen, or None after [`DEADLINE`].
    pub async fn wait_pull_request(
        &self,
        branch: &str,
        every: Duration,
        ok: impl Fn(&PullRequest) -> bool,
    ) -> Option<(PullRequest, Instant)> {
        let started = Instant::now();
        while started.elapsed() < DEADLINE {
            if let Ok(Some(pr)) = self.forge.latest_pull_request(branch, "main").await {
                let seen = Instant::now();
                if ok(&pr) {
                    return Some((pr, seen));
                }
            }
            tokio::time::sleep(every).await;
        }
        None
    }
}
