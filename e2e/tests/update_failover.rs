//! Two replicas of the Config Updater, as processes with `--leader-elect`. A newer tag is pushed
//! to the registry; the leader is SIGKILLed the moment its ImagePolicy chooses it, with the bump's
//! commit and push a few milliseconds away (before, during or just after them). The standby
//! takes over within the lease duration and the bump lands exactly once: no lost commit, no
//! duplicate. The next tag is bumped by the new leader as usual.

mod update_support;

use std::path::Path;
use std::time::{Duration, Instant};

use config_updater::resource::{ImagePolicy, ImageRepository, ImageUpdate};
use sluice_e2e::daemon::Daemon;
use sluice_e2e::sync::git_in;
use sluice_e2e::wait_until;
use update_support::*;

const LEASE: &str = "4s";

/// A replica named `name` (its `POD_NAME`) with a work directory of its own.
fn replica(u: &Updater, dir: &Path, name: &str) -> Daemon {
    let port = sluice_e2e::git_support::closed_port().to_string();
    let work = dir.join(format!("work-{name}"));
    Daemon::start_with_env(
        u.world,
        "config-updater",
        &[
            "--log-format",
            "json",
            "--log-level",
            "debug",
            "run",
            "--watch-namespace",
            u.ns(),
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
            "--work-dir",
            work.to_str().unwrap(),
            "--leader-elect",
            "--leader-election-namespace",
            u.ns(),
            "--lease-duration",
            LEASE,
        ],
        &[("POD_NAME", name)],
        &dir.join(format!("{name}.log")),
    )
}

async fn logged(daemon: &Daemon, name: &str, what: &str) {
    wait_until(
        &format!("{name} to log {what:?}"),
        Duration::from_secs(60),
        || async {
            if daemon.log().contains(what) {
                Ok(())
            } else {
                Err("not yet")
            }
        },
    )
    .await;
}

/// Commits on main since `seed`, and main's image line.
fn main_since(u: &Updater, repo: &str, seed: &str) -> (usize, String) {
    let count = git_in(
        u.world,
        repo,
        &["rev-list", "--count", &format!("{seed}..main")],
    );
    let file = git_in(u.world, repo, &["show", &format!("main:{WEB_FILE}")]);
    let image = file
        .lines()
        .find(|l| l.contains("image:"))
        .unwrap_or("")
        .trim()
        .to_owned();
    (count.trim().parse().unwrap(), image)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bump_lands_once_when_the_leader_dies_as_it_chooses_the_tag() {
    let u = Updater::idle("update-failover").await;
    let (path, image) = push_web(u.world, "failover", &["1.0.0"]).await;
    let (repo, seed) = u.seed_web("failover", &image, "1.0.0").await;
    let seed = seed.to_string();
    u.world_git_secret("git").await;
    u.create::<ImageRepository>(repository("web", &image, "1s"))
        .await;
    u.create::<ImagePolicy>(semver_policy("web", "web")).await;
    let url = u.world.git_http_url(&repo);
    u.create::<ImageUpdate>(image_update("config", &url, Some("1s")))
        .await;

    let dir = tempfile::tempdir().unwrap();
    let a = replica(&u, dir.path(), "replica-a");
    logged(&a, "replica-a", "leading: starting to work").await;
    let b = replica(&u, dir.path(), "replica-b");
    logged(&b, "replica-b", "joined the leader election").await;
    assert_eq!(u.wait_policy_tag("web").await, "1.0.0");

    // 1.0.1 is pushed; the leader dies as its policy chooses it.
    u.world.push_image(&[&format!("{path}:1.0.1")]).await;
    wait_until(
        "the policy to choose 1.0.1",
        Duration::from_secs(60),
        || async {
            match u.policy_tag("web").await {
                Ok(tag) if tag == "1.0.1" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    a.kill().await;
    let killed = Instant::now();
    let at_kill = main_since(&u, &repo, &seed);

    logged(&b, "replica-b", "leading: starting to work").await;
    let takeover = killed.elapsed();
    let bumped = wait_until(
        "the bump to 1.0.1 on main",
        Duration::from_secs(60),
        || async {
            let (count, line) = main_since(&u, &repo, &seed);
            if line.contains(":1.0.1") {
                Ok(count)
            } else {
                Err(format!("{count} commits; {line}"))
            }
        },
    )
    .await;
    // The standby's scans find it bumped: nothing more is committed.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        main_since(&u, &repo, &seed).0,
        1,
        "one bump commit, no duplicate"
    );
    eprintln!(
        "failover (updater): leader SIGKILLed as its policy chose 1.0.1, main then had {} bump \
         commit(s); standby leading after {} ms (lease {LEASE}); bumps on main: {bumped}",
        at_kill.0,
        takeover.as_millis()
    );

    // The new leader bumps the next tag as usual.
    u.world.push_image(&[&format!("{path}:1.0.2")]).await;
    wait_until(
        "the bump to 1.0.2 on main",
        Duration::from_secs(60),
        || async {
            let (count, line) = main_since(&u, &repo, &seed);
            if line.contains(":1.0.2") && count == 2 {
                Ok(())
            } else {
                Err(format!("{count}; {line}"))
            }
        },
    )
    .await;
    b.stop().await;
}
