//! The config repository's server fails the updater exactly as it pushes:
//! - the git server goes down between the updater's commit and its push (the relay in front of
//!   it is cut while the updater is held at a fail point, `update.committed`): Ready=False
//!   naming the server, nothing on main; back up, the bump lands once, unasked;
//! - a server hook rejects every push to main (a release freeze): Ready=False in the hook's own
//!   words, nothing on main; the freeze lifted, the bump lands once, unasked.
//!
//! The git password is in no log and no status.

mod update_support;

use std::path::Path;
use std::time::Duration;

use config_updater::resource::ImageUpdate;
use serde_json::json;
use sluice_e2e::daemon::Daemon;
use sluice_e2e::git_support::closed_port;
use sluice_e2e::relay::Relay;
use sluice_e2e::wait_until;
use update_support::*;

const FREEZE: &str = "main is frozen for the 2026.12 release train; ask in #release";

fn hook(repo: &Path, script: Option<&str>) {
    use std::os::unix::fs::PermissionsExt;
    let path = repo.join("hooks/pre-receive");
    match script {
        Some(script) => {
            std::fs::write(&path, script).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        None => std::fs::remove_file(&path).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_server_down_at_the_push_or_a_hook_refusing_it_loses_nothing() {
    let u = Updater::idle("update-gitfault").await;
    let WebLoop {
        path, repo, seed, ..
    } = u.web_loop("gitfault").await;
    // The updater reaches the git server through a relay the story can cut.
    let direct = u.world.git_http_url(&repo);
    let server = direct
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let relay = Relay::start(closed_port(), &server).await;
    let relayed = direct.replace(&server, &format!("127.0.0.1:{}", relay.port()));
    u.patch_spec::<ImageUpdate>("config", json!({"git": {"url": relayed}}))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let args = ["--watch-namespace", u.ns()];
    let env = [("FAILPOINTS", "update.committed=1*return(4000)")];
    let (updater, _) = Daemon::run_as_pod(
        u.world,
        "config-updater",
        dir.path(),
        "updater",
        &args,
        &env,
    );
    assert_eq!(u.wait_policy_tag("web").await, "1.0.0");

    // 1. Down between commit and push.
    u.world.push_image(&[&format!("{path}:1.0.1")]).await;
    wait_until(
        "the updater to hold at its commit",
        Duration::from_secs(60),
        || async {
            if updater.log().contains("fail point reached: pausing") {
                Ok(())
            } else {
                Err("not yet")
            }
        },
    )
    .await;
    relay.cut();
    let c = u
        .wait_ready::<ImageUpdate>("config", "False", "GitUnreachable")
        .await;
    println!("down: {}", c.message);
    assert!(c.message.contains(&relayed), "{c:?}");
    assert_eq!(bumps_since(u.world, &repo, &seed).0, 0);
    let relay = Relay::start(relay.port(), &server).await;
    wait_until("the bump to 1.0.1", Duration::from_secs(90), || async {
        match bumps_since(u.world, &repo, &seed) {
            (1, line) if line.contains(":1.0.1 ") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    u.wait_ready::<ImageUpdate>("config", "True", "Pushed")
        .await;

    // 2. A release freeze: the server's pre-receive hook refuses every push.
    let bare = u.world.git_bare_repo(&repo);
    hook(
        &bare,
        Some(&format!("#!/bin/sh\necho '{FREEZE}' >&2\nexit 1\n")),
    );
    u.world.push_image(&[&format!("{path}:1.0.2")]).await;
    let c = u
        .wait_ready::<ImageUpdate>("config", "False", "GitPushRejected")
        .await;
    println!("frozen: {}", c.message);
    assert!(c.message.contains(FREEZE), "the hook's words: {c:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        bumps_since(u.world, &repo, &seed).0,
        1,
        "nothing more on main"
    );
    hook(&bare, None);
    wait_until("the bump to 1.0.2", Duration::from_secs(120), || async {
        match bumps_since(u.world, &repo, &seed) {
            (2, line) if line.contains(":1.0.2 ") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    u.wait_ready::<ImageUpdate>("config", "True", "Pushed")
        .await;

    let log = updater.stop().await;
    drop(relay);
    let (_, password) = u.world.git_credentials();
    assert!(!log.contains(password), "the git password is in the log");
}
