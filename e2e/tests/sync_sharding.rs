//! Sharding, as a platform team with many GitSyncs runs it: three synchronizer processes with
//! `--shards 6` share 60 GitSyncs. Each GitSync is applied by exactly one replica (counted from
//! the replicas' own "applied" log lines), all three get work, and when one replica is SIGKILLed
//! its shards move to the other two within the lease duration, and no GitSync is ever applied by
//! two replicas at once (the apply spans in their logs never overlap). The GitSyncs poll hourly:
//! the next commit reaches them by one signed push webhook to one replica, which syncs its own
//! and hands every other to the replica of its shard (an annotation), so all 60 are applied, with
//! no push dropped.

mod sync_support;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_e2e::daemon::Daemon;
use sluice_e2e::{TestNamespace, World, unique_name, wait_until};
use sluice_shared::webhook::sign_hmac_sha256;
use sync_support::*;

const SYNCS: usize = 60;
const SHARDS: &str = "6";
const LEASE: &str = "3s";
const HOOK_SECRET: &str = "sharding-hook-secret-41c9";

/// A replica and the address its webhooks are served on.
fn replica(world: &World, ns: &str, dir: &Path, name: &str) -> (Daemon, String) {
    let port = sluice_e2e::git_support::closed_port().to_string();
    // One file per replica: rewriting a shared one while another replica reads it at start-up
    // showed it an empty secret.
    let secret = dir.join(format!("generic-secret-{name}"));
    std::fs::write(&secret, HOOK_SECRET).unwrap();
    let hooks = format!("generic={}", secret.display());
    let cache = dir.join(format!("cache-{name}"));
    let daemon = Daemon::start_with_env(
        world,
        "deploy-synchronizer",
        &[
            "--log-format",
            "json",
            "run",
            "--watch-namespace",
            ns,
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
            "--cache-dir",
            cache.to_str().unwrap(),
            "--shards",
            SHARDS,
            "--leader-election-namespace",
            ns,
            "--lease-duration",
            LEASE,
            "--webhook-secret-file",
            &hooks,
        ],
        &[("POD_NAME", name)],
        &dir.join(format!("{name}.log")),
    );
    (daemon, format!("127.0.0.1:{port}"))
}

/// (sync, revision) → how many times a replica's log says it applied it.
fn applied(logs: &[String]) -> HashMap<(String, String), usize> {
    let mut counts = HashMap::new();
    for line in logs.iter().flat_map(|log| log.lines()) {
        let Ok(entry) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if entry["message"] == "applied" {
            let key = (
                entry["sync"].as_str().unwrap_or("").to_owned(),
                entry["revision"].as_str().unwrap_or("").to_owned(),
            );
            *counts.entry(key).or_default() += 1;
        }
    }
    counts
}

/// How many shards a replica's log says it holds now.
fn holding(log: &str) -> i64 {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .map(|entry| match entry["message"].as_str() {
            Some("shard acquired") => 1,
            Some("shard released" | "shard lost to another replica") => -1,
            _ => 0,
        })
        .sum()
}

/// The spans (start, end timestamps) in which `log` applied `revision` of `sync`: from the
/// last "sending" line for the sync to its "applied" line.
fn apply_spans(log: &str, sync: &str, revision: &str) -> Vec<(String, String)> {
    let mut start = None;
    let mut spans = Vec::new();
    for entry in log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        if entry["sync"] != sync {
            continue;
        }
        let at = entry["timestamp"].as_str().unwrap_or("").to_owned();
        match entry["message"].as_str() {
            Some(m) if m.starts_with("sending") => start = Some(at),
            Some("applied") if entry["revision"] == revision => {
                spans.push((start.take().unwrap_or_else(|| at.clone()), at));
            }
            _ => {}
        }
    }
    spans
}

fn files(version: &str) -> Vec<(String, String)> {
    (0..SYNCS)
        .map(|i| {
            (
                format!("apps/app-{i:02}/settings.yaml"),
                format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: app-{i:02}}}\ndata: {{version: \"{version}\"}}\n"),
            )
        })
        .collect()
}

async fn all_applied(ns: &TestNamespace, revision: &str, within: Duration) {
    wait_until(
        &format!("all {SYNCS} GitSyncs at {revision}"),
        within,
        || async {
            let done = applied_at(ns, revision).await?;
            if done == SYNCS {
                Ok(())
            } else {
                Err(format!("{done} of {SYNCS}"))
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_gitsyncs_spread_over_three_replicas_and_move_when_one_dies() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sharding").await;
    let dir = tempfile::tempdir().unwrap();
    let names = ["replica-a", "replica-b", "replica-c"];
    let (mut replicas, addrs): (Vec<Option<Daemon>>, Vec<String>) = names
        .iter()
        .map(|n| {
            let (daemon, addr) = replica(world, ns.name(), dir.path(), n);
            (Some(daemon), addr)
        })
        .unzip();
    // The ring settles: two shards each.
    wait_until(
        "two shards per replica",
        Duration::from_secs(60),
        || async {
            let held: Vec<i64> = replicas
                .iter()
                .flatten()
                .map(|d| holding(&d.log()))
                .collect();
            if held == [2, 2, 2] {
                Ok(())
            } else {
                Err(format!("{held:?}"))
            }
        },
    )
    .await;

    let repo = unique_name("sharding");
    let v1 = files("1");
    let refs: Vec<(&str, &str)> = v1.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    let tree1 = tree(&refs);
    let seed = world.git_seed(&repo, Some(tree1.path())).await.unwrap();
    git_secret(&ns, world, "git").await;
    let url = world.git_http_url(&repo);
    for i in 0..SYNCS {
        create_git_sync_spec(&ns, &format!("app-{i:02}"), json!({
            "source": {"url": url, "ref": {"branch": "main"}, "path": format!("apps/app-{i:02}"),
                       "interval": "1h", "secretRef": {"name": "git"}},
            "targetNamespace": ns.name(),
        }))
        .await;
    }

    all_applied(&ns, &seed, Duration::from_secs(120)).await;
    let logs = |replicas: &[Option<Daemon>]| -> Vec<String> {
        replicas.iter().flatten().map(Daemon::log).collect()
    };
    let counts = applied(&logs(&replicas));
    for i in 0..SYNCS {
        let key = (format!("{}/app-{i:02}", ns.name()), seed.clone());
        assert_eq!(
            counts.get(&key),
            Some(&1),
            "app-{i:02} applied once: {counts:?}"
        );
    }
    let per_replica: Vec<usize> = replicas
        .iter()
        .flatten()
        .map(|d| applied(&[d.log()]).len())
        .collect();
    assert!(
        per_replica.iter().all(|&n| n > 0),
        "every replica works: {per_replica:?}"
    );
    eprintln!("sharding: seed applied by the 3 replicas as {per_replica:?} GitSyncs");

    // replica-b dies; a commit changes all 60.
    let b_log = replicas[1].take().unwrap().kill().await;
    let killed = Instant::now();
    let v2 = files("2");
    let refs: Vec<(&str, &str)> = v2.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    let tree2 = tree(&refs);
    let next = commit_dir(world, &repo, tree2.path(), "every app: version 2").await;
    // One push webhook, to replica-a only.
    let body = json!({"url": url, "ref": "main", "revision": next}).to_string();
    let signature = sign_hmac_sha256(HOOK_SECRET.as_bytes(), body.as_bytes());
    let headers = [
        ("Content-Type", "application/json".to_owned()),
        ("X-Signature-256", signature),
    ];
    let status = sluice_e2e::http::post(&addrs[0], "/webhook/generic", &headers, &body).await;
    assert_eq!(status, 202, "accepted");
    all_applied(&ns, &next, Duration::from_secs(120)).await;
    let moved = killed.elapsed();
    let a_log = replicas[0].as_ref().unwrap().log();
    assert!(
        a_log.contains("webhook handed to the replica of its shard"),
        "replica-a handed the pushes for other shards over"
    );
    let mut all_logs = logs(&replicas);
    all_logs.push(b_log);
    // Every GitSync reached the commit, and no two replicas applied one at the same time. A
    // GitSync whose shard moved after its apply is applied again by the new holder, in turn (it
    // has no record of the apply, as after a restart): counted.
    let mut again = 0;
    for i in 0..SYNCS {
        let sync = format!("{}/app-{i:02}", ns.name());
        let mut spans: Vec<(String, String)> = all_logs
            .iter()
            .flat_map(|log| apply_spans(log, &sync, &next))
            .collect();
        assert!(!spans.is_empty(), "{sync} applied");
        spans.sort();
        for pair in spans.windows(2) {
            assert!(
                pair[0].1 <= pair[1].0,
                "{sync} applied by two replicas at once: {spans:?}"
            );
        }
        again += spans.len() - 1;
    }
    eprintln!(
        "sharding: replica-b SIGKILLed; all {SYNCS} GitSyncs at the next commit, pushed to \
         replica-a alone, {} ms later (lease {LEASE}); {again} applied again, in turn, after \
         their shard moved",
        moved.as_millis()
    );
    for daemon in replicas.into_iter().flatten() {
        daemon.stop().await;
    }
}
