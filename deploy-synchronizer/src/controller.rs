//! The GitSync controller: a kube-runtime `Controller` over GitSync resources (all namespaces,
//! or one), the shared [`Context`] of every reconcile, its metrics, and the retry policy.
//! [`run`] is what the daemon starts, and what the e2e tests start in-process.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::heal::{HealMetrics, Healer, WatchScope};
use crate::reconcile::{Error, reconcile};
use crate::resource::GitSync;
use crate::status::{backoff, parse_duration};
use crate::webhook::{self, PushEvent};
use tokio::sync::mpsc;

/// The name events are reported under.
pub const REPORTER: &str = "sluice-deploy-synchronizer";
/// The default of `--cache-dir`.
pub const DEFAULT_CACHE_DIR: &str = "/tmp/sluice-synchronizer";
/// The longest wait between retries of a failing sync.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The annotation that asks for a sync now: any new value (a timestamp, say) syncs at once,
/// whatever the interval.
pub const RECONCILE_REQUESTED_AT: &str = "sluice.dev/reconcile-requested-at";

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
    /// [`webhook::matches`] is synced at once. Polling stays the fallback.
    pub pushes: Option<mpsc::Receiver<PushEvent>>,
    /// How far each self-heal watch reaches: one per kind cluster-wide, or one per kind and
    /// namespace (for RBAC granted namespace by namespace).
    pub heal_scope: WatchScope,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            namespace: None,
            cache_dir: PathBuf::from(DEFAULT_CACHE_DIR),
            instance: None,
            pushes: None,
            heal_scope: WatchScope::default(),
        }
    }
}

/// The `result` label of the reconcile metrics: `success` or the error's kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

/// `sluice_reconcile_total{result}` and `sluice_reconcile_duration_seconds`.
#[derive(Clone)]
pub struct Metrics {
    reconciles: Family<ResultLabel, Counter>,
    duration: Histogram,
    /// Self-heal's own metrics.
    pub heal: HealMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            reconciles: Family::default(),
            duration: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
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
        metrics.heal.register(registry);
        metrics
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
    pub recorder: Recorder,
    pub metrics: Metrics,
    pub options: Options,
    /// Self-heal: the watches and the index of what each sync applied.
    pub healer: Healer,
    attempts: Mutex<HashMap<String, Attempt>>,
    /// GitSyncs a webhook push asked to sync now.
    pushed: Mutex<HashSet<String>>,
    /// The last [`RECONCILE_REQUESTED_AT`] value acted on, per GitSync.
    requests: Mutex<HashMap<String, String>>,
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
        Self {
            healer: Healer::new(
                client.clone(),
                recorder.clone(),
                metrics.heal.clone(),
                store,
                options.heal_scope,
            ),
            recorder,
            client,
            config,
            metrics,
            options,
            attempts: Mutex::new(HashMap::new()),
            pushed: Mutex::new(HashSet::new()),
            requests: Mutex::new(HashMap::new()),
        }
    }

    /// Marks `key` to sync at its next reconcile, whether it is due or not.
    pub(crate) fn push_received(&self, key: &str) {
        lock(&self.pushed).insert(key.to_owned());
    }

    /// Whether this reconcile of `key` must sync now, due or not: a push was received for it,
    /// or its [`RECONCILE_REQUESTED_AT`] annotation has a value not acted on yet. Consumes both.
    pub(crate) fn sync_requested(&self, key: &str, requested_at: Option<&str>) -> bool {
        let pushed = lock(&self.pushed).remove(key);
        let annotated = requested_at.is_some_and(|value| {
            let mut requests = lock(&self.requests);
            let new = requests.get(key).map(String::as_str) != Some(value);
            if new {
                requests.insert(key.to_owned(), value.to_owned());
            }
            new
        });
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

    fn backoff_of(&self, key: &str, interval: Duration) -> Duration {
        let failures = self.attempts().get(key).map_or(1, |a| a.failures.max(1));
        backoff(
            failures,
            interval.clamp(Duration::from_secs(1), MAX_BACKOFF),
        )
    }

    pub(crate) fn forget(&self, key: &str) {
        self.attempts().remove(key);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The GitSyncs in `store` whose source `event` concerns, each marked in `ctx` to sync now.
fn pushed_syncs(
    store: &Store<GitSync>,
    ctx: &Context,
    event: &PushEvent,
) -> Vec<ObjectRef<GitSync>> {
    let refs: Vec<ObjectRef<GitSync>> = store
        .state()
        .iter()
        .filter(|sync| {
            webhook::matches(
                &sync.spec.source.url,
                sync.spec.source.reference.as_ref(),
                event,
            )
        })
        .map(|sync| ObjectRef::from_obj(sync.as_ref()))
        .collect();
    for r in &refs {
        ctx.push_received(&format!(
            "{}/{}",
            r.namespace.as_deref().unwrap_or_default(),
            r.name
        ));
    }
    tracing::info!(reference = %event.reference, revision = ?event.revision,
        syncs = ?refs.iter().map(ToString::to_string).collect::<Vec<_>>(), "push received");
    refs
}

/// A failed reconcile is retried with exponential backoff (1 s, 2 s, 4 s…), capped at the
/// sync's interval (and at five minutes).
pub fn error_policy(sync: Arc<GitSync>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = format!(
        "{}/{}",
        sync.namespace().unwrap_or_default(),
        sync.name_any()
    );
    let interval = parse_duration(&sync.spec.source.interval).unwrap_or(MAX_BACKOFF);
    let wait = ctx.backoff_of(&key, interval);
    tracing::warn!(sync = %key, error = %error, kind = error.metric_label(), retry_in = ?wait, "sync failed");
    Action::requeue(wait)
}

/// Runs the controller until `shutdown` completes, then lets the reconciles in flight finish.
pub async fn run(
    client: Client,
    config: kube::Config,
    mut options: Options,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<GitSync> = match &options.namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    tracing::info!(
        namespace = options.namespace.as_deref().unwrap_or("*"),
        "watching GitSyncs"
    );
    let pushes = options.pushes.take();
    let mut controller = Controller::new(api, watcher::Config::default());
    let ctx = Arc::new(Context::new(
        client,
        config,
        options,
        metrics,
        controller.store(),
    ));
    if let Some(pushes) = pushes {
        let (store, push_ctx) = (controller.store(), ctx.clone());
        let triggers = stream::unfold(pushes, |mut rx| async move {
            rx.recv().await.map(|event| (event, rx))
        })
        .then(move |event| {
            let (store, ctx) = (store.clone(), push_ctx.clone());
            async move {
                // Before the first list the store is empty; the initial sync fetches anyway.
                if store.wait_until_ready().await.is_err() {
                    return stream::iter(Vec::new());
                }
                stream::iter(pushed_syncs(&store, &ctx, &event))
            }
        })
        .flatten();
        controller = controller.reconcile_on(triggers);
    }
    let healer = ctx.healer.clone();
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            sluice_shared::memory::release_free_heap();
            if let Err(error) = result {
                tracing::debug!(%error, "controller");
            }
        })
        .await;
    healer.shutdown();
    tracing::info!("GitSync controller stopped");
}
