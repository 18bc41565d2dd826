//! Self-heal by watching: one metadata-only watch per kind under management (or per kind and
//! namespace, see [`WatchScope`]), shared by every GitSync, feeds the [`Index`]; a drifted or deleted object is re-applied at once with the
//! manifest its sync applied last (no fetch, render or dry-run: the revision did not change, and
//! that manifest passed its dry-run), through the sync's writer, so impersonation holds.
//!
//! What counts as drift is decided in [`crate::drift`]; how fast to heal against an actor that
//! keeps taking a field back in [`crate::drift::fight`]. Watches start when a kind first gets an
//! object under self-heal and stop when its last one goes.

mod index;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, ApiResource, DynamicObject, PartialObjectMeta};
use kube::runtime::events::EventType;
use kube::runtime::reflector::Store;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde_json::Value;
use sluice_shared::events;
use sluice_shared::events::Publisher;
use tokio::sync::Semaphore;
use tokio::task::AbortHandle;

use crate::apply::{Kinds, Problem, Resolved, apply_object};
use crate::drift::Check;
use crate::object::ObjectRef;
use crate::plan::{Apply, Record};
use crate::resource::GitSync;
pub use index::{Applied, Heal, Holding, Index, Made, Target, WatchKey, WatchScope};

/// How many heals run at once.
const PARALLEL_HEALS: usize = 8;
/// The first retry of a heal the apiserver could not be asked for; doubles up to a minute.
const RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);

/// The `result` label of `sluice_heal_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HealLabel {
    /// `healed`, `recreated`, `failed` or `fought` (a heal delayed against another actor).
    pub result: String,
}

/// `sluice_heal_total{result}`, `sluice_heal_duration_seconds` (drift seen → healed) and
/// `sluice_heal_watched_objects`.
#[derive(Clone)]
pub struct HealMetrics {
    heals: Family<HealLabel, Counter>,
    duration: Histogram,
    /// Watches running: one per kind under self-heal (per kind and namespace with
    /// [`WatchScope::Namespace`]), however many syncs hold objects of it.
    watches: Gauge,
    /// Objects under self-heal.
    objects: Gauge,
}

impl Default for HealMetrics {
    fn default() -> Self {
        Self {
            heals: Family::default(),
            duration: Histogram::new(exponential_buckets(0.002, 2.0, 14)),
            watches: Gauge::default(),
            objects: Gauge::default(),
        }
    }
}

impl HealMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "heal",
            "Self-heals of drifted objects, by result: healed, recreated, failed, fought",
            self.heals.clone(),
        );
        registry.register(
            "heal_duration_seconds",
            "From a watch seeing drift to the object re-applied (heals not delayed by a fight)",
            self.duration.clone(),
        );
        registry.register(
            "heal_watches",
            "Watches self-heal runs: one per kind under management, shared by every GitSync",
            self.watches.clone(),
        );
        registry.register(
            "heal_objects",
            "Objects under self-heal",
            self.objects.clone(),
        );
    }

    fn count(&self, result: &str) {
        self.heals
            .get_or_create(&HealLabel {
                result: result.to_owned(),
            })
            .inc();
    }
}

/// A sync's identity for heals: where events go and whom to write as.
struct SyncInfo {
    reference: ObjectReference,
    writer: Client,
}

struct Shared {
    client: Client,
    events: Publisher,
    metrics: HealMetrics,
    /// The GitSyncs as the controller sees them: a heal of a sync deleted meanwhile (no
    /// reconcile runs for a deleted object) is dropped, and the sync forgotten.
    store: Store<GitSync>,
    index: Mutex<Index>,
    syncs: Mutex<HashMap<String, SyncInfo>>,
    scope: WatchScope,
    watches: Mutex<HashMap<WatchKey, (AbortHandle, Arc<Resolved>)>>,
    permits: Semaphore,
}

/// The self-heal shell (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct Healer {
    shared: Arc<Shared>,
}

impl Healer {
    pub fn new(
        client: Client,
        events: Publisher,
        metrics: HealMetrics,
        store: Store<GitSync>,
        scope: WatchScope,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                client,
                events,
                metrics,
                store,
                index: Mutex::new(Index::default()),
                syncs: Mutex::new(HashMap::new()),
                scope,
                watches: Mutex::new(HashMap::new()),
                permits: Semaphore::new(PARALLEL_HEALS),
            }),
        }
    }

    /// An apply of `sync` starts, writing `objects`; its writes are not drift.
    pub fn hold(&self, sync: &str, objects: Holding) {
        lock(&self.shared.index).hold(sync, objects);
    }

    /// The record of `sync`'s last apply, to send only what changed since (see
    /// [`crate::plan::to_send`]).
    pub fn record(&self, sync: &str) -> Option<Record> {
        lock(&self.shared.index).record(sync)
    }

    /// The apply of `sync` was refused before any write: keep healing what it had.
    pub fn release(&self, sync: &str) {
        lock(&self.shared.index).release(sync);
    }

    /// `sync` applied `applied` (the objects as returned) from `applies` (the manifests), and
    /// left the objects in `unchanged` as they were: heal those from now on, writing as
    /// `writer`. `kinds` is the discovery after the apply.
    pub fn register(
        &self,
        sync: &GitSync,
        writer: Client,
        applies: &[&Apply],
        applied: &[(ObjectRef, Value)],
        unchanged: &BTreeSet<ObjectRef>,
        kinds: &Kinds,
    ) {
        let key = key_of(sync);
        let manifests: HashMap<&ObjectRef, &Apply> =
            applies.iter().map(|apply| (&apply.id, *apply)).collect();
        let objects = applied.iter().filter_map(|(id, returned)| {
            let apply = manifests.get(id)?;
            Some(Applied {
                id: id.clone(),
                api_version: apply.api_version().to_owned(),
                desired: &apply.object,
                returned,
            })
        });
        let made = Made {
            generation: sync.metadata.generation,
            discovery: kinds.fingerprint(),
        };
        let left_out = lock(&self.shared.index).register(&key, objects, unchanged, made);
        if !left_out.is_empty() {
            tracing::warn!(sync = %key, objects = ?left_out.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "no field set of sluice on these objects: their drift cannot be seen");
        }
        lock(&self.shared.syncs).insert(
            key,
            SyncInfo {
                reference: sync.object_ref(&()),
                writer,
            },
        );
        self.sync_watches(kinds);
    }

    /// Stops healing `sync`. Its kinds' watches stop when the next registration finds no object
    /// of theirs.
    pub fn forget(&self, sync: &str) {
        let objects = {
            let mut index = lock(&self.shared.index);
            index.forget(sync);
            index.len()
        };
        self.shared.metrics.objects.set(objects as i64);
        lock(&self.shared.syncs).remove(sync);
    }

    /// Stops every watch and forgets every sync: nothing is healed after this (the controller
    /// stopped).
    pub fn shutdown(&self) {
        for (_, (handle, _)) in lock(&self.shared.watches).drain() {
            handle.abort();
        }
        *lock(&self.shared.index) = Index::default();
        lock(&self.shared.syncs).clear();
        self.shared.metrics.watches.set(0);
        self.shared.metrics.objects.set(0);
    }

    /// Whether every object `sync` applied is as applied, as far as the watches know.
    pub fn in_sync(&self, sync: &str) -> bool {
        lock(&self.shared.index).in_sync(sync)
    }

    /// Starts a watch for each kind (or kind and namespace, see [`WatchScope`]) under self-heal
    /// that has none; stops those no longer needed.
    fn sync_watches(&self, kinds: &Kinds) {
        let (wanted, objects) = {
            let index = lock(&self.shared.index);
            (index.watches(self.shared.scope), index.len())
        };
        self.shared.metrics.objects.set(objects as i64);
        let mut watches = lock(&self.shared.watches);
        let keys: HashSet<&WatchKey> = wanted.iter().map(|(key, _)| key).collect();
        watches.retain(|key, (handle, _)| {
            let keep = keys.contains(key);
            if !keep {
                handle.abort();
                tracing::debug!(group = %key.group, kind = %key.kind, namespace = %key.namespace, "self-heal watch stopped");
            }
            keep
        });
        for (key, api_version) in &wanted {
            if watches.contains_key(key) {
                continue;
            }
            let Some(resolved) = kinds.resolve(&key.group, api_version, &key.kind) else {
                continue;
            };
            let task = tokio::spawn(watch(self.clone(), key.clone(), resolved.resource.clone()));
            watches.insert(key.clone(), (task.abort_handle(), Arc::new(resolved)));
            tracing::debug!(group = %key.group, kind = %key.kind, namespace = %key.namespace, "self-heal watch started");
        }
        self.shared.metrics.watches.set(watches.len() as i64);
    }

    /// A watch saw `id` as `live` (`None`: deleted).
    fn observe(
        &self,
        id: &ObjectRef,
        live: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
    ) {
        let seen = Instant::now();
        let heal = lock(&self.shared.index).observe(id, live, seen);
        if let Some(heal) = heal {
            tokio::spawn(self.clone().heal(heal, seen));
        }
    }

    async fn heal(self, heal: Heal, seen: Instant) {
        let shared = &self.shared;
        if heal.fight_started {
            shared.metrics.count("fought");
            let note = format!(
                "{} keeps drifting right after each heal: {}; healing it with backoff (next in {}s) \
                 instead of fighting. Stop the other actor, or remove the field from Git",
                heal.id,
                describe(&heal.check),
                heal.delay.as_secs()
            );
            tracing::warn!(sync = %heal.sync, object = %heal.id, delay = ?heal.delay, "drift fought");
            self.publish(&heal.sync, EventType::Warning, "DriftFought", &note)
                .await;
        }
        if !heal.delay.is_zero() {
            tokio::time::sleep(heal.delay).await;
        }
        let mut retry = RETRY;
        loop {
            if !self.sync_exists(&heal.sync) {
                self.forget(&heal.sync);
                return;
            }
            let Some(target) = lock(&shared.index).target(&heal.id) else {
                return;
            };
            let Some(writer) = lock(&shared.syncs)
                .get(&heal.sync)
                .map(|s| s.writer.clone())
            else {
                lock(&shared.index).heal_failed(&heal.id);
                return;
            };
            let result = {
                let _permit = shared.permits.acquire().await;
                self.apply(&writer, &heal.id, &target).await
            };
            match result {
                Ok(returned) => {
                    lock(&shared.index).healed(&heal.id, &returned, Instant::now());
                    let recreated = heal.check == Check::Deleted;
                    shared
                        .metrics
                        .count(if recreated { "recreated" } else { "healed" });
                    if heal.delay.is_zero() {
                        shared
                            .metrics
                            .duration
                            .observe(seen.elapsed().as_secs_f64());
                    }
                    let note = format!(
                        "{}: {}; re-applied from Git",
                        heal.id,
                        describe(&heal.check)
                    );
                    tracing::info!(sync = %heal.sync, object = %heal.id, took = ?seen.elapsed(), "{note}");
                    self.publish(&heal.sync, EventType::Normal, "Healed", &note)
                        .await;
                    return;
                }
                Err((Problem::Unreachable, message)) => {
                    tracing::warn!(sync = %heal.sync, object = %heal.id, error = %message, retry_in = ?retry,
                        "cannot heal yet");
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(MAX_RETRY);
                }
                Err((_, message)) => {
                    lock(&shared.index).heal_failed(&heal.id);
                    shared.metrics.count("failed");
                    let note = format!("cannot heal {}: {message}", heal.id);
                    tracing::warn!(sync = %heal.sync, object = %heal.id, error = %message, "heal failed");
                    self.publish(&heal.sync, EventType::Warning, "HealFailed", &note)
                        .await;
                    return;
                }
            }
        }
    }

    async fn apply(
        &self,
        writer: &Client,
        id: &ObjectRef,
        target: &Target,
    ) -> Result<Value, (Problem, String)> {
        let object: Value = serde_json::from_str(&target.desired)
            .map_err(|error| (Problem::Refused, error.to_string()))?;
        let apply = Apply {
            id: id.clone(),
            object,
            source: String::new(),
        };
        let resolved = lock(&self.shared.watches)
            .get(&WatchKey::of(id, self.shared.scope))
            .map(|(_, resolved)| resolved.clone())
            .ok_or_else(|| (Problem::UnknownKind, format!("no watch serves {}", id.kind)))?;
        apply_object(writer, &resolved, &apply)
            .await
            .map_err(|failure| (failure.problem, failure.message))
    }

    fn sync_exists(&self, key: &str) -> bool {
        let Some((namespace, name)) = key.split_once('/') else {
            return false;
        };
        let reference = kube::runtime::reflector::ObjectRef::<GitSync>::new(name).within(namespace);
        self.shared
            .store
            .get(&reference)
            .is_some_and(|sync| !sync.spec.suspend && sync.spec.self_heal)
    }

    async fn publish(&self, sync: &str, type_: EventType, reason: &str, note: &str) {
        let Some(reference) = lock(&self.shared.syncs)
            .get(sync)
            .map(|s| s.reference.clone())
        else {
            return;
        };
        let event = events::event(type_, reason, "Heal", note);
        self.shared.events.publish(&event, &reference).await;
    }
}

fn describe(check: &Check) -> String {
    match check {
        Check::Drifted(drift) => format!("drifted: {drift}"),
        Check::Deleted => "deleted".to_owned(),
        Check::InSync => "in sync".to_owned(),
    }
}

/// The key of a GitSync: `<namespace>/<name>`.
pub fn key_of(sync: &GitSync) -> String {
    format!(
        "{}/{}",
        sync.namespace().unwrap_or_default(),
        sync.name_any()
    )
}

/// Watches one kind's metadata in one namespace or all (see [`WatchKey`]) and reports each
/// change to the healer. After a (re)list, objects under self-heal that the list did not return
/// were deleted meanwhile.
async fn watch(healer: Healer, key: WatchKey, resource: ApiResource) {
    let client = healer.shared.client.clone();
    let api: Api<PartialObjectMeta<DynamicObject>> = if key.namespace.is_empty() {
        Api::all_with(client, &resource)
    } else {
        Api::namespaced_with(client, &key.namespace, &resource)
    };
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut listed: Option<HashSet<ObjectRef>> = None;
    while let Some(event) = events.next().await {
        let id_of = |meta: &PartialObjectMeta<DynamicObject>| ObjectRef {
            group: key.group.clone(),
            kind: key.kind.clone(),
            namespace: meta.namespace().unwrap_or_default(),
            name: meta.name_any(),
        };
        match event {
            Ok(watcher::Event::Init) => listed = Some(HashSet::new()),
            Ok(watcher::Event::InitApply(object)) => {
                let id = id_of(&object);
                healer.observe(&id, Some(object.meta()));
                if let Some(listed) = listed.as_mut() {
                    listed.insert(id);
                }
            }
            Ok(watcher::Event::InitDone) => {
                let listed = listed.take().unwrap_or_default();
                let owned = lock(&healer.shared.index).ids_of(&key);
                for id in owned.iter().filter(|id| !listed.contains(id)) {
                    healer.observe(id, None);
                }
            }
            Ok(watcher::Event::Apply(object)) => {
                healer.observe(&id_of(&object), Some(object.meta()))
            }
            Ok(watcher::Event::Delete(object)) => healer.observe(&id_of(&object), None),
            Err(error) => {
                tracing::warn!(group = %key.group, kind = %key.kind, namespace = %key.namespace, %error, "self-heal watch failed; retrying");
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
