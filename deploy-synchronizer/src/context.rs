//! What every reconcile of the GitSync controller shares: the [`Context`] (clients, event
//! recorder, metrics, options, self-heal, and the per-sync record of attempts, pushes and
//! requests that decides when a sync is due), the [`Options`] the controller runs with and its
//! [`Metrics`]. The controller (`controller.rs`) builds it; the reconcile (`reconcile/`) reads
//! it. Neither depends on the other through it.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use sluice_shared::events::Publisher;
use sluice_shared::notify::Notifier;
use sluice_shared::sharding::{ShardEvent, ShardGate};
use tokio::sync::mpsc;

use crate::heal::{HealMetrics, Healer, WatchScope};
use crate::resource::GitSync;
use crate::stages::Stages;
use crate::status::backoff;
use crate::tenancy::Lockdown;
use crate::webhook::PushEvent;

/// The name events are reported under.
pub const REPORTER: &str = "sluice-deploy-synchronizer";
/// The default of `--cache-dir`.
pub const DEFAULT_CACHE_DIR: &str = "/tmp/sluice-synchronizer";
/// The longest wait between retries of a failing sync.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// How the controller runs.
#[derive(Debug)]
pub struct Options {
    /// Watch GitSyncs in this namespace only; `None`: every namespace.
    pub namespace: Option<String>,
    /// Git caches and checkouts live below it.
    pub cache_dir: PathBuf,
    /// The pod name, for events.
    pub instance: Option<String>,
    /// Verified pushes from the webhook receiver: every GitSync whose source a push
    /// [`crate::webhook::matches`] is synced at once. Polling stays the fallback.
    pub pushes: Option<mpsc::Receiver<PushEvent>>,
    /// How far each self-heal watch reaches: one per kind cluster-wide, or one per kind and
    /// namespace (for RBAC granted namespace by namespace).
    pub heal_scope: WatchScope,
    /// The platform team's multi-tenancy rules (`--default-service-account`,
    /// `--no-cross-namespace-refs`).
    pub lockdown: Lockdown,
    /// Sharded (`--shards`): the shards this replica works, and their changes.
    pub shards: Option<Arc<ShardGate>>,
    pub shard_events: Option<mpsc::Receiver<ShardEvent>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            namespace: None,
            cache_dir: PathBuf::from(DEFAULT_CACHE_DIR),
            instance: None,
            pushes: None,
            heal_scope: WatchScope::default(),
            lockdown: Lockdown::default(),
            shards: None,
            shard_events: None,
        }
    }
}

/// The `result` label of the reconcile metrics: `success` or the error's kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

/// The labels of `sluice_sync_applies_total`: `scope` is `changes` (only what changed was sent)
/// or `full`; `reason` says why a full apply was needed (`no_record`, `spec_changed`,
/// `discovery_changed`, `heal_failed`), empty for `changes`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SendLabels {
    pub scope: &'static str,
    pub reason: &'static str,
}

/// The label of `sluice_sync_stage_duration_seconds`: a stage of [`Stages`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabel {
    pub stage: &'static str,
}

/// The labels of `sluice_gitsync_healthy`: the GitSync's namespace and name (not `namespace`,
/// which a scrape sets to the daemon pod's).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SyncLabels {
    pub gitsync_namespace: String,
    pub gitsync: String,
}

/// `sluice_reconcile_total{result}`, `sluice_reconcile_duration_seconds`, what the syncs sent:
/// `sluice_sync_applies_total{scope,reason}` and `sluice_sync_objects_sent_total`, and
/// `sluice_gitsync_healthy{gitsync_namespace,gitsync}`.
#[derive(Clone)]
pub struct Metrics {
    reconciles: Family<ResultLabel, Counter>,
    duration: Histogram,
    stages: Family<StageLabel, Histogram>,
    sends: Family<SendLabels, Counter>,
    objects_sent: Counter,
    healthy: Family<SyncLabels, Gauge>,
    /// Self-heal's own metrics.
    pub heal: HealMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            reconciles: Family::default(),
            duration: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            stages: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 16))
            }),
            sends: Family::default(),
            objects_sent: Counter::default(),
            healthy: Family::default(),
            heal: HealMetrics::default(),
        }
    }
}

impl Metrics {
    /// Metrics registered in `registry` (whose prefix makes them `sluice_…`).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "reconcile",
            "GitSync reconciles, by result: success or the kind of error",
            metrics.reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "How long one GitSync reconcile took",
            metrics.duration.clone(),
        );
        registry.register(
            "sync_stage_duration_seconds",
            "How long each stage of a sync that applied took: fetch, inputs, discover, render, \
             prepare, read, plan, apply, status",
            metrics.stages.clone(),
        );
        registry.register(
            "sync_applies",
            "Applies of a new revision or spec, by scope: only the changed objects, or all of them \
             (with the reason)",
            metrics.sends.clone(),
        );
        registry.register(
            "sync_objects_sent",
            "Objects dry-run and applied by syncs (not counting self-heal's re-applies)",
            metrics.objects_sent.clone(),
        );
        registry.register(
            "gitsync_healthy",
            "1 while a GitSync's applied revision is Healthy, 0 while it is not (Progressing, \
             Degraded, Unknown)",
            metrics.healthy.clone(),
        );
        metrics.heal.register(registry);
        metrics
    }

    /// Records whether GitSync `namespace/name` is Healthy now.
    pub(crate) fn health(&self, namespace: &str, name: &str, healthy: bool) {
        self.healthy
            .get_or_create(&SyncLabels {
                gitsync_namespace: namespace.to_owned(),
                gitsync: name.to_owned(),
            })
            .set(i64::from(healthy));
    }

    /// A sync sends `objects` objects: all of them for `full` (`Some(reason)`), or its changes.
    pub(crate) fn sent(&self, full: Option<&'static str>, objects: usize) {
        let labels = match full {
            Some(reason) => SendLabels {
                scope: "full",
                reason,
            },
            None => SendLabels {
                scope: "changes",
                reason: "",
            },
        };
        self.sends.get_or_create(&labels).inc();
        self.objects_sent.inc_by(objects as u64);
    }

    /// Records how long each stage of a sync took.
    pub(crate) fn stages(&self, stages: &Stages) {
        for (stage, took) in stages.took() {
            self.stages
                .get_or_create(&StageLabel { stage })
                .observe(took.as_secs_f64());
        }
    }

    pub(crate) fn observe(&self, result: &str, took: Duration) {
        self.reconciles
            .get_or_create(&ResultLabel {
                result: result.to_owned(),
            })
            .inc();
        self.duration.observe(took.as_secs_f64());
    }
}

/// When a sync last ran and how many times in a row it failed, per GitSync.
#[derive(Clone, Copy, Debug)]
struct Attempt {
    at: Instant,
    failures: u32,
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    /// The client's configuration, to build impersonating clients from.
    pub config: kube::Config,
    /// Events, to the API server and to the Alerts that want them.
    pub events: Publisher,
    pub metrics: Metrics,
    pub options: Options,
    /// Self-heal: the watches and the index of what each sync applied.
    pub healer: Healer,
    /// The controller's view of every GitSync (for `dependsOn`).
    pub syncs: Store<GitSync>,
    attempts: Mutex<HashMap<String, Attempt>>,
    /// GitSyncs a webhook push asked to sync now.
    pushed: Mutex<HashSet<String>>,
    /// The last [`RECONCILE_REQUESTED_AT`](sluice_shared::shard::RECONCILE_REQUESTED_AT) value acted on, per GitSync.
    requests: sluice_shared::sharding::Requests,
    /// The resourceVersion each GitSync was left at by this process's last status write.
    status_versions: Mutex<HashMap<String, String>>,
}

impl Context {
    /// `store` is the controller's view of the GitSyncs.
    pub fn new(
        client: Client,
        config: kube::Config,
        options: Options,
        metrics: Metrics,
        store: Store<GitSync>,
    ) -> Self {
        let reporter = Reporter {
            controller: REPORTER.to_owned(),
            instance: options.instance.clone(),
        };
        let recorder = Recorder::new(client.clone(), reporter);
        let notifier = Notifier::start(client.clone(), options.namespace.as_deref(), REPORTER);
        let events = Publisher::new(recorder, notifier);
        Self {
            healer: Healer::new(
                client.clone(),
                events.clone(),
                metrics.heal.clone(),
                store.clone(),
                options.heal_scope,
            ),
            syncs: store,
            events,
            client,
            config,
            metrics,
            options,
            attempts: Mutex::new(HashMap::new()),
            pushed: Mutex::new(HashSet::new()),
            requests: Default::default(),
            status_versions: Mutex::new(HashMap::new()),
        }
    }

    /// Marks `key` to sync at its next reconcile, whether it is due or not.
    pub(crate) fn push_received(&self, key: &str) {
        lock(&self.pushed).insert(key.to_owned());
    }

    /// Whether this reconcile of `key` must sync now, due or not: a push was received for it,
    /// or its [`RECONCILE_REQUESTED_AT`](sluice_shared::shard::RECONCILE_REQUESTED_AT) annotation has a value not acted on yet. Consumes both.
    pub(crate) fn sync_requested(&self, key: &str, sync: &GitSync) -> bool {
        let pushed = lock(&self.pushed).remove(key);
        let annotated = self.requests.is_new(key, sync);
        pushed || annotated
    }

    fn attempts(&self) -> std::sync::MutexGuard<'_, HashMap<String, Attempt>> {
        self.attempts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How long until `key` is due for a sync again: `None` when it is due now (or never ran).
    pub(crate) fn not_due_for(&self, key: &str, interval: Duration) -> Option<Duration> {
        let attempt = *self.attempts().get(key)?;
        let wait = if attempt.failures > 0 {
            backoff(
                attempt.failures,
                interval.clamp(Duration::from_secs(1), MAX_BACKOFF),
            )
        } else {
            interval
        };
        wait.checked_sub(attempt.at.elapsed())
            .filter(|left| !left.is_zero())
    }

    pub(crate) fn succeeded(&self, key: &str) {
        self.attempts().insert(
            key.to_owned(),
            Attempt {
                at: Instant::now(),
                failures: 0,
            },
        );
    }

    /// Records a failure; returns the backoff before the next try.
    pub(crate) fn failed(&self, key: &str, interval: Duration) -> Duration {
        let mut attempts = self.attempts();
        let failures = attempts.get(key).map_or(0, |a| a.failures) + 1;
        attempts.insert(
            key.to_owned(),
            Attempt {
                at: Instant::now(),
                failures,
            },
        );
        backoff(
            failures,
            interval.clamp(Duration::from_secs(1), MAX_BACKOFF),
        )
    }

    pub(crate) fn backoff_of(&self, key: &str, interval: Duration) -> Duration {
        let failures = self.attempts().get(key).map_or(1, |a| a.failures.max(1));
        backoff(
            failures,
            interval.clamp(Duration::from_secs(1), MAX_BACKOFF),
        )
    }

    pub(crate) fn forget(&self, key: &str) {
        self.attempts().remove(key);
        lock(&self.status_versions).remove(key);
    }

    /// Records that this process's status write left `key` at `resource_version`.
    pub(crate) fn status_written(&self, key: &str, resource_version: Option<String>) {
        let mut versions = lock(&self.status_versions);
        match resource_version {
            Some(version) => versions.insert(key.to_owned(), version),
            None => versions.remove(key),
        };
    }

    /// Whether a copy of `key` at `resource_version` is what this process's last status write
    /// left: then its status is what is stored (only this daemon writes it).
    pub(crate) fn is_own_status_write(&self, key: &str, resource_version: Option<&str>) -> bool {
        resource_version
            .is_some_and(|v| lock(&self.status_versions).get(key).map(String::as_str) == Some(v))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
