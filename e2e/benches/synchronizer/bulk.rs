//! Cold sync of 1,000 objects, then the same GitSync at rest: writes, resourceVersions, memory.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime};

use deploy_synchronizer::resource::{GitSync, GitSyncStatus};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::ListParams;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use sluice_e2e::bench::{mib, ms};
use sluice_e2e::{TestNamespace, World, unique_name};

use crate::commits;
use crate::daemon::Daemon;
use crate::manifests::{BULK_CHANGED, BULK_OBJECTS, BULK_PATH, write_bulk};
use crate::sync_support::{create_git_sync_spec, describe, status};
use sluice_e2e::apimetrics;

const NAME: &str = "bulk";
/// Commits that each change one object of the 1,000.
const COMMITS: usize = 15;
const INTERVAL: &str = "30s";
/// After Healthy, before the window: the last Deployment status updates land.
const SETTLE: Duration = Duration::from_secs(20);

/// Polls the GitSync's status every 100 ms until `done` holds; the daemon's peak RSS meanwhile.
async fn poll_until(
    ns: &TestNamespace,
    daemon: &Daemon,
    within: Duration,
    what: &str,
    done: impl Fn(&GitSyncStatus) -> bool,
    max_rss: &mut u64,
) -> Instant {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < within {
        *max_rss = (*max_rss).max(daemon.memory().rss_kib);
        match status(ns, NAME).await {
            Ok(s) if done(&s) => return Instant::now(),
            Ok(s) => last = describe(&s).chars().take(600).collect(),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: not within {within:?}; last seen: {last}");
}

/// When the daemon logged `message` for the bulk GitSync, as an offset from `since`.
fn logged(log: &str, key: &str, message: &str, since: SystemTime) -> Option<Duration> {
    let since: chrono::DateTime<chrono::Utc> = since.into();
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == message && v["sync"].as_str() == Some(key))
        .filter_map(|v| {
            let at = chrono::DateTime::parse_from_rfc3339(v["timestamp"].as_str()?).ok()?;
            (at.to_utc() - since).to_std().ok()
        })
        .next()
}

/// `name → resourceVersion` of the namespace's ConfigMaps, Services and Deployments.
async fn versions(ns: &TestNamespace) -> BTreeMap<String, String> {
    async fn of<K>(ns: &TestNamespace, out: &mut BTreeMap<String, String>)
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned,
        <K as Resource>::DynamicType: Default,
    {
        let kind = K::kind(&Default::default()).into_owned();
        let list = ns
            .api::<K>()
            .list(&ListParams::default())
            .await
            .expect("a list");
        for item in list.items {
            out.insert(
                format!("{kind}/{}", item.name_any()),
                item.resource_version().unwrap_or_default(),
            );
        }
    }
    let mut out = BTreeMap::new();
    of::<ConfigMap>(ns, &mut out).await;
    of::<Service>(ns, &mut out).await;
    of::<Deployment>(ns, &mut out).await;
    out
}

/// The figures, and the git repository made (removed by the caller once the daemon is gone).
pub async fn run(
    world: &World,
    ns: &TestNamespace,
    daemon: &Daemon,
    extra: &Client,
    window: Duration,
) -> (String, String) {
    let mut report = format!(
        "## bulk: GitSync over {BULK_OBJECTS} objects (600 ConfigMaps, 200 Deployments, 200 Services), interval {INTERVAL}\n"
    );
    let repo = unique_name("bench-sync-bulk");
    let dir = tempfile::tempdir().expect("a work tree");
    write_bulk(dir.path(), world.registry(), "v1");
    let seed = world
        .git_seed(&repo, Some(dir.path()))
        .await
        .expect("the seed commit");
    let before = daemon.memory();
    let key = format!("{}/{NAME}", ns.name());

    // Cold sync: from the GitSync's creation.
    let wall = SystemTime::now();
    let created = Instant::now();
    create_git_sync_spec(
        ns,
        NAME,
        json!({
            "source": {"url": world.git_http_url(&repo), "ref": {"branch": "main"},
                       "path": BULK_PATH, "interval": INTERVAL,
                       "secretRef": {"name": "git-credentials"}},
            "targetNamespace": ns.name(),
            "healthTimeout": "10m"
        }),
    )
    .await;
    let mut max_rss = before.rss_kib;
    let applied = poll_until(
        ns,
        daemon,
        Duration::from_secs(300),
        "applied with 1000 inventory entries",
        |s| s.last_applied_revision.as_deref() == Some(&seed) && s.inventory.len() == BULK_OBJECTS,
        &mut max_rss,
    )
    .await;
    let at_applied = daemon.memory();
    let healthy = poll_until(
        ns,
        daemon,
        Duration::from_secs(600),
        "Healthy",
        |s| s.health.as_deref() == Some("Healthy"),
        &mut max_rss,
    )
    .await;
    let at_healthy = daemon.memory();
    let log = daemon.log_text();
    let offset =
        |message: &str| logged(&log, &key, message, wall).map_or("not logged".to_owned(), ms);
    let _ = writeln!(
        report,
        "cold sync: GitSync created → status applied with {BULK_OBJECTS} inventory entries: {}   target < 10 s",
        ms(applied - created)
    );
    let _ = writeln!(
        report,
        "  daemon log, from the creation: fetched at {}, \"applied\" (all written) at {}; the status follows the first health assessment",
        offset("fetched"),
        offset("applied")
    );
    let _ = writeln!(
        report,
        "  → Healthy (200 Deployments rolled out on kwok): {}",
        ms(healthy - created)
    );
    let _ = writeln!(
        report,
        "  memory: before {before}; at applied {at_applied}; at Healthy {at_healthy}; max RSS sampled {}",
        mib(max_rss)
    );

    at_rest(ns, daemon, extra, window, &mut report).await;
    let target = commits::Target {
        world,
        ns,
        daemon,
        apiserver: extra,
        repo: &repo,
        sync: NAME,
        dir: dir.path(),
        config_map: BULK_CHANGED,
    };
    one_change(&target, &mut report).await;
    (report, repo)
}

/// The GitSync at rest for `window`: nothing changes in git or in the cluster, the interval
/// keeps fetching; the daemon's writes, the objects' resourceVersions and memory.
async fn at_rest(
    ns: &TestNamespace,
    daemon: &Daemon,
    extra: &Client,
    window: Duration,
    report: &mut String,
) {
    tokio::time::sleep(SETTLE).await;
    let client = ns.client();
    let world_before = apimetrics::writes(client)
        .await
        .expect("the world's /metrics");
    let ours_before = apimetrics::writes(extra)
        .await
        .expect("the bench apiserver's /metrics");
    let sync_before = ns.api::<GitSync>().get(NAME).await.expect("the GitSync");
    let objects_before = versions(ns).await;
    let reconciles_before = daemon.metric("sluice_reconcile_total").await;
    let rest_start = daemon.memory();
    let started = Instant::now();
    let mut max_rest = rest_start.rss_kib;
    while started.elapsed() < window {
        tokio::time::sleep(Duration::from_secs(5).min(window)).await;
        max_rest = max_rest.max(daemon.memory().rss_kib);
    }
    let elapsed = started.elapsed();
    let rest_end = daemon.memory();
    let reconciles = daemon.metric("sluice_reconcile_total").await - reconciles_before;
    let ours = apimetrics::grown(
        &ours_before,
        &apimetrics::writes(extra)
            .await
            .expect("the bench apiserver's /metrics"),
    );
    let world_writes = apimetrics::grown(
        &world_before,
        &apimetrics::writes(client)
            .await
            .expect("the world's /metrics"),
    );
    let sync_after = ns.api::<GitSync>().get(NAME).await.expect("the GitSync");
    // What the daemon manages now: every GitSync of the namespace (the latency section's too,
    // when it ran) and their inventories.
    let syncs = ns
        .api::<GitSync>()
        .list(&ListParams::default())
        .await
        .expect("the GitSyncs");
    let managed: usize = syncs
        .items
        .iter()
        .filter_map(|sync| sync.status.as_ref())
        .map(|status| status.inventory.len())
        .sum();
    let objects_after = versions(ns).await;
    let changed: Vec<&String> = objects_after
        .iter()
        .filter(|(k, v)| objects_before.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .collect();
    let _ = writeln!(
        report,
        "at rest for {:.0} s ({} GitSyncs, {} objects in the namespace; {reconciles} reconciles by the daemon meanwhile):",
        elapsed.as_secs_f64(),
        syncs.items.len(),
        objects_before.len()
    );
    let _ = writeln!(
        report,
        "  writes served by the daemon's own apiserver (the daemon's requests only) to configmaps/services/deployments/gitsyncs: {}   target 0",
        apimetrics::describe(&ours)
    );
    let _ = writeln!(
        report,
        "  same resources on the world's apiserver (kube-controller-manager, kwok, other tests in other namespaces; no per-client label): {}",
        apimetrics::describe(&world_writes)
    );
    let _ = writeln!(
        report,
        "  GitSync resourceVersion {} → {}; {} of {} objects changed resourceVersion{}",
        sync_before.resource_version().unwrap_or_default(),
        sync_after.resource_version().unwrap_or_default(),
        changed.len(),
        objects_after.len(),
        if changed.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                changed
                    .iter()
                    .take(10)
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    let _ = writeln!(
        report,
        "memory with {managed} objects under management ({} GitSyncs): at the window's start {rest_start}; at its end {rest_end}; max RSS sampled every 5 s {}   target < 40 MiB\n",
        syncs.items.len(),
        mib(max_rest)
    );
}

/// One object of the 1,000 changes per commit: the daemon sends that one.
async fn one_change(target: &commits::Target<'_>, report: &mut String) {
    let _ = writeln!(
        report,
        "one object of {BULK_OBJECTS} changed per commit ({BULK_CHANGED}, the last in file order):"
    );
    let timings = commits::run(target, COMMITS, |dir, value| {
        write_bulk(dir, target.world.registry(), value)
    })
    .await;
    commits::report(
        report,
        &timings,
        "target p50 < 100 ms",
        "target p50 < 200 ms",
    );
    let _ = writeln!(
        report,
        "memory after the commits: {}\n",
        target.daemon.memory()
    );
}
