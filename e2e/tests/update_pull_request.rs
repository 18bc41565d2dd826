//! User story: a platform team wants every image bump reviewed. The ImageUpdate pushes to a
//! branch of its own and proposes it as a pull request on the forge (the world's Gitea): the
//! pull request's body lists each change; a later bump goes into the same pull request; merging
//! it puts the bump on main. A pull request closed without merge rejects what it proposed: that
//! version is blocked in the policy and never proposed again, and a newer version opens a new
//! pull request on a branch started afresh from main.
//!
//! Against the real world: the plain registry, and the forge's own git server and pull-request
//! API; the merge and the close are made through that API as a reviewer would. In the last story
//! the forge's own `pull_request` webhook, delivered by Gitea to the updater's receiver, is what
//! makes the updater read the close (its interval is an hour).

mod update_support;

use std::time::{Duration, Instant};

use config_updater::resource::{ImagePolicy, ImageRepository, ImageUpdate};
use serde_json::json;
use sluice_e2e::forge::seed;
use sluice_e2e::{wait_status, wait_until};
use sluice_shared::forge::{PullRequest, PullRequestState};
use update_support::{DEADLINE, Receiver, Updater, WEB_FILE, push_web, repository, semver_policy};

const PUSH_BRANCH: &str = "sluice/bumps";

/// The ImageUpdate `config`: bumps to [`PUSH_BRANCH`] of `url`, proposed to main.
fn proposing(url: &str) -> serde_json::Value {
    json!({
        "metadata": {"name": "config"},
        "spec": {
            "git": {
                "url": url,
                "branch": "main",
                "pushBranch": PUSH_BRANCH,
                "secretRef": {"name": "forge"},
                "pullRequest": {"labels": ["images"]},
            },
            "paths": ["apps"],
            "interval": "2s",
        }
    })
}

/// The newest pull request of the push branch once `ok` holds for it.
async fn pull_request(
    u: &Updater,
    repo: &str,
    what: &str,
    ok: impl Fn(&PullRequest) -> bool,
) -> PullRequest {
    let forge = u.world.forge(repo);
    wait_until(what, DEADLINE, || async {
        match forge.latest_pull_request(PUSH_BRANCH, "main").await {
            Ok(Some(pr)) if ok(&pr) => Ok(pr),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

/// The forge user's token as a git basic-auth Secret `forge` (a forge token is its git password).
async fn forge_secret(u: &Updater) {
    let (user, token) = u.world.forge_credentials();
    u.secret(
        "forge",
        "kubernetes.io/basic-auth",
        json!({"username": user, "password": token}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bumps_are_proposed_in_one_pull_request_and_merging_it_puts_them_on_main() {
    let u = Updater::start("update-pr").await;
    let world = u.world;
    let (path, image) = push_web(world, "pr", &["1.0.0", "1.1.0"]).await;
    let seeded = u.web(&image, "1.0.0");
    let (repo, _) = seed(world, "pr-config", &[(WEB_FILE, seeded.as_str())]).await;
    forge_secret(&u).await;
    u.create::<ImageUpdate>(proposing(&world.forge_url(&repo)))
        .await;
    u.create::<ImageRepository>(repository("web", &image, "2s"))
        .await;
    u.create::<ImagePolicy>(semver_policy("web", "web")).await;

    // The first bump: a pull request into main, its body naming the change.
    let first = pull_request(&u, &repo, "a pull request proposing 1.1.0", |pr| {
        pr.state == PullRequestState::Open && pr.body.contains("1.1.0")
    })
    .await;
    assert!(
        first.body.contains(&format!("| `{WEB_FILE}` |")),
        "{}",
        first.body
    );
    assert!(first.body.contains("`1.0.0` | `1.1.0` |"), "{}", first.body);
    assert!(first.title.contains("web 1.0.0 → 1.1.0"), "{}", first.title);
    assert_eq!(
        world.forge_file(&repo, "main", WEB_FILE).await.as_deref(),
        Some(seeded.as_str())
    );
    let status = u
        .wait_status::<ImageUpdate>("config", "status.pullRequest", |s| {
            s.pull_request
                .as_ref()
                .is_some_and(|p| p.number == first.number)
        })
        .await;
    assert_eq!(status.pull_request.unwrap().url, first.url);
    assert!(
        u.wait_event("config", "PullRequestOpened")
            .await
            .contains(&first.url)
    );

    // A newer tag while it is open: the same pull request, refreshed.
    world.push_image(&[&format!("{path}:1.2.0")]).await;
    let refreshed = pull_request(&u, &repo, "the pull request refreshed to 1.2.0", |pr| {
        pr.body.contains("`1.2.0`")
    })
    .await;
    assert_eq!(
        refreshed.number, first.number,
        "one pull request per push branch"
    );
    assert!(
        refreshed.body.contains("`1.0.0` | `1.2.0` |"),
        "{}",
        refreshed.body
    );
    u.wait_event("config", "PullRequestUpdated").await;

    // A reviewer merges it: main holds the bump, and the status says merged.
    world.forge_merge(&repo, first.number).await;
    let main = world.forge_file(&repo, "main", WEB_FILE).await.unwrap();
    assert_eq!(main, u.web(&image, "1.2.0"));
    u.wait_status::<ImageUpdate>("config", "the pull request merged", |s| {
        s.pull_request.as_ref().is_some_and(|p| p.state == "merged")
    })
    .await;
    u.wait_event("config", "PullRequestMerged").await;

    // The release is bad: a person reverts the merge commit (which names no change itself; the
    // bumps' trailers are in the commits it merged). The updater blocks both versions the pull
    // request brought, 1.1.0 and 1.2.0, all the same.
    let merge = world.forge_tip(&repo, "main").await.unwrap();
    revert_merge(world, &repo, merge).await;
    let policy = u
        .wait_status::<ImagePolicy>("web", "1.1.0 and 1.2.0 in status.blockedTags", |s| {
            s.blocked_tags == ["1.1.0", "1.2.0"]
        })
        .await;
    assert_eq!(policy.latest_ref.map(|r| r.tag).as_deref(), Some("1.0.0"));
    u.stop().await;
}

/// Reverts the merge commit `merge` on main of `repo` as `git revert -m 1` does, and pushes.
async fn revert_merge(world: &'static sluice_e2e::World, repo: &str, merge: git2::Oid) {
    let (user, token) = world.forge_credentials();
    let origin = sluice_e2e::git_support::remote(
        &world.forge_url(repo),
        sluice_shared::git::GitAuth::basic(user, token),
    );
    sluice_e2e::git_support::blocking(move || {
        let work = tempfile::tempdir().unwrap();
        let clone = sluice_shared::git::clone_or_open(&origin, "main", work.path()).unwrap();
        let merged = clone.find_commit(merge).unwrap();
        assert_eq!(
            merged.parent_count(),
            2,
            "the pull request was merged with a merge commit"
        );
        let mut index = clone.revert_commit(&merged, &merged, 1, None).unwrap();
        let tree = clone
            .find_tree(index.write_tree_to(&clone).unwrap())
            .unwrap();
        let message = String::from_utf8_lossy(merged.message_bytes()).into_owned();
        let subject = message.lines().next().unwrap_or_default();
        let message = format!("Revert \"{subject}\"\n\nThis reverts commit {merge}.\n");
        let me = sluice_e2e::git_support::me();
        sluice_shared::git::commit_tree(&clone, "main", &tree, &[&merged], &me, &message, None)
            .unwrap();
        sluice_shared::git::push(&clone, &origin, "main").unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_closed_without_merge_rejects_its_version_until_a_newer_one() {
    let u = Updater::start("update-pr-closed").await;
    let world = u.world;
    let (path, image) = push_web(world, "prc", &["1.0.0", "1.1.0"]).await;
    let (repo, _) = seed(world, "prc-config", &[(WEB_FILE, u.web(&image, "1.0.0"))]).await;
    forge_secret(&u).await;
    u.create::<ImageUpdate>(proposing(&world.forge_url(&repo)))
        .await;
    u.create::<ImageRepository>(repository("web", &image, "2s"))
        .await;
    u.create::<ImagePolicy>(semver_policy("web", "web")).await;

    let rejected = pull_request(&u, &repo, "a pull request proposing 1.1.0", |pr| {
        pr.state == PullRequestState::Open && pr.body.contains("1.1.0")
    })
    .await;
    // A reviewer closes it without merging.
    world
        .forge(&repo)
        .close_pull_request(rejected.number)
        .await
        .unwrap();

    // Two writers: the ImageUpdate adds the tag to blockedTags, then the ImagePolicy's own
    // reconcile chooses again; wait for both.
    let policy = u
        .wait_status::<ImagePolicy>("web", "1.1.0 blocked and 1.0.0 chosen again", |s| {
            s.blocked_tags == ["1.1.0"]
                && s.latest_ref.as_ref().map(|r| r.tag.as_str()) == Some("1.0.0")
        })
        .await;
    assert_eq!(policy.latest_ref.map(|r| r.tag).as_deref(), Some("1.0.0"));
    let note = u.wait_event("config", "PullRequestClosed").await;
    assert!(note.contains("1.1.0"), "{note}");
    // Never proposed again: no new pull request through several rounds.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let still = world
        .forge(&repo)
        .latest_pull_request(PUSH_BRANCH, "main")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(still.number, rejected.number);

    // A newer version: a new pull request, on the branch started again from main, proposing
    // only 1.2.0 (the rejected commit is gone from the branch).
    world.push_image(&[&format!("{path}:1.2.0")]).await;
    let next = pull_request(&u, &repo, "a new pull request proposing 1.2.0", |pr| {
        pr.number != rejected.number && pr.state == PullRequestState::Open
    })
    .await;
    assert!(next.body.contains("`1.0.0` | `1.2.0` |"), "{}", next.body);
    assert!(!next.body.contains("1.1.0"), "{}", next.body);
    let tip = world.forge_tip(&repo, PUSH_BRANCH).await.unwrap();
    let main = world.forge_tip(&repo, "main").await.unwrap();
    let (user, _) = world.forge_credentials();
    let (_, commit) = world
        .forge_api(
            "GET",
            &format!("/repos/{user}/{repo}/git/commits/{tip}"),
            None,
        )
        .await;
    assert_eq!(
        commit["parents"][0]["sha"],
        main.to_string(),
        "one commit on main: {commit}"
    );
    u.stop().await;
}

/// The secret the forge signs its pull-request deliveries with.
const HOOK_SECRET: &str = "forge-pr-hook-secret-81c3";

/// How soon after the close the updater must have read it: seconds, where its interval is an
/// hour.
const AT_ONCE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forges_pull_request_webhook_makes_the_updater_read_a_close_at_once() {
    let mut u = Updater::idle("update-pr-hook").await;
    let world = u.world;
    let (_, image) = push_web(world, "prh", &["1.0.0", "1.1.0"]).await;
    let (repo, _) = seed(world, "prh-config", &[(WEB_FILE, u.web(&image, "1.0.0"))]).await;
    forge_secret(&u).await;
    // An hour: after the round that proposes 1.1.0 only the webhook can make it read the branch.
    let mut update = proposing(&world.forge_url(&repo));
    update["spec"]["interval"] = json!("1h");
    u.create::<ImageUpdate>(update).await;
    u.create::<ImageRepository>(repository("web", &image, "2s"))
        .await;
    u.create::<ImagePolicy>(semver_policy("web", "web")).await;

    // The daemon's receiver on an ephemeral port with a gitea secret, and the forge's own
    // webhook of the repository's pull requests to it.
    let (receiver, events) =
        Receiver::start_with("distribution-unused-4e0d", &[("gitea", HOOK_SECRET)]).await;
    let hook = format!("http://{}/webhook/gitea", receiver.addr);
    world
        .forge_hook(&repo, &hook, HOOK_SECRET, &["pull_request"])
        .await;
    u.run(Some(events)).await;

    let proposed = pull_request(&u, &repo, "a pull request proposing 1.1.0", |pr| {
        pr.state == PullRequestState::Open && pr.body.contains("1.1.0")
    })
    .await;
    u.wait_status::<ImageUpdate>("config", "status.pullRequest open", |s| {
        s.pull_request
            .as_ref()
            .is_some_and(|p| p.number == proposed.number && p.state == "open")
    })
    .await;

    // A reviewer closes it without merging: the forge's webhook, not the interval, brings it in.
    let closed = Instant::now();
    world
        .forge(&repo)
        .close_pull_request(proposed.number)
        .await
        .unwrap();
    let policy = wait_status(
        &u.api::<ImagePolicy>(),
        "web",
        "1.1.0 in status.blockedTags within seconds of the close",
        AT_ONCE,
        |s: &config_updater::resource::ImagePolicyStatus| s.blocked_tags == ["1.1.0"],
    )
    .await;
    assert_eq!(policy.latest_ref.map(|r| r.tag).as_deref(), Some("1.0.0"));
    let note = wait_until("an event PullRequestClosed", AT_ONCE, || async {
        let events = u.events("config", "PullRequestClosed").await;
        match events.first() {
            Some(e) => Ok(e.note.clone().unwrap_or_default()),
            None => Err("none yet".to_owned()),
        }
    })
    .await;
    assert!(note.contains("1.1.0"), "{note}");
    u.wait_status::<ImageUpdate>("config", "status.pullRequest closed", |s| {
        s.pull_request
            .as_ref()
            .is_some_and(|p| p.number == proposed.number && p.state == "closed")
    })
    .await;
    println!("the close was read {:?} after it", closed.elapsed());
    u.stop().await;
}
