//! Registry push → bump commit on the git server, webhook-triggered: the release daemon listens
//! on the world's notify address, where the plain registry sends its push notifications. Each
//! new tag is one manifest PUT (the first tag's manifest, annotated with the new tag, so its
//! blobs are already there); the clock runs from just before that PUT until the branch's ref on
//! the git server's bare repository moves (read every 5 ms).

use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime};

use config_updater::resource::{ImagePolicy, ImageRepository, ImageUpdate};
use git2::Repository;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::PostParams;
use serde_json::json;
use sluice_e2e::bench::{addr_is_free, ms, quantile};
use sluice_e2e::{TestNamespace, World, http, unique_name, wait_until};

use crate::daemon::Daemon;

/// Measured pushes (after one warm-up push).
/// The heading of this section in the figures file.
pub const HEADING: &str = "## push → commit";
const PUSHES: usize = 15;
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn deployment(image: &str, ns: &str) -> String {
    format!(
        "---\n# The web app: the Config Updater bumps the marked tag.\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: web   # the app\n          image: {image}:1.0.0 # {{\"$imagepolicy\": \"{ns}:web\"}}\n          ports: [ {{containerPort: 8080}} ]\n"
    )
}

/// The tip of `branch` in a bare repository: the loose ref file, else libgit2.
fn tip(bare: &std::path::Path) -> String {
    if let Ok(id) = std::fs::read_to_string(bare.join("refs/heads/main")) {
        return id.trim().to_owned();
    }
    Repository::open_bare(bare)
        .and_then(|r| r.refname_to_id("refs/heads/main"))
        .map(|id| id.to_string())
        .unwrap_or_default()
}

/// The message of commit `id` in a bare repository.
fn message(bare: &std::path::Path, id: &str) -> String {
    let repo = Repository::open_bare(bare).expect("the bare repository");
    let oid = git2::Oid::from_str(id).expect("a commit id");
    repo.find_commit(oid)
        .map(|c| c.message().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

/// One measured push.
struct Sample {
    tag: String,
    /// Wall clock at the PUT, to find the push in the daemon's log.
    at: SystemTime,
    put: Duration,
    commit: Duration,
}

pub async fn run(world: &World, client: &Client, binary: &std::path::Path) -> String {
    let mut report = String::from("## push → commit (webhook-triggered, release daemon)\n");
    let notify = world.registry_notify_url();
    let addr = notify
        .strip_prefix("http://")
        .and_then(|r| r.split('/').next())
        .unwrap_or("127.0.0.1:19090")
        .to_owned();
    if !addr_is_free(&addr) {
        let _ = writeln!(
            report,
            "skipped: {addr} is in use (the webhook_registry test or e2e/demo holds the notify address)\n"
        );
        return report;
    }
    let ns = TestNamespace::create(client, "bench-latency").await;
    let path = format!("bench/{}/web", unique_name("lat"));
    let image = format!("{}/{path}", world.registry());
    world.push_image(&[&format!("{path}:1.0.0")]).await;

    let repo_name = unique_name("bench-latency-config");
    let seed = tempfile::tempdir().expect("a seed dir");
    std::fs::create_dir_all(seed.path().join("apps/web")).expect("apps/web");
    std::fs::write(
        seed.path().join("apps/web/deployment.yaml"),
        deployment(&image, ns.name()),
    )
    .expect("the deployment");
    std::fs::write(seed.path().join("README.md"), "The config repo.\n").expect("README");
    world.git_seed(&repo_name, Some(seed.path())).await;
    let bare = world.git_bare_repo(&repo_name);

    let (user, password) = world.git_credentials();
    let pp = PostParams::default();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "git"}, "type": "kubernetes.io/basic-auth",
        "stringData": {"username": user, "password": password}
    }))
    .expect("a secret");
    ns.api::<Secret>()
        .create(&pp, &secret)
        .await
        .expect("the secret");
    let repository: ImageRepository = serde_json::from_value(json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "ImageRepository",
        "metadata": {"name": "web"},
        // Polling would not help within a second: every scan here comes from a notification.
        "spec": {"image": image, "insecure": true, "interval": "1h"}
    }))
    .expect("an ImageRepository");
    ns.api::<ImageRepository>()
        .create(&pp, &repository)
        .await
        .expect("the ImageRepository");
    let policy: ImagePolicy = serde_json::from_value(json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "ImagePolicy",
        "metadata": {"name": "web"},
        "spec": {"imageRepositoryRef": {"name": "web"}, "policy": {"semver": {"range": ">=1.0.0"}}}
    }))
    .expect("an ImagePolicy");
    ns.api::<ImagePolicy>()
        .create(&pp, &policy)
        .await
        .expect("the ImagePolicy");
    let update: ImageUpdate = serde_json::from_value(json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "ImageUpdate",
        "metadata": {"name": "config"},
        "spec": {
            "git": {"url": world.git_http_url(&repo_name), "branch": "main", "secretRef": {"name": "git"}},
            "paths": ["apps"], "batchDelay": "0s"
        }
    }))
    .expect("an ImageUpdate");
    ns.api::<ImageUpdate>()
        .create(&pp, &update)
        .await
        .expect("the ImageUpdate");

    let daemon = Daemon::start(
        world,
        binary,
        ns.name(),
        &addr,
        Some(world.registry_notify_token()),
        "info,config_updater=debug,sluice_shared=debug",
    )
    .await;
    let policies = ns.api::<ImagePolicy>();
    wait_until(
        "ImagePolicy web at 1.0.0",
        Duration::from_secs(60),
        || async {
            let p = policies.get("web").await.map_err(|e| e.to_string())?;
            match p.status.and_then(|s| s.latest_ref).map(|r| r.tag) {
                Some(t) if t == "1.0.0" => Ok(()),
                other => Err(format!("latestRef {other:?}")),
            }
        },
    )
    .await;

    let registry = world.registry().to_owned();
    let manifest_path = format!("/v2/{path}/manifests/1.0.0");
    let template = http::request(
        &registry,
        "GET",
        &manifest_path,
        &[("Accept", OCI_MANIFEST)],
        b"",
    )
    .await
    .expect("the 1.0.0 manifest");
    assert_eq!(template.status, 200, "GET {manifest_path}");
    let template: serde_json::Value =
        serde_json::from_slice(&template.body).expect("a JSON manifest");

    let mut samples = Vec::new();
    let mut failures = Vec::new();
    // Push 1.0.1 first as a warm-up: connections, the work clone, notifications the registry
    // queued while nobody listened on the notify address.
    for i in 1..=PUSHES + 1 {
        let tag = format!("1.0.{i}");
        let mut manifest = template.clone();
        manifest["annotations"] = json!({"dev.sluice.bench.tag": tag});
        let body = serde_json::to_vec(&manifest).expect("JSON");
        let before = tip(&bare);
        let at = SystemTime::now();
        let start = Instant::now();
        let put = http::request(
            &registry,
            "PUT",
            &format!("/v2/{path}/manifests/{tag}"),
            &[("Content-Type", OCI_MANIFEST)],
            &body,
        )
        .await
        .expect("the manifest PUT");
        let put_time = start.elapsed();
        assert_eq!(
            put.status,
            201,
            "PUT {tag}: {}",
            String::from_utf8_lossy(&put.body)
        );
        let deadline = Duration::from_secs(60);
        let mut after = tip(&bare);
        while after == before && start.elapsed() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
            after = tip(&bare);
        }
        let commit = start.elapsed();
        if after == before {
            failures.push(format!("{tag}: no commit within {deadline:?}"));
            continue;
        }
        if !message(&bare, &after).contains(&format!("new={tag}")) {
            failures.push(format!("{tag}: the commit does not name new={tag}"));
        }
        if i > 1 {
            samples.push(Sample {
                tag,
                at,
                put: put_time,
                commit,
            });
        } else {
            let _ = writeln!(report, "warm-up push 1.0.1: {}", ms(commit));
        }
        // Let the status writes of this bump settle before the next push.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut times: Vec<Duration> = samples.iter().map(|s| s.commit).collect();
    times.sort();
    let mut puts: Vec<Duration> = samples.iter().map(|s| s.put).collect();
    puts.sort();
    let _ = writeln!(
        report,
        "pushes: {} measured, each a manifest PUT of a new tag to {registry} (PUT itself p50 {})",
        samples.len(),
        ms(quantile(&puts, 0.5))
    );
    let _ = writeln!(
        report,
        "push → bump commit on the git server's main: p50 {}, p90 {}, min {}, max {}; target p50 < 300 ms",
        ms(quantile(&times, 0.5)),
        ms(quantile(&times, 0.9)),
        ms(times.first().copied().unwrap_or_default()),
        ms(times.last().copied().unwrap_or_default()),
    );
    let _ = writeln!(
        report,
        "each: {}",
        samples
            .iter()
            .map(|s| format!("{} {:.0}", s.tag, s.commit.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for f in &failures {
        let _ = writeln!(report, "FAILED {f}");
    }
    let breakdown = crate::timeline::breakdown(
        &daemon.log_text(),
        &samples
            .iter()
            .map(|s| (s.tag.clone(), s.at))
            .collect::<Vec<_>>(),
    );
    report.push_str(&breakdown);
    report.push('\n');
    drop(daemon);
    report
}
