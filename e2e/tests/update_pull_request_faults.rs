//! User story: the forge is not always there. With a token the forge refuses, the ImageUpdate
//! says so (`Ready=False`, reason `ForgeAuth`) and nothing is proposed; with the right token but
//! the forge down, the bump waits (`ForgeUnreachable`), nothing is lost, and the pull request
//! appears once the forge is back, exactly once.
//!
//! Against the real world: the world's Gitea is stopped and started again (`forge.sh down|up`),
//! so this story is the only test of its binary.

mod update_support;

use std::process::Command;

use config_updater::resource::{ImagePolicy, ImageRepository, ImageUpdate};
use serde_json::json;
use sluice_e2e::World;
use sluice_e2e::forge::seed;
use sluice_shared::forge::PullRequestState;
use update_support::{Updater, WEB_FILE, push_web, repository, semver_policy};

const PUSH_BRANCH: &str = "sluice/bumps";

/// Runs `e2e/world/forge.sh <what>` for the test's world.
fn forge_sh(world: &World, what: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/world/forge.sh");
    let status = Command::new("bash")
        .arg(script)
        .arg(what)
        .env("SLUICE_WORLD_DIR", world.dir())
        .status()
        .expect("running forge.sh");
    assert!(status.success(), "forge.sh {what}: {status}");
}

/// Brings the forge back up however the test ends: later tests need it.
struct Down(&'static World);

impl Drop for Down {
    fn drop(&mut self) {
        forge_sh(self.0, "up");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_and_a_forge_that_is_down_are_said_and_nothing_is_lost() {
    let u = Updater::start("update-pr-faults").await;
    let world = u.world;
    let (_, image) = push_web(world, "prf", &["1.0.0", "1.1.0"]).await;
    let (repo, _) = seed(world, "prf-config", &[(WEB_FILE, u.web(&image, "1.0.0"))]).await;
    let (user, token) = world.forge_credentials();
    u.secret(
        "forge",
        "kubernetes.io/basic-auth",
        json!({"username": user, "password": token}),
    )
    .await;
    // The forge's own token Secret holds a wrong one.
    u.secret(
        "forge-token",
        "Opaque",
        json!({"token": "0123456789abcdef-not-it"}),
    )
    .await;
    let update = json!({
        "metadata": {"name": "config"},
        "spec": {
            "git": {"url": world.forge_url(&repo), "branch": "main", "pushBranch": PUSH_BRANCH,
                    "secretRef": {"name": "forge"},
                    "pullRequest": {"secretRef": "forge-token"}},
            "paths": ["apps"],
            "interval": "2s",
        }
    });
    u.create::<ImageUpdate>(update).await;
    u.create::<ImageRepository>(repository("web", &image, "2s"))
        .await;
    u.create::<ImagePolicy>(semver_policy("web", "web")).await;

    let refused = u
        .wait_ready::<ImageUpdate>("config", "False", "ForgeAuth")
        .await;
    assert!(refused.message.contains("401"), "{}", refused.message);
    assert!(
        !refused.message.contains("not-it"),
        "the token stays out: {}",
        refused.message
    );
    let forge = world.forge(&repo);
    assert!(
        forge
            .latest_pull_request(PUSH_BRANCH, "main")
            .await
            .unwrap()
            .is_none()
    );

    // The right token, but the forge goes down: the bump waits and the status says why.
    let down = Down(world);
    forge_sh(world, "down");
    u.patch_spec::<ImageUpdate>(
        "config",
        json!({"git": {"pullRequest": {"secretRef": null}}}),
    )
    .await;
    let waiting = u
        .wait_ready::<ImageUpdate>("config", "False", "ForgeUnreachable")
        .await;
    assert!(
        waiting.message.contains("127.0.0.1:13000"),
        "{}",
        waiting.message
    );

    // Back up: the pull request appears, once.
    drop(down);
    let forge = world.forge(&repo);
    let opened = sluice_e2e::wait_until(
        "the pull request once the forge is back",
        update_support::DEADLINE,
        || async {
            match forge.latest_pull_request(PUSH_BRANCH, "main").await {
                Ok(Some(pr)) if pr.state == PullRequestState::Open => Ok(pr),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert!(
        opened.body.contains("`1.0.0` | `1.1.0` |"),
        "{}",
        opened.body
    );
    u.wait_ready::<ImageUpdate>("config", "True", "Pushed")
        .await;
    let (_, all) = world
        .forge_api(
            "GET",
            &format!("/repos/{user}/{repo}/pulls?state=all"),
            None,
        )
        .await;
    assert_eq!(
        all.as_array().map(Vec::len),
        Some(1),
        "exactly one pull request: {all}"
    );
    u.stop().await;
}
