//! The in-memory index self-heal decides with: every object a sync applied, what it applied
//! (the manifest, compact) and the field set it recorded after the apply. Fed by the watchers,
//! asked by the reconciler; pure, so it is unit-tested without an API server.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use crate::drift::fight::Fight;
use crate::drift::{AppliedFields, Check, check};
use crate::object::ObjectRef;
use crate::plan::{Record, Recorded};

/// How far one watch reaches (`--heal-watch-scope cluster|namespace`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum WatchScope {
    /// One watch per kind, in every namespace: the fewest watches, and it needs `list` and
    /// `watch` on the kind cluster-wide.
    #[default]
    Cluster,
    /// One watch per kind and namespace holding objects under self-heal (cluster-scoped kinds
    /// still one each): for a synchronizer whose RBAC is granted namespace by namespace.
    Namespace,
}

/// What one watch covers: a kind in one namespace, or in all of them (`namespace` empty).
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct WatchKey {
    pub group: String,
    pub kind: String,
    pub namespace: String,
}

impl WatchKey {
    /// The watch that sees `id` under `scope`.
    pub fn of(id: &ObjectRef, scope: WatchScope) -> Self {
        Self {
            group: id.group.clone(),
            kind: id.kind.clone(),
            namespace: match scope {
                WatchScope::Cluster => String::new(),
                WatchScope::Namespace => id.namespace.clone(),
            },
        }
    }

    /// Whether `id` is among what this watch lists.
    pub fn covers(&self, id: &ObjectRef) -> bool {
        id.group == self.group
            && id.kind == self.kind
            && (self.namespace.is_empty() || id.namespace == self.namespace)
    }
}

/// One object under self-heal.
#[derive(Clone, Debug)]
struct Owned {
    sync: String,
    api_version: String,
    /// The manifest as applied, compact JSON (a tenth of a `Value`'s memory).
    desired: Arc<str>,
    recorded: AppliedFields,
    /// The resourceVersion the apply returned: older events are stale.
    resource_version: Option<u64>,
    fight: Fight,
    /// A heal is scheduled or running.
    pending: bool,
}

/// A sync's objects after an apply: `(id, apiVersion, manifest applied, object returned)`.
pub struct Applied<'a> {
    pub id: ObjectRef,
    pub api_version: String,
    pub desired: &'a Value,
    pub returned: &'a Value,
}

/// A heal to carry out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heal {
    pub id: ObjectRef,
    pub sync: String,
    /// Drifted or deleted.
    pub check: Check,
    pub delay: std::time::Duration,
    /// Another actor keeps taking fields back; this heal is the first delayed one.
    pub fight_started: bool,
}

/// What a heal applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub sync: String,
    pub api_version: String,
    pub desired: Arc<str>,
}

#[derive(Default)]
struct SyncState {
    /// An apply of the sync is running: its own writes to these objects are not drift.
    holding: Holding,
    /// A heal failed: the next sync must apply in full (and report what fails).
    stale: bool,
    /// What the last registered apply was made for; `None` until one is registered.
    made: Option<Made>,
}

/// Which of a sync's objects an apply in progress writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Holding {
    /// No apply in progress.
    #[default]
    Nothing,
    /// Every object of the sync.
    Everything,
    /// Only these (the changes of a revision, and what it prunes): the others are still
    /// healed meanwhile.
    Only(BTreeSet<ObjectRef>),
}

impl Holding {
    fn holds(&self, id: &ObjectRef) -> bool {
        match self {
            Self::Nothing => false,
            Self::Everything => true,
            Self::Only(ids) => ids.contains(id),
        }
    }
}

/// What a registered apply was made for: the spec's generation and the cluster's kinds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Made {
    pub generation: Option<i64>,
    pub discovery: u64,
}

/// Every object under self-heal, by id.
#[derive(Default)]
pub struct Index {
    objects: HashMap<ObjectRef, Owned>,
    syncs: HashMap<String, SyncState>,
}

impl Index {
    /// An apply of `sync` starts, writing `objects`: those are not healed until
    /// [`Index::register`] or [`Index::release`].
    pub fn hold(&mut self, sync: &str, objects: Holding) {
        self.syncs.entry(sync.to_owned()).or_default().holding = objects;
    }

    /// The apply of `sync` wrote nothing (it was refused before any write): heal what was
    /// registered before, as before.
    pub fn release(&mut self, sync: &str) {
        if let Some(state) = self.syncs.get_mut(sync) {
            state.holding = Holding::Nothing;
        }
    }

    /// `sync` applied `objects` (made as `made` says): from now on, they and the objects in
    /// `unchanged` (registered before, not sent again) are what is healed for it, and nothing
    /// else. An object whose response carries no field set of Sluice's cannot be watched for
    /// drift and is left out (returned).
    pub fn register<'a>(
        &mut self,
        sync: &str,
        objects: impl IntoIterator<Item = Applied<'a>>,
        unchanged: &BTreeSet<ObjectRef>,
        made: Made,
    ) -> Vec<ObjectRef> {
        // A fight outlives a re-apply: the other actor does not stop because Git was applied.
        let mut fights: HashMap<ObjectRef, Fight> = HashMap::new();
        self.objects.retain(|id, owned| {
            if owned.sync != sync || unchanged.contains(id) {
                true
            } else {
                fights.insert(id.clone(), owned.fight);
                false
            }
        });
        let mut unwatchable = Vec::new();
        for applied in objects {
            let Some(recorded) = AppliedFields::of_object(applied.returned) else {
                unwatchable.push(applied.id);
                continue;
            };
            let fight = fights.remove(&applied.id).unwrap_or_default();
            self.objects.insert(
                applied.id,
                Owned {
                    sync: sync.to_owned(),
                    api_version: applied.api_version,
                    desired: Arc::from(applied.desired.to_string()),
                    recorded,
                    resource_version: resource_version(applied.returned),
                    fight,
                    pending: false,
                },
            );
        }
        // A heal that failed while only the changes were applied failed on an object that was
        // not re-applied: the next sync must still send everything.
        let stale = !unchanged.is_empty() && self.syncs.get(sync).is_some_and(|s| s.stale);
        self.syncs.insert(
            sync.to_owned(),
            SyncState {
                made: Some(made),
                stale,
                ..SyncState::default()
            },
        );
        unwatchable
    }

    /// The record of `sync`'s last registered apply, for [`crate::plan::to_send`]: `None` when
    /// there is none (never registered, or forgotten since).
    pub fn record(&self, sync: &str) -> Option<Record> {
        let state = self.syncs.get(sync)?;
        let made = state.made?;
        let objects = self
            .objects
            .iter()
            .filter(|(_, owned)| owned.sync == sync)
            .map(|(id, owned)| {
                let recorded = Recorded {
                    manifest: owned.desired.clone(),
                    in_sync: !owned.pending,
                };
                (id.clone(), recorded)
            })
            .collect();
        Some(Record {
            generation: made.generation,
            discovery: made.discovery,
            stale: state.stale,
            objects,
        })
    }

    /// Stops healing `sync` (suspended, self-heal off, deleted, or its objects unknown after a
    /// failed apply).
    pub fn forget(&mut self, sync: &str) {
        self.objects.retain(|_, owned| owned.sync != sync);
        self.syncs.remove(sync);
    }

    /// Whether self-heal has `sync` in hand: registered, not being applied, and no heal of it
    /// failed. Drift it sees is healed (at once, or with backoff against a fighting actor), so a
    /// re-apply at the interval would add nothing — and would fight on the backoff's behalf.
    pub fn in_sync(&self, sync: &str) -> bool {
        self.syncs
            .get(sync)
            .is_some_and(|state| state.holding == Holding::Nothing && !state.stale)
    }

    /// The watches `scope` needs for the objects under self-heal, with an apiVersion of each
    /// watch's kind.
    pub fn watches(&self, scope: WatchScope) -> BTreeSet<(WatchKey, String)> {
        let mut watches: HashMap<WatchKey, String> = HashMap::new();
        for (id, owned) in &self.objects {
            watches
                .entry(WatchKey::of(id, scope))
                .or_insert_with(|| owned.api_version.clone());
        }
        watches.into_iter().collect()
    }

    /// The objects under self-heal that `watch` lists.
    pub fn ids_of(&self, watch: &WatchKey) -> Vec<ObjectRef> {
        self.objects
            .keys()
            .filter(|id| watch.covers(id))
            .cloned()
            .collect()
    }

    /// A watcher saw `id` as `live` (`None`: deleted) at `now`. Returns the heal to schedule,
    /// if it drifted and no heal is already scheduled.
    pub fn observe(
        &mut self,
        id: &ObjectRef,
        live: Option<&ObjectMeta>,
        now: Instant,
    ) -> Option<Heal> {
        let owned = self.objects.get_mut(id)?;
        if self
            .syncs
            .get(&owned.sync)
            .is_none_or(|state| state.holding.holds(id))
            || owned.pending
        {
            return None;
        }
        if let (Some(meta), Some(applied)) = (live, owned.resource_version)
            && meta
                .resource_version
                .as_deref()
                .and_then(|rv| rv.parse::<u64>().ok())
                .is_some_and(|rv| rv < applied)
        {
            return None; // an event from before our own apply
        }
        let check = check(&owned.recorded, live);
        if check == Check::InSync {
            return None;
        }
        let pace = owned.fight.seen(now);
        owned.pending = true;
        Some(Heal {
            id: id.clone(),
            sync: owned.sync.clone(),
            check,
            delay: pace.delay,
            fight_started: pace.fight_started,
        })
    }

    /// What to apply for a scheduled heal of `id`; `None` (and the heal dropped) when the
    /// object is no longer under self-heal or its sync is being applied.
    pub fn target(&mut self, id: &ObjectRef) -> Option<Target> {
        let owned = self.objects.get_mut(id)?;
        if self
            .syncs
            .get(&owned.sync)
            .is_none_or(|state| state.holding.holds(id))
        {
            owned.pending = false;
            return None;
        }
        Some(Target {
            sync: owned.sync.clone(),
            api_version: owned.api_version.clone(),
            desired: owned.desired.clone(),
        })
    }

    /// The heal of `id` applied, and the apiserver returned `returned`.
    pub fn healed(&mut self, id: &ObjectRef, returned: &Value, now: Instant) {
        if let Some(owned) = self.objects.get_mut(id) {
            if let Some(recorded) = AppliedFields::of_object(returned) {
                owned.recorded = recorded;
            }
            owned.resource_version = resource_version(returned);
            owned.fight.healed(now);
            owned.pending = false;
        }
    }

    /// The heal of `id` failed: the next event tries again, and the sync's next interval
    /// applies in full.
    pub fn heal_failed(&mut self, id: &ObjectRef) {
        if let Some(owned) = self.objects.get_mut(id) {
            owned.pending = false;
            if let Some(state) = self.syncs.get_mut(&owned.sync) {
                state.stale = true;
            }
        }
    }

    /// How many objects are under self-heal.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

fn resource_version(object: &Value) -> Option<u64> {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|rv| rv.parse().ok())
}

#[cfg(test)]
mod tests;
