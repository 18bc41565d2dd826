//! Resident memory of the release daemon watching 100 ImageRepositories (each with an
//! ImagePolicy) on the world's plain registry, sampled for a minute after the first scans; and
//! the same as a curve over 10, 100 and 1,000 repositories ([`curve`]), with the registry
//! requests of a scan round (the daemon's `sluice_registry_requests_total`).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use config_updater::resource::{ImagePolicy, ImageRepository};
use kube::Client;
use kube::api::PostParams;
use serde_json::json;
use sluice_e2e::bench::{Memory, free_addr, mib};
use sluice_e2e::{TestNamespace, World, http, wait_until};

use crate::daemon::Daemon;

/// The heading of this section in the figures file.
pub const HEADING: &str = "## watching 100 repositories";
const REPOSITORIES: usize = 100;
/// The most repositories a point watches: the pool pushed once.
const POOL: usize = 1_000;
/// The curve's points.
const CURVE: [usize; 3] = [10, 100, 1_000];
/// The heading of the curve's section in the figures file.
pub const CURVE_HEADING: &str = "## curve: watching N repositories";
/// Kept across runs: `bench/repos/app-0001` … `app-1000`, tags 1.0.0 and 1.0.1.
const PREFIX: &str = "bench/repos/app";
const WATCH: Duration = Duration::from_secs(60);
const INTERVAL: &str = "30s";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn repository(i: usize) -> String {
    format!("{PREFIX}-{i:04}")
}

/// The pool of repositories: the first pushed by push-image, the others as blob mounts from it
/// and one manifest PUT per tag. Reused when the last one exists.
async fn ensure_repositories(world: &World) -> String {
    let registry = world.registry().to_owned();
    let last = format!("/v2/{}/tags/list", repository(POOL));
    if let Ok(r) = http::request(&registry, "GET", &last, &[], b"").await
        && r.status == 200
    {
        return format!("{POOL} repositories {PREFIX}-NNNN already in {registry}, reused");
    }
    let start = Instant::now();
    let first = repository(1);
    world
        .push_image(&[&format!("{first}:1.0.0"), &format!("{first}:1.0.1")])
        .await;
    for tag in ["1.0.0", "1.0.1"] {
        let got = http::request(
            &registry,
            "GET",
            &format!("/v2/{first}/manifests/{tag}"),
            &[("Accept", OCI_MANIFEST)],
            b"",
        )
        .await
        .expect("a manifest");
        let manifest: serde_json::Value = serde_json::from_slice(&got.body).expect("JSON");
        let mut blobs = vec![
            manifest["config"]["digest"]
                .as_str()
                .expect("config")
                .to_owned(),
        ];
        for layer in manifest["layers"].as_array().expect("layers") {
            blobs.push(layer["digest"].as_str().expect("a digest").to_owned());
        }
        for i in 2..=POOL {
            let repo = repository(i);
            for blob in &blobs {
                let mount = format!("/v2/{repo}/blobs/uploads/?mount={blob}&from={first}");
                let r = http::request(&registry, "POST", &mount, &[], b"")
                    .await
                    .expect("a blob mount");
                assert_eq!(r.status, 201, "mount {blob} into {repo}");
            }
            let r = http::request(
                &registry,
                "PUT",
                &format!("/v2/{repo}/manifests/{tag}"),
                &[("Content-Type", OCI_MANIFEST)],
                &got.body,
            )
            .await
            .expect("a manifest PUT");
            assert_eq!(r.status, 201, "PUT {repo}:{tag}");
        }
    }
    format!(
        "pushed {POOL} repositories {PREFIX}-NNNN (2 tags each) to {registry} in {:.0} s",
        start.elapsed().as_secs_f64()
    )
}

/// What watching `n` repositories cost.
struct Point {
    first_scans: Duration,
    at_first: Memory,
    end: Memory,
    max_rss: u64,
    /// Registry requests per scan round, over the watch.
    per_round: f64,
    warnings: usize,
}

/// The sum of the daemon's `sluice_registry_requests_total`, from its `/metrics` on `addr`.
async fn registry_requests(addr: &str) -> f64 {
    let Ok(response) = http::request(addr, "GET", "/metrics", &[], b"").await else {
        return f64::NAN;
    };
    response
        .text()
        .lines()
        .filter(|l| l.starts_with("sluice_registry_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A fresh daemon and namespace watching the pool's first `n` repositories (each with a
/// policy): until every policy chose, then [`WATCH`] more.
async fn point(world: &World, client: &Client, binary: &std::path::Path, n: usize) -> Point {
    let ns = TestNamespace::create(client, "bench-watch").await;
    let pp = PostParams::default();
    for i in 1..=n {
        let name = format!("app-{i:04}");
        let repository: ImageRepository = serde_json::from_value(json!({
            "apiVersion": "sluice.dev/v1alpha1", "kind": "ImageRepository",
            "metadata": {"name": name},
            "spec": {"image": format!("{}/{}", world.registry(), repository(i)), "insecure": true, "interval": INTERVAL}
        }))
        .expect("an ImageRepository");
        ns.api::<ImageRepository>()
            .create(&pp, &repository)
            .await
            .expect("the ImageRepository");
        let policy: ImagePolicy = serde_json::from_value(json!({
            "apiVersion": "sluice.dev/v1alpha1", "kind": "ImagePolicy",
            "metadata": {"name": name},
            "spec": {"imageRepositoryRef": {"name": name}, "policy": {"semver": {"range": ">=1.0.0"}}}
        }))
        .expect("an ImagePolicy");
        ns.api::<ImagePolicy>()
            .create(&pp, &policy)
            .await
            .expect("the ImagePolicy");
    }
    let addr = free_addr();
    let daemon = Daemon::start(world, binary, ns.name(), &addr, None, "info").await;
    let policies = ns.api::<ImagePolicy>();
    wait_until(
        "every ImagePolicy at 1.0.1",
        Duration::from_secs(600),
        || async {
            let list = policies
                .list(&Default::default())
                .await
                .map_err(|e| e.to_string())?;
            let done = list
                .items
                .iter()
                .filter(|p| {
                    p.status
                        .as_ref()
                        .and_then(|s| s.latest_ref.as_ref())
                        .is_some_and(|r| r.tag == "1.0.1")
                })
                .count();
            (done == n).then_some(()).ok_or(format!("{done} of {n}"))
        },
    )
    .await;
    let first_scans = daemon.started().elapsed();
    let at_first = daemon.memory();
    let requests_before = registry_requests(&addr).await;
    let start = Instant::now();
    let mut max_rss = at_first.rss_kib;
    while start.elapsed() < WATCH {
        tokio::time::sleep(Duration::from_secs(2)).await;
        max_rss = max_rss.max(daemon.memory().rss_kib);
    }
    let interval: f64 = INTERVAL.trim_end_matches('s').parse().expect("seconds");
    let rounds = start.elapsed().as_secs_f64() / interval;
    let per_round = (registry_requests(&addr).await - requests_before) / rounds;
    let end: Memory = daemon.memory();
    let warnings = daemon
        .log_text()
        .lines()
        .filter(|l| l.contains("\"WARN\"") || l.contains("\"ERROR\""))
        .count();
    drop(daemon);
    Point {
        first_scans,
        at_first,
        end,
        max_rss,
        per_round,
        warnings,
    }
}

pub async fn run(world: &World, client: &Client, binary: &std::path::Path) -> String {
    let mut report = String::from("## watching 100 repositories (release daemon)\n");
    let _ = writeln!(report, "{}", ensure_repositories(world).await);
    let p = point(world, client, binary, REPOSITORIES).await;
    let _ = writeln!(
        report,
        "{REPOSITORIES} ImageRepositories (interval {INTERVAL}) + {REPOSITORIES} ImagePolicies; every policy chose after {:.1} s",
        p.first_scans.as_secs_f64()
    );
    let _ = writeln!(
        report,
        "daemon memory from /proc: VmRSS {} after the first scans, {} after {} s more (max sampled every 2 s: {}; at the end {} anonymous, {} file-backed: the binary's code); VmHWM {}; {} threads; target RSS < 30 MiB\n",
        mib(p.at_first.rss_kib),
        mib(p.end.rss_kib),
        WATCH.as_secs(),
        mib(p.max_rss),
        mib(p.end.anon_kib),
        mib(p.end.file_kib),
        mib(p.end.hwm_kib),
        p.end.threads
    );
    if p.warnings > 0 {
        let _ = writeln!(report, "daemon log: {} warnings or errors\n", p.warnings);
    }
    report
}

/// The curve: 10, 100 and 1,000 repositories, each on a fresh daemon.
pub async fn curve(world: &World, client: &Client, binary: &std::path::Path) -> String {
    let mut report = format!(
        "{CURVE_HEADING} (release daemon, interval {INTERVAL}, each point a fresh daemon)\n{}\n\
         | repositories | every policy chose after | RSS after first scans | RSS after {} s more | per repository | VmHWM | registry requests per scan round | per repository |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- |\n",
        ensure_repositories(world).await,
        WATCH.as_secs()
    );
    for n in CURVE {
        let p = point(world, client, binary, n).await;
        let row = format!(
            "| {n} | {:.1} s | {} | {} | {:.1} KiB | {} | {:.0} | {:.2} |\n",
            p.first_scans.as_secs_f64(),
            mib(p.at_first.rss_kib),
            mib(p.end.rss_kib),
            p.end.rss_kib as f64 / n as f64,
            mib(p.end.hwm_kib),
            p.per_round,
            p.per_round / n as f64,
        );
        eprint!("curve: {row}");
        report.push_str(&row);
    }
    report.push('\n');
    report
}
