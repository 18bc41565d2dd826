//! The Config Updater's controllers: thin kube-runtime shells over the pure parts.
//!
//! - `repository`: an `ImageRepository` is scanned ([`crate::scan::scan`]) every interval, or
//!   at once when a verified registry webhook event names it; its tags go into the shared
//!   `State` and a summary into its status.
//! - `policy`: an `ImagePolicy` chooses ([`crate::policy::CompiledPolicy::choose`]) from its
//!   repository's tags whenever the repository's status changes (a watch), pins the digest for
//!   `digest` policies, and writes `status.latestRef`.
//! - `update`: an `ImageUpdate` gathers the chosen images of its namespace, lets the
//!   [`crate::schedule::Batcher`] decide when, and pushes one commit
//!   ([`crate::writeback::push_update`]); rolled-back tags go to the policies' `blockedTags`.
//!   What its status says is decided in pure code (`update_status`: the batcher's decision,
//!   then the round's outcome, into the next status and events) and written in one place. In
//!   pull-request mode a forge's webhook that its pull request was closed, merged or reopened
//!   makes it run a round at once (the round reads the pull request), not at its next interval.
//!
//! Each reconcile counts in `sluice_reconcile_total{kind, result}` (result: `success` or the
//! error's kind). Failures are retried with exponential backoff. [`run`] starts all three; the
//! daemon and the e2e tests call it. With `--shards`, each replica works the namespaces whose
//! shards it holds (`shards`).

pub(crate) mod credentials;
mod pending;
pub(crate) mod policy;
mod pull_request;
pub(crate) mod repository;
mod shards;
mod state;
mod status;
mod update;
mod update_status;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use sluice_shared::events::Publisher;
use sluice_shared::notify::Notifier;
use sluice_shared::sharding::{Requests, ShardEvent, ShardGate, hand_over};
use tokio::sync::mpsc;

pub(crate) use state::State;

use crate::resource::{ImagePolicy, ImageRepository, ImageUpdate};
use crate::scan::{ScanError, ScanMetrics};
use crate::webhook::{Delivered, PullRequestEvent};

/// The name events are reported under.
pub const REPORTER: &str = "sluice-config-updater";
/// The default of `--work-dir`.
pub const DEFAULT_WORK_DIR: &str = "/tmp/sluice-updater";
/// The longest wait between retries of a failing reconcile.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// How the controllers run.
pub struct Options {
    /// Watch this namespace only; `None`: every namespace.
    pub namespace: Option<String>,
    /// Work clones of the config repositories live below it.
    pub work_dir: PathBuf,
    /// The pod name, for events.
    pub instance: Option<String>,
    /// Verified webhook deliveries (from [`crate::webhook::router`]): registry pushes and
    /// forge pull-request events.
    pub events: Option<mpsc::Receiver<Delivered>>,
    pub metrics: Metrics,
    /// Send events to the Alerts that want them (the daemon; not a dry run).
    pub notify: bool,
    /// Work only the image resources with these labels (`--watch-label-selector`).
    pub label_selector: Option<String>,
    /// Sharded (`--shards`): the shards this replica works, and their changes.
    pub shards: Option<Arc<ShardGate>>,
    pub shard_events: Option<mpsc::Receiver<ShardEvent>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            namespace: None,
            work_dir: PathBuf::from(DEFAULT_WORK_DIR),
            instance: None,
            events: None,
            metrics: Metrics::default(),
            notify: false,
            label_selector: None,
            shards: None,
            shard_events: None,
        }
    }
}

/// The labels of `sluice_reconcile_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub kind: String,
    pub result: String,
}

/// `sluice_reconcile_total{kind,result}` and the registry request metrics.
#[derive(Clone, Default)]
pub struct Metrics {
    reconciles: Family<ReconcileLabels, Counter>,
    pub scan: ScanMetrics,
}

impl Metrics {
    /// Metrics registered in `registry` (whose prefix makes them `sluice_…`).
    pub fn register(registry: &mut Registry) -> Self {
        let reconciles = Family::default();
        registry.register(
            "reconcile",
            "Reconciles, by kind of resource and result: success or the kind of error",
            reconciles.clone(),
        );
        Metrics {
            reconciles,
            scan: ScanMetrics::register(registry),
        }
    }

    pub fn observe(&self, kind: &str, result: &str) {
        self.reconciles
            .get_or_create(&ReconcileLabels {
                kind: kind.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// How many reconciles of `kind` ended with `result`.
    pub fn count(&self, kind: &str, result: &str) -> u64 {
        self.reconciles
            .get_or_create(&ReconcileLabels {
                kind: kind.to_owned(),
                result: result.to_owned(),
            })
            .get()
    }
}

/// Everything a reconcile can fail with. Messages carry no credential.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error("Secret {name:?}: {reason}")]
    Secret { name: String, reason: String },
    #[error("invalid policy: {0}")]
    Policy(#[from] crate::policy::PolicyError),
    #[error("cannot pin the digest: {0}")]
    Digest(String),
    #[error("invalid ImageUpdate: {0}")]
    Invalid(String),
    #[error(transparent)]
    WriteBack(#[from] crate::writeback::WriteBackError),
    #[error(transparent)]
    Git(#[from] sluice_shared::git::GitError),
    /// The forge of a pull request (`spec.git.pullRequest`) refused or could not be reached.
    #[error("the forge: {0}")]
    Forge(#[from] sluice_shared::forge::ForgeError),
}

impl Error {
    /// A short, stable label for metrics and logs.
    pub fn metric_label(&self) -> String {
        match self {
            Error::Kube(_) => "kube".into(),
            Error::Scan(e) => e.reason().to_owned(),
            Error::Secret { .. } => "secret".into(),
            Error::Policy(_) => "invalid_policy".into(),
            Error::Digest(_) => "digest".into(),
            Error::Invalid(_) => "invalid".into(),
            Error::WriteBack(e) => e.kind().to_owned(),
            Error::Git(e) => e.kind().to_owned(),
            Error::Forge(e) => e.metric_label().to_owned(),
        }
    }

    /// The registry's own word on when to come back, if any.
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Scan(e) => e.retry_after(),
            _ => None,
        }
    }
}

/// What every reconcile shares.
pub(crate) struct Context {
    pub client: Client,
    /// Events, to the API server and to the Alerts that want them.
    pub events: Publisher,
    pub metrics: Metrics,
    pub work_dir: PathBuf,
    pub state: State,
    /// Sharded: the shards this replica works (see `shards`).
    pub shards: Option<Arc<ShardGate>>,
    /// `sluice.dev/reconcile-requested-at` values acted on (see `shards`).
    pub requests: Requests,
}

impl Context {
    pub fn new(client: Client, options: &Options) -> Self {
        let reporter = Reporter {
            controller: REPORTER.to_owned(),
            instance: options.instance.clone(),
        };
        let notifier = if options.notify {
            Notifier::start(client.clone(), options.namespace.as_deref(), REPORTER)
        } else {
            Notifier::disabled()
        };
        Context {
            events: Publisher::new(Recorder::new(client.clone(), reporter), notifier),
            client,
            metrics: options.metrics.clone(),
            work_dir: options.work_dir.clone(),
            state: State::default(),
            shards: options.shards.clone(),
            requests: Requests::default(),
        }
    }

    /// Counts a reconcile's result and resets or advances the object's failure count.
    pub(crate) fn finish(
        &self,
        kind: &str,
        key: &str,
        started: Instant,
        result: Result<Action, Error>,
    ) -> Result<Action, Error> {
        let label = match &result {
            Ok(_) => {
                self.state.succeeded(key);
                "success".to_owned()
            }
            Err(e) => e.metric_label(),
        };
        self.metrics.observe(kind, &label);
        tracing::debug!(kind, object = key, result = %label, took = ?started.elapsed(), "reconciled");
        result
    }
}

/// `namespace/name` of an object.
pub(crate) fn key_of<K: ResourceExt>(object: &K) -> String {
    format!(
        "{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

/// Exponential backoff from 1 s, capped at [`MAX_BACKOFF`]; a `Retry-After` is the floor.
fn error_policy<K: ResourceExt>(object: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = key_of(object.as_ref());
    let failures = ctx.state.failed(&key);
    let exp = Duration::from_secs(1u64 << failures.saturating_sub(1).min(9));
    let wait = exp
        .min(MAX_BACKOFF)
        .max(error.retry_after().unwrap_or_default());
    tracing::warn!(object = %key, error = %error, kind = %error.metric_label(), retry_in = ?wait, "reconcile failed");
    Action::requeue(wait)
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as kube::Resource>::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs the three controllers until `shutdown` completes, then lets reconciles in flight finish.
pub async fn run(
    client: Client,
    mut options: Options,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let ns = options.namespace.clone();
    let ns = ns.as_deref();
    tracing::info!(
        namespace = ns.unwrap_or("*"),
        selector = options.label_selector.as_deref().unwrap_or(""),
        "watching image resources"
    );
    let ctx = Arc::new(Context::new(client.clone(), &options));
    let watching = match &options.label_selector {
        Some(selector) => watcher::Config::default().labels(selector),
        None => watcher::Config::default(),
    };

    // One shutdown signal, fanned out to the three controllers.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };

    // Built first: webhooks and shard changes find the objects they concern in their stores.
    let repositories = Controller::new(api::<ImageRepository>(&client, ns), watching.clone());
    let policies = Controller::new(api::<ImagePolicy>(&client, ns), watching.clone());
    let updates = Controller::new(api::<ImageUpdate>(&client, ns), watching.clone());
    let (repository_tx, repository_rx) = mpsc::channel::<ObjectRef<ImageRepository>>(256);
    let (policy_tx, policy_rx) = mpsc::channel::<ObjectRef<ImagePolicy>>(256);
    let (update_tx, update_rx) = mpsc::channel::<ObjectRef<ImageUpdate>>(256);
    if let Some(events) = options.events.take() {
        tokio::spawn(deliver(
            events,
            ctx.clone(),
            (repositories.store(), repository_tx.clone()),
            (updates.store(), update_tx.clone()),
        ));
    }
    if let Some(events) = options.shard_events.take() {
        let controllers = shards::Controllers {
            repositories: (repositories.store(), repository_tx),
            policies: (policies.store(), policy_tx),
            updates: (updates.store(), update_tx),
        };
        tokio::spawn(shards::follow(events, ctx.clone(), controllers));
    }

    let repositories = repositories
        .reconcile_on(receiver_stream(repository_rx))
        .graceful_shutdown_on(stopped())
        .run(
            shards::gated(repository::reconcile),
            error_policy,
            ctx.clone(),
        )
        .for_each(|_| async {
            sluice_shared::memory::release_free_heap();
        });

    let store = policies.store();
    let policies = policies
        .reconcile_on(receiver_stream(policy_rx))
        .watches(
            api::<ImageRepository>(&client, ns),
            watching.clone(),
            move |repo| {
                let (rns, rname) = (repo.namespace(), repo.name_any());
                store
                    .state()
                    .into_iter()
                    .filter(|p| p.namespace() == rns && p.spec.image_repository_ref.name == rname)
                    .map(|p| ObjectRef::from_obj(p.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(stopped())
        .run(shards::gated(policy::reconcile), error_policy, ctx.clone())
        .for_each(|_| async {
            sluice_shared::memory::release_free_heap();
        });

    let store = updates.store();
    let updates = updates
        .reconcile_on(receiver_stream(update_rx))
        .watches(api::<ImagePolicy>(&client, ns), watching, move |policy| {
            let pns = policy.namespace();
            store
                .state()
                .into_iter()
                .filter(|u| u.namespace() == pns)
                .map(|u| ObjectRef::from_obj(u.as_ref()))
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(stopped())
        .run(shards::gated(update::reconcile), error_policy, ctx.clone())
        .for_each(|_| async {
            sluice_shared::memory::release_free_heap();
        });

    tokio::join!(repositories, policies, updates);
    tracing::info!("image controllers stopped");
}

/// Verified webhook deliveries, until the endpoint stops: the repositories a registry event
/// names are scanned at once; the ImageUpdates proposing a pull request the forge says was
/// closed, merged or reopened run a round at once. Sharded, those of another replica's shard
/// are handed to it, never dropped.
async fn deliver(
    mut events: mpsc::Receiver<Delivered>,
    ctx: Arc<Context>,
    repositories: (
        kube::runtime::reflector::Store<ImageRepository>,
        mpsc::Sender<ObjectRef<ImageRepository>>,
    ),
    updates: (
        kube::runtime::reflector::Store<ImageUpdate>,
        mpsc::Sender<ObjectRef<ImageUpdate>>,
    ),
) {
    while let Some(delivered) = events.recv().await {
        match delivered {
            Delivered::Image(event) => {
                for (ns, name) in ctx.state.repositories_matching(&event) {
                    tracing::info!(repository = %format!("{ns}/{name}"), tag = event.tag.as_deref().unwrap_or(""), "webhook: scanning now");
                    let _ = repositories.1.send(ObjectRef::new(&name).within(&ns)).await;
                }
                for repo in repositories.0.state() {
                    if !ctx.works(repo.as_ref())
                        && crate::webhook::matches(&repo.spec.access.image, &event)
                    {
                        let api = Api::<ImageRepository>::namespaced(
                            ctx.client.clone(),
                            &repo.namespace().unwrap_or_default(),
                        );
                        tokio::spawn(hand_over(api, repo.name_any()));
                    }
                }
            }
            Delivered::PullRequest(event) => {
                for update in updates.0.state() {
                    if !proposes(&update, &event) {
                        continue;
                    }
                    let key = key_of(update.as_ref());
                    if !ctx.works(update.as_ref()) {
                        let api = Api::<ImageUpdate>::namespaced(
                            ctx.client.clone(),
                            &update.namespace().unwrap_or_default(),
                        );
                        tokio::spawn(hand_over(api, update.name_any()));
                        continue;
                    }
                    // No interval to wait for: the next reconcile runs a round, and a round
                    // reads the pull request first.
                    ctx.state.with_update(&key, |s| s.checked_at = None);
                    tracing::info!(update = %key, head = %event.head, "webhook: pull request {}; reading the branch now", event.action);
                    let _ = updates.1.send(ObjectRef::from_obj(update.as_ref())).await;
                }
            }
        }
    }
}

/// The triggers sent into `rx`, as a stream for `Controller::reconcile_on`.
fn receiver_stream<T: Send + 'static>(rx: mpsc::Receiver<T>) -> impl futures::Stream<Item = T> {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) })
}

/// Whether `update` proposes the pull request of `event`: in pull-request mode, on the event's
/// repository, from its head (`pushBranch`) into its base (`branch`).
fn proposes(update: &ImageUpdate, event: &PullRequestEvent) -> bool {
    let git = &update.spec.git;
    match (&git.pull_request, &git.push_branch) {
        (Some(_), Some(push_branch)) => event.concerns(&git.url, &git.branch, push_branch),
        _ => false,
    }
}
