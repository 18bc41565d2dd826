//! Commit → applied for a Helm chart of 50 objects (`helm template` included), webhook-triggered
//! ([`crate::commits`]), then the same GitSync at rest with a short interval: how many renders
//! (`sluice_sync_applies_total`: every render is followed by one) and writes the daemon made.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use kube::Client;
use serde_json::json;
use sluice_e2e::apimetrics;
use sluice_e2e::bench::ms;
use sluice_e2e::{TestNamespace, World, unique_name};

use crate::commits;
use crate::daemon::Daemon;
use crate::manifests::{CHART_OBJECTS, CHART_PATH, write_chart};
use crate::sync_support::{create_git_sync_spec, wait_applied};

const COMMITS: usize = 15;
const NAME: &str = "chart";
/// The at-rest window, and the interval that keeps fetching through it.
const REST: Duration = Duration::from_secs(30);
const INTERVAL: &str = "3s";

/// The figures, and the git repository made (removed by the caller once the daemon is gone).
pub async fn run(
    world: &World,
    ns: &TestNamespace,
    daemon: &Daemon,
    apiserver: &Client,
) -> (String, String) {
    let mut report = format!(
        "## chart: GitSync over a Helm chart of {CHART_OBJECTS} objects (30 ConfigMaps, 10 Deployments, 10 Services from 2 templates), interval {INTERVAL}\n"
    );
    let repo = unique_name("bench-sync-chart");
    let url = world.git_http_url(&repo);
    let dir = tempfile::tempdir().expect("a work tree");
    write_chart(dir.path(), "v1", world.registry());
    let seed = world
        .git_seed(&repo, Some(dir.path()))
        .await
        .expect("the seed commit");
    let created = Instant::now();
    create_git_sync_spec(
        ns,
        NAME,
        json!({
            "source": {"url": url, "ref": {"branch": "main"}, "path": CHART_PATH,
                       "interval": INTERVAL, "secretRef": {"name": "git-credentials"}},
            "targetNamespace": ns.name(),
            "healthTimeout": "5m"
        }),
    )
    .await;
    wait_applied(ns, NAME, &seed).await;
    let _ = writeln!(
        report,
        "first sync (creation → status applied, polled): {}",
        ms(created.elapsed())
    );

    let target = commits::Target {
        world,
        ns,
        daemon,
        apiserver,
        repo: &repo,
        sync: NAME,
        dir: dir.path(),
        config_map: "chart-cm-00",
    };
    let timings = commits::run(&target, COMMITS, |dir, value| {
        write_chart(dir, value, world.registry())
    })
    .await;
    commits::report(&mut report, &timings, "target p50 < 400 ms", "");

    // At rest: the interval fetches every few seconds; the applied revision is not rendered
    // again and nothing is written.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let renders_before = daemon.metric("sluice_sync_applies_total").await;
    let reconciles_before = daemon.metric("sluice_reconcile_total").await;
    let writes_before = apimetrics::writes(apiserver)
        .await
        .expect("the bench apiserver's /metrics");
    tokio::time::sleep(REST).await;
    let renders = daemon.metric("sluice_sync_applies_total").await - renders_before;
    let reconciles = daemon.metric("sluice_reconcile_total").await - reconciles_before;
    let writes = apimetrics::grown(
        &writes_before,
        &apimetrics::writes(apiserver)
            .await
            .expect("the bench apiserver's /metrics"),
    );
    let _ = writeln!(
        report,
        "at rest for {} s (interval {INTERVAL}, {reconciles} reconciles): renders {renders}   target 0; writes by the daemon {}   target 0",
        REST.as_secs(),
        apimetrics::describe(&writes)
    );
    let _ = writeln!(report, "memory after the chart runs: {}\n", daemon.memory());
    (report, repo)
}
