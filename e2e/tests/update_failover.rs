//! Two replicas of the Config Updater, as processes with `--leader-elect`. A newer tag is pushed
//! to the registry; the leader is SIGKILLed the moment its ImagePolicy chooses it, with the bump's
//! commit and push a few milliseconds away (before, during or just after them). The standby
//! takes over within the lease duration and the bump lands exactly once: no lost commit, no
//! duplicate. The next tag is bumped by the new leader as usual.

mod update_support;

use std::path::Path;
use std::time::{Duration, Instant};

use sluice_e2e::daemon::Daemon;
use sluice_e2e::wait_until;
use update_support::*;

const LEASE: &str = "4s";

/// A replica named `name` (its `POD_NAME`) with a work directory of its own.
fn replica(u: &Updater, dir: &Path, name: &str) -> Daemon {
    let args = [
        "--watch-namespace",
        u.ns(),
        "--leader-elect",
        "--leader-election-namespace",
        u.ns(),
        "--lease-duration",
        LEASE,
    ];
    let env = [("RUST_LOG", "debug")];
    Daemon::run_as_pod(u.world, "config-updater", dir, name, &args, &env).0
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bump_lands_once_when_the_leader_dies_as_it_chooses_the_tag() {
    let u = Updater::idle("update-failover").await;
    let WebLoop {
        path, repo, seed, ..
    } = u.web_loop("failover").await;

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
    let at_kill = bumps_since(u.world, &repo, &seed);

    logged(&b, "replica-b", "leading: starting to work").await;
    let takeover = killed.elapsed();
    let bumped = wait_until(
        "the bump to 1.0.1 on main",
        Duration::from_secs(60),
        || async {
            let (count, line) = bumps_since(u.world, &repo, &seed);
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
        bumps_since(u.world, &repo, &seed).0,
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
            let (count, line) = bumps_since(u.world, &repo, &seed);
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
