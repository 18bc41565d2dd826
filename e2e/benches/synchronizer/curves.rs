//! Cost curves: how the synchronizer's cost grows with the work. Each point runs on a daemon of
//! its own (a fresh process, so its memory is that point's alone), in a namespace of its own,
//! through the bench's apiserver (whose `apiserver_request_total` counts the daemon's requests
//! only):
//! - **objects**: one GitSync of 100, 1,000, 5,000 and 10,000 ConfigMaps, cold: the time from
//!   its creation to its status naming the commit, the CPU time the daemon and its apiserver
//!   spent meanwhile (where the time goes on a 2-core machine), the daemon's peak RSS (VmHWM)
//!   and its RSS at rest (after [`REST`]), and the requests the sync made (every verb);
//! - **syncs**: 10, 100 and 500 GitSyncs of 20 objects each (18 ConfigMaps, 2 Services), cold:
//!   the time to all Ready, peak and at-rest RSS, the watches the daemon holds
//!   (`apiserver_longrunning_requests{verb="WATCH"}`) and its requests.
//!
//! Each curve is printed with the cost per object (per GitSync) at each point, so growth worse
//! than linear shows as a rising column.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use kube::Client;
use serde_json::json;
use sluice_e2e::apiserver::ExtraApiserver;
use sluice_e2e::bench::{Memory, cpu_time, mib};
use sluice_e2e::{TestNamespace, World, apimetrics, unique_name};

use crate::daemon::Daemon;
use crate::sync_support::{applied_at, create_git_sync_spec, git_secret};

const OBJECT_POINTS: [usize; 4] = [100, 1_000, 5_000, 10_000];
const SYNC_POINTS: [usize; 3] = [10, 100, 500];
/// ConfigMaps per file (a file holds at most 4 MiB).
const PER_FILE: usize = 500;
/// How long a point rests before its at-rest RSS is read.
const REST: Duration = Duration::from_secs(20);

/// `count` ConfigMaps below `dir/<sub>`, `PER_FILE` to a file.
fn write_config_maps(dir: &Path, sub: &str, prefix: &str, count: usize) {
    for (f, start) in (0..count).step_by(PER_FILE).enumerate() {
        let mut text = format!("# {prefix}: generated settings, part {f}.\n");
        for i in start..(start + PER_FILE).min(count) {
            let _ = write!(
                text,
                "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {prefix}-{i:05}}}\ndata: {{level: \"{}\", owner: {prefix}}}\n",
                i % 7
            );
        }
        let path = dir.join(format!("{sub}/part-{f:03}.yaml"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// One team's 18 ConfigMaps and 2 Services below `dir/teams/team-NNN`.
fn write_team(dir: &Path, team: usize) {
    let sub = format!("teams/team-{team:03}");
    write_config_maps(dir, &sub, &format!("team-{team:03}"), 18);
    let mut text = String::new();
    for v in 0..2 {
        let _ = write!(
            text,
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: team-{team:03}-svc-{v}}}\nspec:\n  selector: {{app: team-{team:03}}}\n  ports: [{{port: {}, targetPort: 8080}}]\n",
            80 + v
        );
    }
    std::fs::write(dir.join(format!("{sub}/services.yaml")), text).unwrap();
}

/// Every request the apiserver served (every verb), and the watches it holds open.
async fn requests_and_watches(client: &Client) -> (u64, u64) {
    let text = apimetrics::metrics_text(client).await.unwrap_or_default();
    let sum = |prefix: &str, only_watch: bool| -> u64 {
        text.lines()
            .filter(|l| l.starts_with(prefix) && (!only_watch || l.contains("verb=\"WATCH\"")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    };
    (
        sum("apiserver_request_total{", false),
        sum("apiserver_longrunning_requests{", true),
    )
}

/// What one point cost.
struct Point {
    took: Duration,
    /// CPU time the daemon and the bench's apiserver used over `took`.
    daemon_cpu: Duration,
    apiserver_cpu: Duration,
    peak: Memory,
    rest: Memory,
    requests: u64,
    watches: u64,
}

/// Where the points run: the world, the release binary, the bench's apiserver, a client of the
/// world's and one of the bench's apiserver.
pub struct Rig<'a> {
    pub world: &'a World,
    pub binary: &'a Path,
    pub apiserver: &'a ExtraApiserver,
    pub client: &'a Client,
    pub bench: &'a Client,
}

/// GitSyncs `syncs` (name, path) over `url`, on a fresh daemon in a fresh namespace, until all
/// have applied `revision`, then at rest.
async fn point(rig: &Rig<'_>, url: &str, revision: &str, syncs: &[(String, String)]) -> Point {
    let Rig {
        world,
        binary,
        apiserver,
        client,
        bench,
    } = *rig;
    let ns = TestNamespace::create(client, "bench-curve").await;
    git_secret(&ns, world, "git-credentials").await;
    let daemon = Daemon::start(world, binary, apiserver, ns.name()).await;
    let (before, _) = requests_and_watches(bench).await;
    let apiserver_pid = apiserver.pid().map(|p| p.to_string()).unwrap_or_default();
    let cpu_before = (cpu_time(&daemon.pid()), cpu_time(&apiserver_pid));
    let start = Instant::now();
    for (name, path) in syncs {
        create_git_sync_spec(
            &ns,
            name,
            json!({
                "source": {"url": url, "ref": {"branch": "main"}, "path": path,
                           "interval": "1h", "secretRef": {"name": "git-credentials"}},
                "targetNamespace": ns.name(),
            }),
        )
        .await;
    }
    loop {
        if applied_at(&ns, revision).await.unwrap_or(0) == syncs.len() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1200),
            "{} GitSyncs: not all applied after 20 min",
            syncs.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = start.elapsed();
    let daemon_cpu = cpu_time(&daemon.pid()).saturating_sub(cpu_before.0);
    let apiserver_cpu = cpu_time(&apiserver_pid).saturating_sub(cpu_before.1);
    let (after, watches) = requests_and_watches(bench).await;
    let peak = daemon.memory();
    tokio::time::sleep(REST).await;
    let rest = daemon.memory();
    drop(daemon);
    drop(ns);
    Point {
        took,
        daemon_cpu,
        apiserver_cpu,
        peak,
        rest,
        requests: after.saturating_sub(before),
        watches,
    }
}

impl Point {
    /// The table row of this point for `n` (objects or GitSyncs), with the watches column when
    /// `watches`.
    fn row(&self, n: usize, watches: bool) -> String {
        let per = |value: f64| value / n as f64;
        let watches = if watches {
            format!(" {} |", self.watches)
        } else {
            String::new()
        };
        format!(
            "| {n} | {:.2} s | {:.2} ms | {:.1} s / {:.1} s | {} | {} | {:.1} KiB |{watches} {} | {:.2} |\n",
            self.took.as_secs_f64(),
            per(self.took.as_secs_f64() * 1000.0),
            self.daemon_cpu.as_secs_f64(),
            self.apiserver_cpu.as_secs_f64(),
            mib(self.peak.hwm_kib),
            mib(self.rest.rss_kib),
            per(self.rest.rss_kib as f64),
            self.requests,
            per(self.requests as f64),
        )
    }
}

pub async fn run(rig: &Rig<'_>) -> (String, Vec<String>) {
    let world = rig.world;
    let mut repos = Vec::new();
    let mut text = String::from(
        "## curves: cost as the work grows (each point a fresh daemon and namespace)\n\
         ### one GitSync of N ConfigMaps, cold\n\
         | objects | cold sync | per object | CPU: daemon / its apiserver | peak RSS (VmHWM) | RSS at rest | at rest per object | requests | per object |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for n in OBJECT_POINTS {
        let repo = unique_name("bench-curve-objects");
        let dir = tempfile::tempdir().unwrap();
        write_config_maps(dir.path(), "settings", "setting", n);
        let revision = world.git_seed(&repo, Some(dir.path())).await.unwrap();
        let url = world.git_http_url(&repo);
        let syncs = [("settings".to_owned(), "settings".to_owned())];
        let p = point(rig, &url, &revision, &syncs).await;
        let row = p.row(n, false);
        eprint!("curves: {row}");
        text.push_str(&row);
        repos.push(repo);
    }
    text.push_str(
        "### N GitSyncs of 20 objects (18 ConfigMaps, 2 Services), cold\n\
         | GitSyncs | to all applied | per GitSync | CPU: daemon / its apiserver | peak RSS (VmHWM) | RSS at rest | at rest per GitSync | watches | requests | per GitSync |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    let largest = SYNC_POINTS[SYNC_POINTS.len() - 1];
    let repo = unique_name("bench-curve-syncs");
    let dir = tempfile::tempdir().unwrap();
    for team in 0..largest {
        write_team(dir.path(), team);
    }
    let revision = world.git_seed(&repo, Some(dir.path())).await.unwrap();
    let url = world.git_http_url(&repo);
    for n in SYNC_POINTS {
        let syncs: Vec<(String, String)> = (0..n)
            .map(|t| (format!("team-{t:03}"), format!("teams/team-{t:03}")))
            .collect();
        let p = point(rig, &url, &revision, &syncs).await;
        let row = p.row(n, true);
        eprint!("curves: {row}");
        text.push_str(&row);
    }
    repos.push(repo);
    text.push('\n');
    (text, repos)
}
