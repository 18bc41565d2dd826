//! `(plan, record of the last apply) -> what to send`: a sync costs what its change costs.
//!
//! A new revision is rendered and planned whole (prune is by inventory, and every placement and
//! ownership check holds for the whole render), but only the objects that differ from what was
//! applied are sent: those whose manifest changed, new ones, adopted ones, and those self-heal
//! saw drift on and has not healed yet. An unchanged object sent again would be a dry-run and an
//! apply that change nothing, a thousand of them for a one-line commit.
//!
//! What was applied is known from the [`Record`] self-heal keeps of each sync's last apply: the
//! manifest as applied and whether the watches see the object as applied. Without a record that
//! can be trusted, everything is sent ([`FullReason`]): after a restart (a hand edit made while
//! the daemon was down is only found by applying), when self-heal is off (nothing watches the
//! objects), when the spec changed since (the same manifests may now be applied differently),
//! when the cluster's kinds changed (a CRD's new version, say), or when a heal failed.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use super::Plan;
use crate::object::ObjectRef;

/// What the last successful apply of a sync left on record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// The GitSync generation (spec) the apply was made for.
    pub generation: Option<i64>,
    /// A fingerprint of the cluster's kinds after the apply.
    pub discovery: u64,
    /// A heal failed since: what the watches say can no longer be trusted.
    pub stale: bool,
    pub objects: HashMap<ObjectRef, Recorded>,
}

/// One object as the record holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// The manifest as applied, compact JSON (as `serde_json::Value::to_string` writes it).
    pub manifest: Arc<str>,
    /// The watches see the object as applied: no drift seen, no heal pending.
    pub in_sync: bool,
}

/// Why everything is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FullReason {
    /// No record of this sync: first sync, restart, self-heal off, or the last apply failed.
    NoRecord,
    /// The spec changed since the record was made.
    SpecChanged,
    /// The cluster's kinds changed since the record was made.
    DiscoveryChanged,
    /// A heal failed since the record was made.
    HealFailed,
}

impl FullReason {
    /// The `reason` label of the apply metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::NoRecord => "no_record",
            Self::SpecChanged => "spec_changed",
            Self::DiscoveryChanged => "discovery_changed",
            Self::HealFailed => "heal_failed",
        }
    }
}

impl fmt::Display for FullReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoRecord => "no record of what was applied (first sync, restart, self-heal off, or a failed apply)",
            Self::SpecChanged => "the GitSync's spec changed",
            Self::DiscoveryChanged => "the cluster's kinds changed",
            Self::HealFailed => "a heal failed",
        })
    }
}

/// What of a plan to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Send {
    /// Every object of the plan.
    All(FullReason),
    /// Only `objects`; `unchanged` others are as the record says, and stay as they are.
    Changes {
        objects: BTreeSet<ObjectRef>,
        unchanged: usize,
    },
}

/// What of `plan` to send, given the `record` of the last apply, the sync's `generation` now and
/// the `discovery` fingerprint the plan was made with (see the module docs).
pub fn to_send(
    plan: &Plan,
    record: Option<&Record>,
    generation: Option<i64>,
    discovery: u64,
) -> Send {
    let Some(record) = record else {
        return Send::All(FullReason::NoRecord);
    };
    if record.stale {
        return Send::All(FullReason::HealFailed);
    }
    if record.generation != generation {
        return Send::All(FullReason::SpecChanged);
    }
    if record.discovery != discovery {
        return Send::All(FullReason::DiscoveryChanged);
    }
    let adopted: BTreeSet<&ObjectRef> = plan.adopted.iter().collect();
    let mut objects = BTreeSet::new();
    let mut unchanged = 0;
    for apply in plan.applies() {
        let same = !adopted.contains(&apply.id)
            && record.objects.get(&apply.id).is_some_and(|recorded| {
                recorded.in_sync && *recorded.manifest == *apply.object.to_string()
            });
        if same {
            unchanged += 1;
        } else {
            objects.insert(apply.id.clone());
        }
    }
    Send::Changes { objects, unchanged }
}

impl Plan {
    /// What carrying this plan out writes: the objects it applies and those it prunes (a
    /// deletion of ours is not drift for self-heal to undo).
    pub fn writes(&self) -> BTreeSet<ObjectRef> {
        self.applies()
            .map(|apply| &apply.id)
            .chain(self.prune.iter().map(|deletion| &deletion.id))
            .cloned()
            .collect()
    }

    /// The objects of this plan not in `sent`: applied before, and left as they are.
    pub fn unchanged(&self, sent: &BTreeSet<ObjectRef>) -> BTreeSet<ObjectRef> {
        self.applies()
            .map(|apply| &apply.id)
            .filter(|id| !sent.contains(id))
            .cloned()
            .collect()
    }

    /// This plan with only the objects in `ids` to apply (stages and the CRDs to await kept in
    /// order; stages left empty dropped). Prune is kept whole.
    pub fn only(&self, ids: &BTreeSet<ObjectRef>) -> Plan {
        let stages = self
            .stages
            .iter()
            .filter_map(|stage| {
                let objects: Vec<_> = stage
                    .objects
                    .iter()
                    .filter(|apply| ids.contains(&apply.id))
                    .cloned()
                    .collect();
                (!objects.is_empty()).then(|| super::Stage {
                    name: stage.name,
                    await_established: stage
                        .await_established
                        .iter()
                        .filter(|crd| ids.contains(crd))
                        .cloned()
                        .collect(),
                    objects,
                })
            })
            .collect();
        Plan {
            sync: self.sync.clone(),
            stages,
            hooks: self.hooks.clone(),
            prune: self.prune.clone(),
            kept: self.kept.clone(),
            gone: self.gone.clone(),
            adopted: self.adopted.clone(),
        }
    }
}
