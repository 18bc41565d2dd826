//! The Config Updater's whole loop against the real world: a registry push becomes a bump commit
//! on the git server. The three controllers run in-process for the test's namespace; the second
//! bump is triggered by a distribution notification posted to the in-process webhook router
//! (bound on an ephemeral port: the world's notify address belongs to webhook_registry.rs).

mod update_support;

use git2::Oid;
use sluice_e2e::World;
use update_support::{Receiver, Updater, WEB_FILE, file, message, next_commit, parent, push_web};

const TOKEN: &str = "update-loop-token";

/// Waits for a commit on main other than `after` and checks it changes exactly the tag bytes.
async fn bump_commit(world: &World, name: &str, after: Oid, before: &str, tag: &str) -> Oid {
    let commit = next_commit(world, name, after).await;
    let (message, content) = (message(world, name, commit), file(world, name, WEB_FILE));
    assert_eq!(parent(world, name, commit), after, "one commit on top");
    let old_tag = before
        .split("/web:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    let expected = before.replacen(&format!("/web:{old_tag} "), &format!("/web:{tag} "), 1);
    assert_eq!(content, expected, "only the tag bytes change");
    assert!(
        message
            .lines()
            .any(|l| l.starts_with("Sluice-Change: ") && l.contains(&format!("new={tag}"))),
        "a Sluice-Change trailer names the bump:\n{message}"
    );
    commit
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_push_becomes_a_pushed_bump_commit() {
    let mut u = Updater::idle("update-loop").await;
    let world = u.world;
    let (path, image) = push_web(world, "loop", &["1.4.2", "1.4.3"]).await;

    let original = u.web(&image, "1.4.2");
    let (repo_name, seed) = u.seed_web("loop-config", &image, "1.4.2").await;
    u.world_git_secret("git").await;
    // The ImageRepository's long interval: the second bump must come through the webhook.
    u.create_web(&image, &repo_name, None).await;

    // The webhook router on an ephemeral port, feeding the controllers.
    let (receiver, events) = Receiver::start(TOKEN).await;
    u.run(Some(events)).await;

    let tag = u.wait_policy_tag("web").await;
    assert_eq!(tag, "1.4.3");
    let first = bump_commit(world, &repo_name, seed, &original, "1.4.3").await;
    u.wait_last_push_is("config", first).await;

    // A new tag, announced by the registry's notification: scanned at once, bumped again.
    let pushed = world.push_image(&[&format!("{path}:1.4.4")]).await;
    let status = receiver
        .notify(world.registry(), &path, "1.4.4", &pushed[0].digest)
        .await;
    assert!(
        (200..300).contains(&status),
        "the notification is accepted: {status}"
    );
    let after_first = file(world, &repo_name, WEB_FILE);
    let second = bump_commit(world, &repo_name, first, &after_first, "1.4.4").await;
    u.wait_last_push_is("config", second).await;
    assert_eq!(u.policy_tag("web").await.unwrap(), "1.4.4");

    u.stop().await;
}
