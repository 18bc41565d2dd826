//! The registry changes under a choice already made:
//! - a release is yanked (its tag deleted) after the updater bumped to it: the policy chooses the
//!   newest tag that remains, and Git follows with one commit (as Flux does); no flapping, and the
//!   next release is bumped as usual;
//! - a mutable tag is re-pushed with other content (a new digest under the same tag) while a
//!   policy pins its digest: the pin moves once, to the new digest.

mod update_support;

use std::time::Duration;

use config_updater::resource::ImagePolicy;
use serde_json::json;
use sluice_e2e::wait_until;
use update_support::*;

/// Waits until main has `count` commits since `seed` and its image line contains `needle`.
async fn main_reaches(u: &Updater, repo: &str, seed: &str, count: usize, needle: &str) {
    wait_until(
        &format!("main at {count} commits, with {needle}"),
        Duration::from_secs(90),
        || async {
            match bumps_since(u.world, repo, seed) {
                (n, line) if n == count && line.contains(needle) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yanked_release_is_followed_by_one_commit_to_the_newest_remaining() {
    let mut u = Updater::idle("yank").await;
    let WebLoop {
        path, repo, seed, ..
    } = u.web_loop("yank").await;
    u.run(None).await;
    u.world.push_image(&[&format!("{path}:1.0.1")]).await;
    main_reaches(&u, &repo, &seed, 1, ":1.0.1 ").await;

    // 1.0.1 is yanked: its tag deleted from the registry.
    u.world.delete_image(&[&format!("{path}:1.0.1")]).await;
    main_reaches(&u, &repo, &seed, 2, ":1.0.0 ").await;
    let text = message(u.world, &repo, tip(u.world, &repo));
    assert!(text.contains("old=1.0.1 new=1.0.0"), "{text}");
    stays(u.world, &repo, tip(u.world, &repo), Duration::from_secs(3)).await;

    u.world.push_image(&[&format!("{path}:1.0.2")]).await;
    main_reaches(&u, &repo, &seed, 3, ":1.0.2 ").await;
    u.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_under_the_same_tag_moves_the_pinned_digest_once() {
    let mut u = Updater::idle("rebuild").await;
    let path = format!("{}/web", sluice_e2e::unique_name("rebuild"));
    let image = format!("{}/{path}", u.world.registry());
    let first = u.world.push_image(&[&format!("{path}:stable")]).await;
    let first = first[0].digest.clone();
    let pinned = format!("stable@{first}");
    let (repo, seed) = u.seed_web("rebuild", &image, &pinned).await;
    let seed = seed.to_string();
    u.world_git_secret("git").await;
    u.create_web_scanned(&image, &repo, "1s", Some("1s")).await;
    // The policy of `web` tracks the digest of `stable` instead of choosing among versions.
    u.patch_spec::<ImagePolicy>(
        "web",
        json!({"policy": {"semver": null, "digest": {"tag": "stable"}}}),
    )
    .await;
    u.run(None).await;
    stays(u.world, &repo, tip(u.world, &repo), Duration::from_secs(3)).await;
    assert_eq!(
        bumps_since(u.world, &repo, &seed).0,
        0,
        "already at its digest"
    );

    // CI re-pushes `stable` with other content: a new digest under the same tag.
    let second = u
        .world
        .push_rebuild("nightly 2026-12-05", &[&format!("{path}:stable")])
        .await;
    let second = second[0].digest.clone();
    assert_ne!(first, second);
    main_reaches(&u, &repo, &seed, 1, &format!(":stable@{second} ")).await;
    stays(u.world, &repo, tip(u.world, &repo), Duration::from_secs(3)).await;
    u.stop().await;
}
