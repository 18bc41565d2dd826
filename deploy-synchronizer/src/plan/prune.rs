//! Prune selection: what the previous inventory holds and the render no longer does. Deleting is
//! the one thing that cannot be undone by the next sync, so every candidate must pass every check;
//! a candidate that fails one is kept and reported, never deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::object::ObjectRef;

use super::admit::is_namespace;
use super::inventory::Inventory;
use super::order::prune_key;
use super::{LiveFacts, Settings};

/// An object to delete, with the apiVersion it was applied with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deletion {
    pub id: ObjectRef,
    pub api_version: String,
}

/// An object that left the render but is not deleted, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    pub id: ObjectRef,
    pub api_version: String,
    pub reason: KeepReason,
}

/// Why a prune candidate stays in the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeepReason {
    /// The live object carries `sluice.dev/prune: disabled`.
    PruneDisabled,
    /// The live object's owner annotation is missing or names another sync: someone else took it
    /// over or it was recreated by hand. Sluice deletes only what it provably owns.
    NotOwned { owner: Option<String> },
    /// The Namespace the sync resource itself lives in: deleting it would delete the sync, and
    /// with it the record of everything else it applied. A person must delete it.
    HoldsThisSync,
    /// The object is in a namespace (or is cluster-scoped) that this sync may no longer write to.
    OutsideTargets,
    /// The sync has `prune: false`.
    PruningOff,
}

impl KeepReason {
    /// Whether the object stays in the next inventory. Objects kept only for now (pruning off,
    /// targets narrowed) stay, so they are pruned once that changes; objects that were handed
    /// over (opt-out annotation, another owner) leave it for good.
    pub fn stays_in_inventory(&self) -> bool {
        matches!(self, Self::OutsideTargets | Self::PruningOff)
    }
}

impl fmt::Display for KeepReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PruneDisabled => f.write_str("kept: prune disabled"),
            Self::NotOwned { owner: Some(owner) } => write!(f, "kept: owned by GitSync {owner}"),
            Self::NotOwned { owner: None } => f.write_str("kept: has no Sluice owner annotation"),
            Self::HoldsThisSync => f.write_str("kept: it holds this GitSync"),
            Self::OutsideTargets => f.write_str("kept: outside the namespaces this sync may write"),
            Self::PruningOff => f.write_str("kept: pruning is off"),
        }
    }
}

/// The outcome of prune selection, each list in prune order.
#[derive(Debug, Default)]
pub(super) struct Selection {
    pub delete: Vec<Deletion>,
    pub kept: Vec<Kept>,
    /// In the inventory, left the render, and already gone from the cluster.
    pub gone: Vec<ObjectRef>,
}

/// Chooses what to delete among `inventory - desired`.
pub(super) fn select(
    inventory: &Inventory,
    desired: &BTreeSet<&ObjectRef>,
    live: &BTreeMap<ObjectRef, LiveFacts>,
    settings: &Settings,
) -> Selection {
    let mut candidates: Vec<&ObjectRef> =
        inventory.ids().filter(|id| !desired.contains(id)).collect();
    candidates.sort_by(|a, b| prune_key(a).cmp(&prune_key(b)));

    let owner = settings.owner();
    let mut selection = Selection::default();
    for id in candidates {
        let Some(facts) = live.get(id) else {
            selection.gone.push(id.clone());
            continue;
        };
        let api_version = inventory.api_version(id).unwrap_or_default();
        let reason = if facts.owner.as_deref() != Some(owner.as_str()) {
            Some(KeepReason::NotOwned {
                owner: facts.owner.clone(),
            })
        } else if facts.prune_disabled {
            Some(KeepReason::PruneDisabled)
        } else if is_namespace(id) && id.name == settings.sync_namespace {
            Some(KeepReason::HoldsThisSync)
        } else if !settings.may_hold(id) {
            Some(KeepReason::OutsideTargets)
        } else if !settings.prune {
            Some(KeepReason::PruningOff)
        } else {
            None
        };
        match reason {
            Some(reason) => selection.kept.push(Kept {
                id: id.clone(),
                api_version,
                reason,
            }),
            None => selection.delete.push(Deletion {
                id: id.clone(),
                api_version,
            }),
        }
    }
    selection
}
