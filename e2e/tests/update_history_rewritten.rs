//! A person force-pushes the config branch, dropping a bump the Config Updater made. The updater
//! commits on the rewritten tip (the policy's choice again, then the next tag): the person's
//! rewrite stays, and the dropped commit is not brought back (the updater's work clone follows
//! the server, it does not push its own history over it).

mod update_support;

use sluice_e2e::sync::{commit_dir_onto, git_in, tree};
use sluice_e2e::wait_until;
use std::time::Duration;
use update_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_bump_lands_on_the_rewritten_branch() {
    let mut u = Updater::idle("update-rewrite").await;
    let WebLoop {
        path,
        repo,
        seed,
        image,
        ..
    } = u.web_loop("rewrite").await;
    u.run(None).await;

    let on_main = |tag: &'static str| {
        let (world, repo) = (u.world, repo.clone());
        move || {
            let repo = repo.clone();
            async move {
                let file = git_in(world, &repo, &["show", &format!("main:{WEB_FILE}")]);
                if file.contains(&format!(":{tag} ")) {
                    Ok(())
                } else {
                    Err(format!("not yet {tag}"))
                }
            }
        }
    };
    u.world.push_image(&[&format!("{path}:1.0.1")]).await;
    wait_until(
        "the bump to 1.0.1",
        Duration::from_secs(60),
        on_main("1.0.1"),
    )
    .await;
    let dropped = git_in(u.world, &repo, &["rev-parse", "main"]);

    // Someone rewrites main from the seed: the bump is gone, the README says so.
    let files = tree(&[
        (WEB_FILE, &u.web(&image, "1.0.0")),
        ("README.md", "The config repo, rewritten by a person.\n"),
    ]);
    let rewritten = commit_dir_onto(u.world, &repo, files.path(), Some(&seed), "rewrite").await;

    // The next tag is bumped on top of the rewrite.
    u.world.push_image(&[&format!("{path}:1.0.2")]).await;
    wait_until(
        "the bump to 1.0.2",
        Duration::from_secs(60),
        on_main("1.0.2"),
    )
    .await;
    // On the rewritten tip: the policy still chose 1.0.1, so the updater may first bump the
    // rewrite back to 1.0.1 (its intent), then to 1.0.2; either way the rewrite is main's history.
    let history = git_in(u.world, &repo, &["rev-list", "main"]);
    assert!(
        history.lines().any(|c| c.trim() == rewritten.trim()),
        "committed on the rewritten tip"
    );
    let readme = git_in(u.world, &repo, &["show", "main:README.md"]);
    assert!(readme.contains("rewritten by a person"), "{readme}");
    assert!(
        !history.contains(&dropped),
        "the dropped bump is not brought back"
    );
    u.stop().await;
}
