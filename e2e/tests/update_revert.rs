//! User story: a bump went out, the release is bad, and a person rolls it back with
//! `git revert` on the config repository. The updater notices the revert by itself (it reads
//! the branch every `interval`), records the reverted tag in the policy's
//! `status.blockedTags`, and never commits that tag again; a newer tag pushed afterwards is
//! committed as usual.
//!
//! Against the real world: the plain registry and the git server over HTTP; the revert is a
//! real commit pushed to the server as a person's `git revert` writes it.

mod update_support;

use std::time::Duration;

use config_updater::resource::{ImagePolicy, ImageRepository, ImageUpdate};
use sluice_e2e::git_support::{blocking, me, remote, write};
use sluice_shared::git;
use update_support::{
    Updater, WEB_FILE, file, image_update, message, next_commit, parent, push_web, repository,
    semver_policy, stays, tip, trailers,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reverted_bump_is_blocked_and_never_recommitted_while_a_newer_tag_goes_out() {
    let u = Updater::start("update-revert").await;
    let world = u.world;
    let (path, image) = push_web(world, "revert", &["1.0.0", "1.0.1"]).await;
    let (web, at) = (WEB_FILE, |tag: &str| u.web(&image, tag));
    let (repo, seeded) = u.seed_web("revert-config", &image, "1.0.0").await;
    u.world_git_secret("git").await;
    let url = world.git_http_url(&repo);
    u.create::<ImageUpdate>(image_update("config", &url, Some("3s")))
        .await;
    u.create::<ImageRepository>(repository("web", &image, "2s"))
        .await;
    u.create::<ImagePolicy>(semver_policy("web", "web")).await;

    let bump = next_commit(world, &repo, seeded).await;
    assert_eq!(file(world, &repo, web), at("1.0.1"));
    let bumped = message(world, &repo, bump);
    assert!(bumped.contains("old=1.0.0 new=1.0.1"), "{bumped}");

    // A person reverts it, as `git revert <bump>` writes it: the old bytes back, the subject
    // quoted, the reverted commit named (the bump's trailers stay in the reverted commit).
    let subject = bumped.lines().next().unwrap().to_owned();
    let revert_message = format!("Revert \"{subject}\"\n\nThis reverts commit {bump}.\n");
    let human = remote(&world.git_http_url(&repo), world.git_basic_auth());
    let seed_bytes = at("1.0.0");
    let revert = blocking(move || {
        let work = tempfile::tempdir().unwrap();
        let repo = git::clone_or_open(&human, "main", work.path()).unwrap();
        let c = git::commit(
            &repo,
            "main",
            &[write(web, &seed_bytes)],
            &me(),
            &revert_message,
        )
        .unwrap()
        .expect("the revert changes the file");
        git::push(&repo, &human, "main").unwrap();
        c
    })
    .await;
    assert_eq!(parent(world, &repo, revert), bump);

    // Noticed without any new tag: 1.0.1 is blocked, the policy falls back to 1.0.0.
    let policies = u.api::<ImagePolicy>();
    let status = u
        .wait_status::<ImagePolicy>("web", "1.0.1 in status.blockedTags", |s| {
            let latest = s.latest_ref.as_ref().map(|r| r.tag.as_str());
            s.blocked_tags == ["1.0.1"] && latest == Some("1.0.0")
        })
        .await;
    assert_eq!(status.blocked_tags, vec!["1.0.1".to_owned()]);
    let note = u.wait_event("web", "Blocked").await;
    assert!(note.contains("1.0.1"), "{note}");
    // Never re-committed: the revert stays on top through several interval checks.
    stays(world, &repo, revert, Duration::from_secs(8)).await;
    assert_eq!(file(world, &repo, web), at("1.0.0"));
    let c = u.ready::<ImagePolicy>("web").await.unwrap();
    assert_eq!(c.reason, "Chosen", "{c:?}");

    // A newer tag is committed as usual, on top of the revert.
    world.push_image(&[&format!("{path}:1.0.2")]).await;
    let newer = next_commit(world, &repo, revert).await;
    assert_eq!(parent(world, &repo, newer), revert);
    assert_eq!(file(world, &repo, web), at("1.0.2"));
    let text = message(world, &repo, newer);
    assert_eq!(trailers(&text).len(), 1, "{text}");
    assert!(text.contains("old=1.0.0 new=1.0.2"), "{text}");
    let s = policies.get("web").await.unwrap().status.unwrap();
    assert_eq!(s.blocked_tags, vec!["1.0.1".to_owned()], "still blocked");
    stays(world, &repo, tip(world, &repo), Duration::from_secs(4)).await;

    u.stop().await;
}
