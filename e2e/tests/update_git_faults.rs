//! User story: the updater cannot write to the config repository (the git server is
//! unreachable, the credentials are wrong, the SSH host key is not the one trusted). Each shows
//! on the ImageUpdate as Ready=False with a reason and a message to act on (no password in it,
//! nor in the events), nothing is committed, the file on the server stays whole, and the bump
//! goes out by itself once the cause is fixed.
//!
//! Against the real world: the plain registry, the git server over HTTP (basic auth) and SSH.

mod update_support;

use config_updater::resource::{ImagePolicy, ImageRepository, ImageUpdate};
use serde_json::json;
use sluice_e2e::git_support::closed_port;
use update_support::{
    Updater, WEB_FILE, file, image_update, message, next_commit, parent, push_web, repository,
    semver_policy, stays, trailers,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_back_faults_show_on_the_update_commit_nothing_and_recover() {
    let u = Updater::start("update-gitfault").await;
    let world = u.world;
    let (path, image) = push_web(world, "gitfault", &["1.0.0", "1.0.1"]).await;
    let (web, at) = (WEB_FILE, |tag: &str| u.web(&image, tag));
    let (repo, seeded) = u.seed_web("gitfault-config", &image, "1.0.0").await;
    let (_, password) = world.git_credentials();
    u.git_secret("git", password).await;

    // 1. Unreachable: nothing listens at the URL's port.
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}/{repo}.git");
    u.create::<ImageUpdate>(image_update("config", &url, Some("1h")))
        .await;
    u.create::<ImageRepository>(repository("web", &image, "2s"))
        .await;
    u.create::<ImagePolicy>(semver_policy("web", "web")).await;
    let c = u
        .wait_ready::<ImageUpdate>("config", "False", "GitUnreachable")
        .await;
    assert!(c.message.starts_with("write-back failed: "), "{c:?}");
    assert!(c.message.contains(&format!("127.0.0.1:{port}")), "{c:?}");
    assert!(c.message.contains("unreachable"), "{c:?}");
    u.wait_event("config", "GitUnreachable").await;
    // The bump still waits in status, and nothing reached the server.
    let bump = format!("{image}:1.0.1");
    u.wait_status::<ImageUpdate>("config", "the bump pending after a failed push", |s| {
        let failed = s.conditions.iter().any(|c| c.reason == "GitUnreachable");
        matches!(s.pending.as_slice(), [p] if failed && p.new_image == bump)
    })
    .await;
    stays(world, &repo, seeded, std::time::Duration::from_secs(2)).await;
    assert_eq!(file(world, &repo, web), at("1.0.0"));

    // Fixed: the right URL. The bump goes out, exactly the tag bytes changed.
    u.patch_spec::<ImageUpdate>("config", json!({"git": {"url": world.git_http_url(&repo)}}))
        .await;
    let first = next_commit(world, &repo, seeded).await;
    assert_eq!(parent(world, &repo, first), seeded);
    assert_eq!(file(world, &repo, web), at("1.0.1"));
    u.wait_ready::<ImageUpdate>("config", "True", "Pushed")
        .await;

    // 2. Wrong credentials: refused, and the password appears nowhere.
    let wrong = "wrong-password-e2e";
    u.git_secret("git", wrong).await;
    world.push_image(&[&format!("{path}:1.0.2")]).await;
    let c = u
        .wait_ready::<ImageUpdate>("config", "False", "GitAuth")
        .await;
    assert!(c.message.contains("authentication to"), "{c:?}");
    assert!(
        !c.message.contains(wrong) && !c.message.contains(password),
        "{c:?}"
    );
    let note = u.wait_event("config", "GitAuth").await;
    assert!(!note.contains(wrong) && !note.contains(password), "{note}");
    stays(world, &repo, first, std::time::Duration::from_secs(2)).await;
    assert_eq!(file(world, &repo, web), at("1.0.1"));

    // Fixed: the right password; the retry pushes.
    u.git_secret("git", password).await;
    let second = next_commit(world, &repo, first).await;
    assert_eq!(parent(world, &repo, second), first);
    assert_eq!(file(world, &repo, web), at("1.0.2"));
    u.wait_ready::<ImageUpdate>("config", "True", "Pushed")
        .await;

    // 3. SSH with a known_hosts that trusts another key for the server: refused.
    let identity = std::fs::read_to_string(world.git_ssh_key()).unwrap();
    let known = std::fs::read_to_string(world.git_known_hosts()).unwrap();
    let host = known.split_whitespace().next().unwrap().to_owned();
    // A real key, but the client's, not the server's.
    let other_key = std::fs::read_to_string(world.git_ssh_key().with_extension("pub")).unwrap();
    let mut parts = other_key.split_whitespace();
    let impostor = format!(
        "{host} {} {}\n",
        parts.next().unwrap(),
        parts.next().unwrap()
    );
    u.secret(
        "git-ssh",
        "Opaque",
        json!({"identity": identity, "known_hosts": impostor}),
    )
    .await;
    u.patch_spec::<ImageUpdate>(
        "config",
        json!({"git": {"url": world.git_ssh_url(&repo), "secretRef": {"name": "git-ssh"}}}),
    )
    .await;
    world.push_image(&[&format!("{path}:1.0.3")]).await;
    let c = u
        .wait_ready::<ImageUpdate>("config", "False", "GitHostKey")
        .await;
    assert!(c.message.contains("SSH host key of"), "{c:?}");
    assert!(!c.message.contains("PRIVATE KEY"), "{c:?}");
    u.wait_event("config", "GitHostKey").await;
    stays(world, &repo, second, std::time::Duration::from_secs(2)).await;

    // Fixed: the server's real host key.
    u.secret(
        "git-ssh",
        "Opaque",
        json!({"identity": identity, "known_hosts": known}),
    )
    .await;
    let third = next_commit(world, &repo, second).await;
    assert_eq!(parent(world, &repo, third), second);
    assert_eq!(file(world, &repo, web), at("1.0.3"));
    let text = message(world, &repo, third);
    assert_eq!(trailers(&text).len(), 1, "{text}");
    assert!(text.contains("old=1.0.2 new=1.0.3"), "{text}");
    // Pushed over SSH.
    u.wait_ready::<ImageUpdate>("config", "True", "Pushed")
        .await;
    assert!(!u.events("config", "Pushed").await.is_empty());

    u.stop().await;
}
