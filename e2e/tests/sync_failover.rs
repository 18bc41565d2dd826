//! Two replicas of the synchronizer, as an operator runs them: the release's binary as two
//! processes with `--leader-elect`, one Lease between them. The leader is SIGKILLed in the middle
//! of applying 300 objects (no shutdown, its Lease left to expire); the standby takes over within
//! the lease duration and converges: every object applied, none pruned, and the next commit's
//! removal pruned alone. Then a graceful stop (SIGTERM) releases the Lease, and a new standby
//! takes over at once, as in a rolling update.
//!
//! The takeover times are printed (`failover:` lines), not asserted: the machine is shared.

mod sync_support;

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ListParams;
use sluice_e2e::daemon::Daemon;
use sluice_e2e::{TestNamespace, World, unique_name, wait_until};
use sync_support::*;

const OBJECTS: usize = 300;
const LEASE: &str = "4s";

/// `count` ConfigMaps of the storefront's feature flags, one document each.
fn flags(count: usize, changed: Option<usize>) -> String {
    let mut text = String::from("# The storefront's feature flags, one ConfigMap per flag.\n");
    for i in 0..count {
        let value = if Some(i) == changed { "on" } else { "off" };
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: flag-{i:03}\ndata: {{state: \"{value}\"}}\n"
        ));
    }
    text
}

/// A replica named `name` (its `POD_NAME`) with a cache of its own.
fn replica(world: &World, ns: &str, dir: &Path, name: &str) -> Daemon {
    let args = [
        "--watch-namespace",
        ns,
        "--leader-elect",
        "--leader-election-namespace",
        ns,
        "--lease-duration",
        LEASE,
    ];
    let env = [("RUST_LOG", "debug")];
    Daemon::run_as_pod(world, "deploy-synchronizer", dir, name, &args, &env).0
}

/// Waits until the replica's log says `what`.
async fn logged(daemon: &Daemon, name: &str, what: &str, within: Duration) {
    wait_until(&format!("{name} to log {what:?}"), within, || async {
        if daemon.log().contains(what) {
            Ok(())
        } else {
            Err(format!("not yet; log tail: {}", tail(&daemon.log())))
        }
    })
    .await;
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

/// The names of the flag ConfigMaps in the namespace.
async fn flag_names(ns: &TestNamespace) -> Vec<String> {
    let list = ns
        .api::<ConfigMap>()
        .list_metadata(&ListParams::default())
        .await
        .unwrap();
    list.items
        .into_iter()
        .filter_map(|cm| cm.metadata.name)
        .filter(|name| name.starts_with("flag-"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_from_a_leader_killed_mid_sync_and_converges() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "failover").await;
    let repo = unique_name("failover");
    let files = tree(&[("flags/flags.yaml", &flags(OBJECTS, None))]);
    let seed = world.git_seed(&repo, Some(files.path())).await.unwrap();
    git_secret(&ns, world, "git").await;
    let dir = tempfile::tempdir().unwrap();

    let a = replica(world, ns.name(), dir.path(), "replica-a");
    logged(
        &a,
        "replica-a",
        "leading: starting to work",
        Duration::from_secs(60),
    )
    .await;
    let b = replica(world, ns.name(), dir.path(), "replica-b");
    logged(
        &b,
        "replica-b",
        "joined the leader election",
        Duration::from_secs(60),
    )
    .await;
    assert!(
        !b.log().contains("leading: starting to work"),
        "one leader at a time"
    );

    // The leader starts applying 300 objects; it dies after the first are written.
    create_git_sync(&ns, "flags", &world.git_http_url(&repo), "flags", "git").await;
    let written = wait_until(
        "the first objects written",
        Duration::from_secs(60),
        || async {
            let written = flag_names(&ns).await.len();
            if written > 0 {
                Ok(written)
            } else {
                Err("none yet")
            }
        },
    )
    .await;
    let a_log = a.kill().await;
    let killed = Instant::now();
    let at_kill = flag_names(&ns).await.len();
    assert!(a_log.contains("leading: starting to work"));

    // The standby takes over once the Lease runs out, and applies everything.
    logged(
        &b,
        "replica-b",
        "leading: starting to work",
        Duration::from_secs(60),
    )
    .await;
    let takeover = killed.elapsed();
    let status = wait_status(&ns, "flags", "the standby to apply the revision", |s| {
        s.applied(&seed) && s.inventory.len() == OBJECTS
    })
    .await;
    assert!(status.is("Ready=True"), "{status:?}");
    assert_eq!(flag_names(&ns).await.len(), OBJECTS, "every object applied");
    eprintln!(
        "failover: leader SIGKILLed with {written}..{at_kill} of {OBJECTS} objects written; \
         standby leading after {} ms (lease {LEASE})",
        takeover.as_millis()
    );

    // The next commit removes one flag and turns another on: one pruned, nothing else.
    let files = tree(&[("flags/flags.yaml", &flags(OBJECTS - 1, Some(0)))]);
    let next = commit_dir(
        world,
        &repo,
        files.path(),
        "flags: drop flag-299, turn flag-000 on",
    )
    .await;
    wait_status(&ns, "flags", "the removal to be applied", |s| {
        s.applied(&next)
    })
    .await;
    let names = flag_names(&ns).await;
    assert_eq!(names.len(), OBJECTS - 1);
    assert!(!names.contains(&"flag-299".to_owned()));
    let flag = ns.api::<ConfigMap>().get("flag-000").await.unwrap();
    assert_eq!(flag.data.unwrap()["state"], "on");

    // A rolling update: a new replica stands by, the leader is stopped gracefully and releases
    // the Lease, and the new one leads without waiting for the Lease to run out.
    let c = replica(world, ns.name(), dir.path(), "replica-c");
    logged(
        &c,
        "replica-c",
        "joined the leader election",
        Duration::from_secs(60),
    )
    .await;
    let stopping = Instant::now();
    let b_log = b.stop().await;
    assert!(b_log.contains("released the Lease"), "{}", tail(&b_log));
    logged(
        &c,
        "replica-c",
        "leading: starting to work",
        Duration::from_secs(60),
    )
    .await;
    eprintln!(
        "failover: after SIGTERM of the leader, the standby leads in {} ms (lease {LEASE})",
        stopping.elapsed().as_millis()
    );
    // The new leader finds everything as applied: nothing to write.
    wait_status(&ns, "flags", "the new leader to keep the revision", |s| {
        s.applied(&next) && s.is("Ready=True")
    })
    .await;
    assert_eq!(flag_names(&ns).await.len(), OBJECTS - 1);
    c.stop().await;
}
