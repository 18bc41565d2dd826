//! The phases of the comparison, each through both sides one after the other: commit → applied,
//! cold sync, drift → healed, at rest, and optionally drift at the interval Flux's docs
//! recommend; each returns its figures for the table.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use deploy_synchronizer::resource::GitSyncStatus;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{DynamicObject, Patch, PatchParams};
use serde_json::json;
use sluice_e2e::apimetrics::{self, Writes};
use sluice_e2e::bench::Memory;
use sluice_e2e::{TestNamespace, World, http, unique_name};
use sluice_shared::webhook::sign_hmac_sha256;
use tempfile::TempDir;

use super::side::{
    Flux, applied, create_flux_sync, create_receiver, create_webhook_token, flux_message,
    flux_revision, inventory_len, kustomizations, poll_until, webhook_path,
};
use super::{
    COMMITS, DOCS_INTERVAL, DOCS_INTERVAL_SECS, FLUX_DRIFTS, FLUX_RESOURCES, INTERVAL,
    INTERVAL_SECS, SLUICE_DRIFTS, SLUICE_RESOURCES,
};
use crate::commits;
use crate::daemon::{Daemon, WEBHOOK_SECRET};
use crate::manifests::{BULK_OBJECTS, BULK_PATH, SMALL_PATH, write_bulk, write_small};
use crate::sync_support::{commit_dir, create_git_sync_spec, github_push, status, wait_applied};
use crate::watch::{self, Step};

/// What the phases share: the world, both sides, and what they made along the way.
pub struct Bench<'a> {
    pub world: &'a World,
    /// Sluice's namespace.
    pub s_ns: &'a TestNamespace,
    /// Sluice's daemon of this section's own.
    pub daemon: &'a Daemon,
    /// A client of the daemon's own apiserver: its metrics count Sluice's requests alone.
    pub sluice_api: &'a Client,
    /// Flux's namespace.
    pub f_ns: &'a TestNamespace,
    pub flux: &'a Flux,
    /// The git repositories made (removed by the caller of the section).
    pub repos: Vec<String>,
    /// The work trees the repositories were seeded and committed from, kept until the section
    /// ends.
    pub work_trees: Vec<TempDir>,
}

/// Commit → applied on both sides.
pub struct Commits {
    pub sluice: commits::Timings,
    /// Flux's: to the new value, to the Kustomization's status.
    pub f_to_object: Vec<Duration>,
    pub f_to_status: Vec<Duration>,
    /// Flux's writes and dry runs over every commit.
    pub f_writes: Writes,
    pub f_dry: Writes,
}

/// The cold sync of the 1,000 objects on both sides.
pub struct ColdSync {
    /// From the creation of the resources until the status names the seed revision.
    pub s_cold: Duration,
    pub f_cold: Duration,
    /// The daemon's memory, and Flux's job RSS (KiB), before the resources are created.
    pub s_before: Memory,
    pub f_before: u64,
    /// The highest RSS (KiB) sampled while waiting.
    pub s_peak: u64,
    pub f_peak: u64,
}

/// Drift → healed on the 1,000 objects, one time per edit.
pub struct Healed {
    pub s_healed: Vec<Duration>,
    pub f_healed: Vec<Duration>,
}

/// Both sides at rest, at once.
pub struct AtRest {
    /// The window, in minutes.
    pub minutes: f64,
    /// Each side's writes and dry runs over the window.
    pub s_rest: Writes,
    pub s_rest_dry: Writes,
    pub f_rest: Writes,
    pub f_rest_dry: Writes,
    /// The daemon's memory and Flux's job RSS (KiB) at the window's end.
    pub s_mem: Memory,
    pub f_mem: u64,
    /// Flux's processes' memory at the window's end, described.
    pub f_memory: String,
    /// The highest RSS (KiB) sampled over the window.
    pub s_max: u64,
    pub f_max: u64,
}

fn value_of(cm: &ConfigMap, key: &str) -> Option<String> {
    cm.data.as_ref()?.get(key).cloned()
}

fn value_is(key: &'static str, want: String) -> Step<ConfigMap> {
    Box::new(move |cm: &ConfigMap| value_of(cm, key).as_deref() == Some(want.as_str()))
}

/// A number in `0..n` from the clock's nanoseconds: where in Flux's interval an edit lands.
fn jitter(n: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    nanos.wrapping_mul(2_654_435_761) % n.max(1)
}

/// Edits `count` ConfigMaps of the bulk app (`app-NNN-flags`, data `concern`) as field manager
/// `bench-drift`, each after `before()`, and times each until a watch sees git's value back.
async fn drifts(
    ns: &TestNamespace,
    count: usize,
    within: Duration,
    before: impl Fn() -> Duration,
) -> Vec<Duration> {
    let maps = ns.api::<ConfigMap>();
    let mut healed = Vec::new();
    for i in 0..count {
        tokio::time::sleep(before()).await;
        let name = format!("app-{:03}-flags", 10 + i * 7);
        let cm = maps.get(&name).await.expect("a managed ConfigMap");
        let original = value_of(&cm, "concern").expect("a concern");
        let drifted = format!("drifted-{i}");
        let seen = watch::spawn(
            maps.clone(),
            &name,
            cm.metadata.resource_version.clone().unwrap_or_default(),
            vec![
                value_is("concern", drifted.clone()),
                value_is("concern", original),
            ],
            within,
        );
        let edited = Instant::now();
        crate::watch::drift(&maps, &name, "concern", &drifted).await;
        let at = seen.await.expect("the watch task").expect("healed");
        healed.push(at[1] - edited);
    }
    healed
}

async fn requests(client: &Client, resources: &[&str]) -> (Writes, Writes) {
    let text = apimetrics::metrics_text(client)
        .await
        .expect("an apiserver's /metrics");
    (
        apimetrics::parse(&text, resources),
        apimetrics::parse_dry_runs(&text, resources),
    )
}

/// Flux's commit → applied on the small app: `count` commits, each announced by a signed GitHub
/// push to the Receiver; (to the new value, to the Kustomization's status, writes, dry runs).
async fn flux_commits(
    world: &World,
    ns: &TestNamespace,
    flux: &Flux,
    repo: &str,
    dir: &Path,
    hook: &str,
    count: usize,
) -> (Vec<Duration>, Vec<Duration>, Writes, Writes) {
    let maps = ns.api::<ConfigMap>();
    let ks = kustomizations(ns);
    let url = world.git_http_url(repo);
    let (writes_before, dry_before) = requests(&flux.apiserver, FLUX_RESOURCES).await;
    let (mut to_object, mut to_status) = (Vec::new(), Vec::new());
    for i in 0..count {
        let value = format!("v{}", i + 2);
        let cm = maps.get("web-cm-00").await.expect("the ConfigMap");
        let k = ks.get("web").await.expect("the Kustomization");
        write_small(dir, &value, world.registry());
        let commit = commit_dir(world, repo, dir, &format!("web-cm-00: value {value}")).await;
        let object = watch::spawn(
            maps.clone(),
            "web-cm-00",
            cm.metadata.resource_version.clone().unwrap_or_default(),
            vec![value_is("value", value.clone())],
            Duration::from_secs(120),
        );
        let revision = flux_revision(&commit);
        let status = watch::spawn(
            ks.clone(),
            "web",
            k.metadata.resource_version.clone().unwrap_or_default(),
            vec![Box::new(move |k: &DynamicObject| applied(k, &revision))],
            Duration::from_secs(120),
        );
        let body = github_push(&url, &commit);
        let signature = sign_hmac_sha256(WEBHOOK_SECRET, body.as_bytes());
        let headers = [
            ("Content-Type", "application/json"),
            ("X-GitHub-Event", "push"),
            ("X-GitHub-Delivery", "bench"),
            ("X-Hub-Signature-256", signature.as_str()),
        ];
        let pushed = Instant::now();
        let answer = http::post(&flux.receiver, hook, &headers, &body).await;
        assert!(answer < 300, "Flux's receiver answered {answer}");
        let seen = object
            .await
            .expect("the watch task")
            .expect("the new value");
        let done = status.await.expect("the watch task").expect("the status");
        to_object.push(seen[0] - pushed);
        to_status.push(done[0] - pushed);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (writes_after, dry_after) = requests(&flux.apiserver, FLUX_RESOURCES).await;
    (
        to_object,
        to_status,
        apimetrics::grown(&writes_before, &writes_after),
        apimetrics::grown(&dry_before, &dry_after),
    )
}

impl Bench<'_> {
    /// Commit → applied, push-triggered, 50 objects: Sluice's side, then Flux's.
    pub async fn commits(&mut self) -> Commits {
        let sluice = self.commits_through_sluice().await;
        let (f_to_object, f_to_status, f_writes, f_dry) = self.commits_through_flux().await;
        Commits {
            sluice,
            f_to_object,
            f_to_status,
            f_writes,
            f_dry,
        }
    }

    /// Sluice's commit → applied: a GitSync `web` over a fresh repository of the small app.
    async fn commits_through_sluice(&mut self) -> commits::Timings {
        let world = self.world;
        let s_ns = self.s_ns;
        let s_small = unique_name("bench-vs-sluice-small");
        let s_dir = tempfile::tempdir().expect("a work tree");
        write_small(s_dir.path(), "v1", world.registry());
        let seed = world
            .git_seed(&s_small, Some(s_dir.path()))
            .await
            .expect("the seed");
        self.repos.push(s_small.clone());
        create_git_sync_spec(
            s_ns,
            "web",
            json!({"source": {"url": world.git_http_url(&s_small), "ref": {"branch": "main"},
                              "path": SMALL_PATH, "interval": "1h", "secretRef": {"name": "git-credentials"}},
                   "targetNamespace": s_ns.name(), "healthTimeout": "5m"}),
        )
        .await;
        wait_applied(s_ns, "web", &seed).await;
        let target = commits::Target {
            world,
            ns: s_ns,
            daemon: self.daemon,
            apiserver: self.sluice_api,
            repo: &s_small,
            sync: "web",
            dir: s_dir.path(),
            config_map: "web-cm-00",
        };
        let s_commits = commits::run(&target, COMMITS, |dir, value| {
            write_small(dir, value, world.registry())
        })
        .await;
        self.work_trees.push(s_dir);
        s_commits
    }

    /// Flux's commit → applied: a GitRepository and Kustomization `web` over a fresh repository
    /// of the small app, and a Receiver for its pushes; see [`flux_commits`].
    async fn commits_through_flux(&mut self) -> (Vec<Duration>, Vec<Duration>, Writes, Writes) {
        let world = self.world;
        let f_ns = self.f_ns;
        let f_small = unique_name("bench-vs-flux-small");
        let f_dir = tempfile::tempdir().expect("a work tree");
        write_small(f_dir.path(), "v1", world.registry());
        let seed = world
            .git_seed(&f_small, Some(f_dir.path()))
            .await
            .expect("the seed");
        self.repos.push(f_small.clone());
        create_webhook_token(f_ns).await;
        create_flux_sync(world, f_ns, "web", &f_small, SMALL_PATH, "1h").await;
        create_receiver(f_ns, "web").await;
        let ks = kustomizations(f_ns);
        let revision = flux_revision(&seed);
        poll_until(
            "Flux's first sync of the small app",
            Duration::from_secs(180),
            || 0,
            || {
                let ks = ks.clone();
                let revision = revision.clone();
                async move {
                    let k = ks.get("web").await.map_err(|e| e.to_string())?;
                    if applied(&k, &revision) {
                        Ok(true)
                    } else {
                        Err(flux_message(&k))
                    }
                }
            },
        )
        .await;
        let hook = webhook_path(f_ns, "web").await;
        let figures = flux_commits(
            world,
            f_ns,
            self.flux,
            &f_small,
            f_dir.path(),
            &hook,
            COMMITS,
        )
        .await;
        self.work_trees.push(f_dir);
        figures
    }

    /// Cold sync of 1,000 objects, interval 1m: both repositories seeded from one work tree,
    /// then Sluice's GitSync, then Flux's GitRepository and Kustomization.
    pub async fn cold_sync(&mut self) -> ColdSync {
        let (world, s_ns, f_ns, daemon, flux) =
            (self.world, self.s_ns, self.f_ns, self.daemon, self.flux);
        let s_bulk = unique_name("bench-vs-sluice-bulk");
        let dir = tempfile::tempdir().expect("a work tree");
        write_bulk(dir.path(), world.registry(), "v1");
        let s_seed = world
            .git_seed(&s_bulk, Some(dir.path()))
            .await
            .expect("the seed");
        self.repos.push(s_bulk.clone());
        let f_bulk = unique_name("bench-vs-flux-bulk");
        let f_seed = world
            .git_seed(&f_bulk, Some(dir.path()))
            .await
            .expect("the seed");
        self.repos.push(f_bulk.clone());
        self.work_trees.push(dir);

        let s_before = daemon.memory();
        let created = Instant::now();
        create_git_sync_spec(
            s_ns,
            "bulk",
            json!({"source": {"url": world.git_http_url(&s_bulk), "ref": {"branch": "main"},
                              "path": BULK_PATH, "interval": INTERVAL, "secretRef": {"name": "git-credentials"}},
                   "targetNamespace": s_ns.name(), "healthTimeout": "10m"}),
        )
        .await;
        let (s_applied, s_peak) = poll_until(
            "Sluice's cold sync",
            Duration::from_secs(600),
            || daemon.memory().rss_kib,
            || async {
                let s: GitSyncStatus = status(s_ns, "bulk").await?;
                Ok(s.last_applied_revision.as_deref() == Some(s_seed.as_str())
                    && s.inventory.len() == BULK_OBJECTS)
            },
        )
        .await;
        let s_cold = s_applied - created;

        let f_before = flux.job_rss();
        let created = Instant::now();
        create_flux_sync(world, f_ns, "bulk", &f_bulk, BULK_PATH, INTERVAL).await;
        let ks = kustomizations(f_ns);
        let revision = flux_revision(&f_seed);
        let (f_applied, f_peak) = poll_until(
            "Flux's cold sync",
            Duration::from_secs(600),
            || flux.job_rss(),
            || {
                let ks = ks.clone();
                let revision = revision.clone();
                async move {
                    let k = ks.get("bulk").await.map_err(|e| e.to_string())?;
                    if applied(&k, &revision) && inventory_len(&k) == BULK_OBJECTS {
                        Ok(true)
                    } else {
                        Err(format!(
                            "{} ({} inventory entries)",
                            flux_message(&k),
                            inventory_len(&k)
                        ))
                    }
                }
            },
        )
        .await;
        let f_cold = f_applied - created;
        ColdSync {
            s_cold,
            f_cold,
            s_before,
            f_before,
            s_peak,
            f_peak,
        }
    }

    /// Drift → healed on the 1,000 objects: Sluice's edits 300 ms apart, Flux's at random points
    /// of its interval.
    pub async fn drift(&self) -> Healed {
        let s_healed = drifts(self.s_ns, SLUICE_DRIFTS, Duration::from_secs(60), || {
            Duration::from_millis(300)
        })
        .await;
        let f_healed = drifts(
            self.f_ns,
            FLUX_DRIFTS,
            Duration::from_secs(3 * INTERVAL_SECS),
            || Duration::from_millis(jitter(INTERVAL_SECS * 1000)),
        )
        .await;
        Healed { s_healed, f_healed }
    }

    /// At rest, both at once, once Sluice's health verdict is in (its status write): each side's
    /// requests over the window, and the RSS sampled every 5 s.
    pub async fn at_rest(&self) -> AtRest {
        let (s_ns, daemon, sluice_api, flux) = (self.s_ns, self.daemon, self.sluice_api, self.flux);
        poll_until(
            "Sluice's bulk GitSync Healthy",
            Duration::from_secs(600),
            || 0,
            || async {
                let s: GitSyncStatus = status(s_ns, "bulk").await?;
                Ok(s.health.as_deref() == Some("Healthy"))
            },
        )
        .await;
        let window = crate::rest_window();
        tokio::time::sleep(Duration::from_secs(20)).await;
        let (s_w0, s_d0) = requests(sluice_api, SLUICE_RESOURCES).await;
        let (f_w0, f_d0) = requests(&flux.apiserver, FLUX_RESOURCES).await;
        let started = Instant::now();
        let (mut s_max, mut f_max) = (0, 0);
        while started.elapsed() < window {
            s_max = s_max.max(daemon.memory().rss_kib);
            f_max = f_max.max(flux.job_rss());
            tokio::time::sleep(Duration::from_secs(5).min(window)).await;
        }
        let minutes = started.elapsed().as_secs_f64() / 60.0;
        let (s_w1, s_d1) = requests(sluice_api, SLUICE_RESOURCES).await;
        let (f_w1, f_d1) = requests(&flux.apiserver, FLUX_RESOURCES).await;
        let (s_rest, s_rest_dry) = (
            apimetrics::grown(&s_w0, &s_w1),
            apimetrics::grown(&s_d0, &s_d1),
        );
        let (f_rest, f_rest_dry) = (
            apimetrics::grown(&f_w0, &f_w1),
            apimetrics::grown(&f_d0, &f_d1),
        );
        let s_mem = daemon.memory();
        let f_mem = flux.job_rss();
        let f_memory = flux.describe_memory();
        AtRest {
            minutes,
            s_rest,
            s_rest_dry,
            f_rest,
            f_rest_dry,
            s_mem,
            f_mem,
            f_memory,
            s_max,
            f_max,
        }
    }

    /// Optionally (`SLUICE_BENCH_FLUX_DOCS_DRIFT=1`), one drift on Flux's side at the
    /// Kustomization interval Flux's docs recommend: up to an hour.
    pub async fn docs_drift(&self) -> Option<Duration> {
        if std::env::var("SLUICE_BENCH_FLUX_DOCS_DRIFT").as_deref() == Ok("1") {
            kustomizations(self.f_ns)
                .patch(
                    "bulk",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"interval": DOCS_INTERVAL}})),
                )
                .await
                .expect("the Kustomization's interval");
            tokio::time::sleep(Duration::from_secs(10)).await;
            let healed = drifts(
                self.f_ns,
                1,
                Duration::from_secs(2 * DOCS_INTERVAL_SECS),
                || Duration::from_millis(jitter(DOCS_INTERVAL_SECS * 1000)),
            )
            .await;
            Some(healed[0])
        } else {
            None
        }
    }
}
