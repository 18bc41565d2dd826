//! `(desired, live) -> Plan`: apply stages, ordering and prune selection by inventory.
//!
//! Planning is pure and in two steps, because which live objects matter depends on where the
//! desired objects land:
//!
//! 1. [`prepare`] places every desired object — resolves its scope (discovery, or a CRD in the same
//!    render), defaults its namespace, checks this sync may write there, and adds the ownership
//!    marks. [`Prepared::ids`] then names the objects whose live state the daemon must read.
//! 2. [`Prepared::plan`] adds what the live cluster and the previous inventory say: ownership
//!    conflicts, the empty-render guard and prune selection.
//!
//! `plan` does both at once, for the tests. Any refusal refuses the whole render, with all reasons at once.
//!
//! **Namespaces** follow Argo CD's destination semantics rather than Flux's `targetNamespace`:
//! the target namespace (default: the sync's own) fills in only objects that name none; an object
//! that names a namespace keeps it, and must then be one the sync may write to — silently moving
//! objects Git places elsewhere would hide mistakes. A sync may write to its target namespace and
//! to `allowedNamespaces`, where `*` means any namespace; an empty list means only the target
//! namespace. A Namespace object counts as writing to the namespace it names, so a sync that may
//! write to `shop` may also create `shop` without `allowClusterScoped`.
//!
//! **Prune** deletes only objects in the previous inventory, gone from the render, still carrying
//! this sync's owner annotation, without `sluice.dev/prune: disabled`, and within the namespaces
//! the sync may write to; never the Namespace holding the sync resource itself. Everything else
//! is reported in [`Plan::kept`] with its [`KeepReason`].
//!
//! **Adoption**: a live object without an owner annotation (made by kubectl, or by a sync that was
//! deleted) is adopted — applied and marked as this sync's — and listed in [`Plan::adopted`]. Only
//! an annotation naming another sync is a conflict.

mod admit;
mod changes;
mod hooks;
mod inventory;
mod order;
mod prune;
mod refusal;
mod scope;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::object::{OWNER_ANNOTATION, ObjectRef, PRUNE_ANNOTATION, PRUNE_DISABLED};
use crate::resource::GitSyncSpec;

#[cfg(test)]
pub use changes::FullReason;
pub use changes::{Record, Recorded, Send, to_send};
pub use hooks::{Hook, Hooks};
pub use inventory::Inventory;
#[cfg(test)]
pub use order::kind_rank;
pub use order::{Stage, StageName};
#[cfg(test)]
pub use prune::KeepReason;
pub use prune::{Deletion, Kept};
pub use refusal::{PlanError, Refusal};
#[cfg(test)]
pub use scope::builtin_scope;
pub use scope::{Scope, ScopeLookup};

/// One object of the render.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    pub id: ObjectRef,
    pub object: Value,
    /// Where it was declared, `path/in/repo.yaml:line`, for messages.
    pub source: String,
}

impl Desired {
    /// A rendered object with its identity; `None` without apiVersion, kind or name.
    #[cfg(test)]
    pub fn new(object: Value, source: impl Into<String>) -> Option<Self> {
        Some(Self {
            id: ObjectRef::of(&object)?,
            object,
            source: source.into(),
        })
    }
}

/// What the plan needs to know of a live object. An object missing from the map is not in the
/// cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveFacts {
    /// The [`OWNER_ANNOTATION`] value: `<namespace>/<name>` of the sync that applied it.
    pub owner: Option<String>,
    /// Whether it carries [`PRUNE_ANNOTATION`]: [`PRUNE_DISABLED`].
    pub prune_disabled: bool,
}

impl LiveFacts {
    /// Reads the facts off a live object (or its metadata-only form).
    pub fn of(live: &Value) -> Self {
        let annotation = |key: &str| {
            live.get("metadata")?
                .get("annotations")?
                .get(key)?
                .as_str()
                .map(str::to_owned)
        };
        Self {
            owner: annotation(OWNER_ANNOTATION),
            prune_disabled: annotation(PRUNE_ANNOTATION).as_deref() == Some(PRUNE_DISABLED),
        }
    }
}

/// What a sync resource allows and asks for, from its spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub sync_namespace: String,
    pub sync_name: String,
    /// Delete what left the render.
    pub prune: bool,
    /// Let an empty render prune the whole inventory.
    pub allow_empty: bool,
    /// Namespace for namespaced objects that name none; `None`: the sync's own.
    pub target_namespace: Option<String>,
    /// Namespaces besides the target one that objects may be in; `*` allows any.
    pub allowed_namespaces: Vec<String>,
    pub allow_cluster_scoped: bool,
}

impl Settings {
    /// The defaults of a `GitSync`: prune on, everything else off, only its own namespace.
    pub fn new(sync_namespace: impl Into<String>, sync_name: impl Into<String>) -> Self {
        Self {
            sync_namespace: sync_namespace.into(),
            sync_name: sync_name.into(),
            prune: true,
            allow_empty: false,
            target_namespace: None,
            allowed_namespaces: Vec::new(),
            allow_cluster_scoped: false,
        }
    }

    pub fn from_spec(sync_namespace: &str, sync_name: &str, spec: &GitSyncSpec) -> Self {
        Self {
            prune: spec.prune,
            allow_empty: spec.allow_empty,
            target_namespace: spec.target_namespace.clone().filter(|ns| !ns.is_empty()),
            allowed_namespaces: spec.allowed_namespaces.clone(),
            allow_cluster_scoped: spec.allow_cluster_scoped,
            ..Self::new(sync_namespace, sync_name)
        }
    }

    /// This sync as [`OWNER_ANNOTATION`] names it: `<namespace>/<name>`.
    pub fn owner(&self) -> String {
        format!("{}/{}", self.sync_namespace, self.sync_name)
    }

    pub fn default_namespace(&self) -> &str {
        self.target_namespace
            .as_deref()
            .unwrap_or(&self.sync_namespace)
    }

    pub fn may_write(&self, namespace: &str) -> bool {
        namespace == self.default_namespace()
            || self
                .allowed_namespaces
                .iter()
                .any(|allowed| allowed == "*" || allowed == namespace)
    }

    /// Whether this sync may apply or delete `id` (with its namespace already resolved).
    pub fn may_hold(&self, id: &ObjectRef) -> bool {
        if !id.is_cluster_scoped() {
            self.may_write(&id.namespace)
        } else {
            self.allow_cluster_scoped || (admit::is_namespace(id) && self.may_write(&id.name))
        }
    }

    /// The namespaces this sync may write to, for messages.
    fn writable_namespaces(&self) -> Vec<String> {
        let target = self.default_namespace();
        let others = self
            .allowed_namespaces
            .iter()
            .filter(|ns| *ns != target)
            .cloned();
        std::iter::once(target.to_owned()).chain(others).collect()
    }
}

/// An object to apply, exactly as the applier sends it: namespace set, ownership marked.
#[derive(Clone, Debug, PartialEq)]
pub struct Apply {
    pub id: ObjectRef,
    pub object: Value,
    pub source: String,
}

impl Apply {
    pub fn api_version(&self) -> &str {
        self.object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

/// What to do: run the pre hooks, apply the stages in order, delete `prune` in order, and run
/// the post hooks once the rest is Healthy.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The sync, `<namespace>/<name>`.
    pub sync: String,
    pub stages: Vec<Stage>,
    /// Helm hooks, apart from the stages and the inventory (see [`hooks`]).
    pub hooks: Hooks,
    /// In prune order: reverse kind order, so workloads go before their Namespace or CRD.
    pub prune: Vec<Deletion>,
    /// Prune candidates that stay, with the reason (for events and status).
    pub kept: Vec<Kept>,
    /// Prune candidates already absent from the cluster.
    pub gone: Vec<ObjectRef>,
    /// Live objects without an owner that this plan takes over.
    pub adopted: Vec<ObjectRef>,
}

impl Plan {
    /// Every object to apply, stage by stage.
    pub fn applies(&self) -> impl Iterator<Item = &Apply> {
        self.stages.iter().flat_map(|stage| &stage.objects)
    }

    /// The inventory to record once the plan is carried out: what it applies, plus what it keeps
    /// only for now ([`KeepReason::stays_in_inventory`]). A deletion that fails should be added
    /// back by the caller, so the next sync retries it.
    pub fn next_inventory(&self) -> Inventory {
        let mut inventory = Inventory::new();
        for apply in self.applies() {
            inventory.insert(apply.id.clone(), apply.api_version());
        }
        for kept in self
            .kept
            .iter()
            .filter(|kept| kept.reason.stays_in_inventory())
        {
            inventory.insert(kept.id.clone(), &kept.api_version);
        }
        inventory
    }
}

/// The render placed, before the live cluster is consulted.
#[derive(Clone, Debug)]
pub struct Prepared {
    settings: Settings,
    rendered: usize,
    applies: Vec<Apply>,
    hooks: Vec<Hook>,
    refusals: Vec<Refusal>,
}

/// Step one: place every desired object (see the module docs).
pub fn prepare(desired: Vec<Desired>, scopes: &dyn ScopeLookup, settings: &Settings) -> Prepared {
    let resolver = scope::Resolver {
        cluster: scopes,
        declared: scope::declared_by_crds(desired.iter().map(|d| &d.object)),
    };
    let rendered = desired.len();
    let mut refusals = Vec::new();
    let mut applies: Vec<Apply> = Vec::with_capacity(rendered);
    let mut hooks = Vec::new();
    let mut seen: BTreeMap<ObjectRef, String> = BTreeMap::new();
    for object in desired {
        let role = hooks::role(&object.object);
        if let hooks::Role::NotRun(_) = role {
            continue;
        }
        match admit::place(object, &resolver, settings) {
            Ok(apply) => match seen.get(&apply.id) {
                Some(first) => refusals.push(Refusal::Duplicate {
                    id: apply.id,
                    first: first.clone(),
                    second: apply.source,
                }),
                None => {
                    seen.insert(apply.id.clone(), apply.source.clone());
                    match role {
                        hooks::Role::Hook {
                            phase,
                            weight,
                            delete,
                        } => hooks.push(Hook {
                            phase,
                            weight,
                            delete,
                            apply,
                        }),
                        _ => applies.push(apply),
                    }
                }
            },
            Err(refusal) => refusals.push(*refusal),
        }
    }
    Prepared {
        settings: settings.clone(),
        rendered,
        applies,
        hooks,
        refusals,
    }
}

impl Prepared {
    /// The placed objects whose live facts [`Prepared::plan`] needs (with the inventory's).
    pub fn ids(&self) -> impl Iterator<Item = &ObjectRef> {
        self.applies
            .iter()
            .map(|apply| &apply.id)
            .chain(self.hooks.iter().map(|hook| &hook.apply.id))
    }

    /// The live facts [`Prepared::plan`] needs, split into those self-heal's `record` vouches
    /// for and the ids left to read (the rest of [`Prepared::ids`], and the inventory's).
    ///
    /// An object the record holds as applied by this sync, whose watch sees it as applied (no
    /// drift, no heal pending, no failed heal since), carries this sync's owner mark: Sluice
    /// applied it and owns that field, so another writer taking it over is drift the watch
    /// would have seen. Its facts are known without a read. Objects leaving the render are
    /// always read: whether one may be pruned is decided on what the cluster holds now.
    pub fn known_facts(
        &self,
        inventory: &Inventory,
        record: Option<&Record>,
    ) -> (BTreeMap<ObjectRef, LiveFacts>, Vec<ObjectRef>) {
        let vouched = |id: &ObjectRef| {
            record.is_some_and(|r| !r.stale && r.objects.get(id).is_some_and(|o| o.in_sync))
        };
        let owner = self.settings.owner();
        let mut known = BTreeMap::new();
        let mut read = Vec::new();
        for id in self.ids() {
            if vouched(id) {
                let facts = LiveFacts {
                    owner: Some(owner.clone()),
                    prune_disabled: false,
                };
                known.insert(id.clone(), facts);
            } else {
                read.push(id.clone());
            }
        }
        let desired: BTreeSet<&ObjectRef> = self.ids().collect();
        read.extend(inventory.ids().filter(|id| !desired.contains(id)).cloned());
        (known, read)
    }

    /// Step two: conflicts, the empty-render guard and prune. `live` holds the facts of the
    /// objects in [`Prepared::ids`] and in `inventory` that exist.
    pub fn plan(
        self,
        inventory: &Inventory,
        live: &BTreeMap<ObjectRef, LiveFacts>,
    ) -> Result<Plan, PlanError> {
        let Self {
            settings,
            rendered,
            applies,
            hooks,
            mut refusals,
        } = self;
        let sync = settings.owner();
        if rendered == 0 && !inventory.is_empty() && !settings.allow_empty {
            // Guarded whether or not prune is on: an empty render is nearly always a wrong path
            // or a bad merge, and recording an empty inventory would forget what to prune later.
            refusals.insert(
                0,
                Refusal::EmptyRender {
                    sync: sync.clone(),
                    inventory: inventory.len(),
                },
            );
        }
        let mut adopted = Vec::new();
        for apply in applies.iter().chain(hooks.iter().map(|hook| &hook.apply)) {
            match live.get(&apply.id).map(|facts| facts.owner.as_deref()) {
                Some(Some(owner)) if owner != sync => refusals.push(Refusal::OwnedByOther {
                    id: apply.id.clone(),
                    origin: apply.source.clone(),
                    owner: owner.to_owned(),
                    sync: sync.clone(),
                }),
                Some(None) => adopted.push(apply.id.clone()),
                _ => {}
            }
        }
        if !refusals.is_empty() {
            return Err(PlanError::Refused { sync, refusals });
        }
        // A hook is never pruned, even when it was an ordinary object of an earlier render.
        let desired: BTreeSet<&ObjectRef> = applies
            .iter()
            .map(|apply| &apply.id)
            .chain(hooks.iter().map(|hook| &hook.apply.id))
            .collect();
        let selection = prune::select(inventory, &desired, live, &settings);
        adopted.sort_by(|a, b| order::apply_key(a).cmp(&order::apply_key(b)));
        Ok(Plan {
            sync,
            stages: order::into_stages(applies),
            hooks: Hooks::from_hooks(hooks),
            prune: selection.delete,
            kept: selection.kept,
            gone: selection.gone,
            adopted,
        })
    }
}

/// Both steps at once, for callers that already have every live fact at hand (the tests).
#[cfg(test)]
pub fn plan(
    desired: Vec<Desired>,
    inventory: &Inventory,
    live: &BTreeMap<ObjectRef, LiveFacts>,
    scopes: &dyn ScopeLookup,
    settings: &Settings,
) -> Result<Plan, PlanError> {
    prepare(desired, scopes, settings).plan(inventory, live)
}
