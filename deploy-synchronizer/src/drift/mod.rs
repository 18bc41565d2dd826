//! Drift, decided from metadata alone.
//!
//! After every apply, Sluice records the field set its manager owns on the object (the
//! `sluice`/`Apply` entry of `metadata.managedFields`). Server-side apply keeps that entry exact:
//! when another actor changes one of those fields with an update (`kubectl edit`, `kubectl
//! scale`, a controller), ownership of the field moves to that actor and leaves Sluice's entry;
//! when someone forces an apply over it, likewise; a field removed from the object leaves every
//! entry. So "Sluice's entry is not what we recorded" is exactly "a field Git sets was changed",
//! and status updates, a controller's annotations, an HPA's `replicas` (a field Git does not set)
//! or a second manager applying the same value never count. That is why a metadata-only watch is
//! enough to see drift: no object bodies are held or compared.
//!
//! [`check`] is the pure decision; [`fight`] decides how fast to heal a field someone keeps
//! taking back.

pub mod fight;
mod paths;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta};
use serde_json::Value;
use sluice_shared::naming::FIELD_MANAGER;

pub use paths::leaf_paths;

/// The field set Sluice applied, as recorded after an apply: compact JSON of its `fieldsV1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedFields(String);

impl AppliedFields {
    /// Sluice's applied field set in `managed` (the `sluice` manager's `Apply` entry of the main
    /// resource, not a subresource); `None` when there is none.
    pub fn of(managed: &[ManagedFieldsEntry]) -> Option<Self> {
        sluice_entry(managed)
            .and_then(|entry| entry.fields_v1.as_ref())
            .map(|fields| Self(fields.0.to_string()))
    }

    /// From an object as the apiserver returned it (JSON).
    pub fn of_object(object: &Value) -> Option<Self> {
        let managed = object.pointer("/metadata/managedFields")?;
        let managed: Vec<ManagedFieldsEntry> = serde_json::from_value(managed.clone()).ok()?;
        Self::of(&managed)
    }

    fn value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }

    fn matches(&self, live: &Value) -> bool {
        // The apiserver writes fieldsV1 in a stable order, so the text nearly always decides;
        // comparing values covers any other order.
        serde_json::to_string(live).is_ok_and(|text| text == self.0) || *live == self.value()
    }
}

fn sluice_entry(managed: &[ManagedFieldsEntry]) -> Option<&ManagedFieldsEntry> {
    managed.iter().find(|entry| {
        entry.manager.as_deref() == Some(FIELD_MANAGER)
            && entry.operation.as_deref() == Some("Apply")
            && entry.subresource.as_deref().unwrap_or("").is_empty()
    })
}

/// What drift detection keeps of an apply's response: its resourceVersion and Sluice's own
/// managedFields entry. The rest (the whole object, other managers' entries) is dropped at once,
/// so a sync of a thousand objects does not hold a thousand objects until it registers them.
pub fn applied_record(object: Value) -> Value {
    let metadata = object.get("metadata");
    let resource_version = metadata
        .and_then(|m| m.get("resourceVersion"))
        .cloned()
        .unwrap_or(Value::Null);
    let ours: Vec<Value> = metadata
        .and_then(|m| m.get("managedFields"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|entry| entry.get("manager").and_then(Value::as_str) == Some(FIELD_MANAGER))
        .cloned()
        .collect();
    serde_json::json!({"metadata": {"resourceVersion": resource_version, "managedFields": ours}})
}

/// What a look at an object's metadata says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    InSync,
    Drifted(Drift),
    /// The object is gone.
    Deleted,
}

/// Which fields Git sets that are no longer as applied, and who holds them now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Drift {
    /// Field paths (`spec.replicas`, `spec.template.spec.containers[name=web].image`) Sluice
    /// applied and no longer owns.
    pub fields: Vec<String>,
    /// The managers that own any of them now (`kubectl-edit`, `kube-controller-manager`…);
    /// empty when the fields were removed.
    pub by: Vec<String>,
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const SHOWN: usize = 5;
        if self.fields.is_empty() {
            f.write_str("fields applied by sluice changed")?;
        } else {
            f.write_str(&self.fields[..self.fields.len().min(SHOWN)].join(", "))?;
            if self.fields.len() > SHOWN {
                write!(f, " and {} more", self.fields.len() - SHOWN)?;
            }
        }
        if self.by.is_empty() {
            f.write_str(" (removed)")
        } else {
            write!(f, " (changed by {})", self.by.join(", "))
        }
    }
}

/// Compares what Sluice recorded after its apply with the object's live metadata.
pub fn check(recorded: &AppliedFields, live: Option<&ObjectMeta>) -> Check {
    let Some(live) = live else {
        return Check::Deleted;
    };
    let managed = live.managed_fields.as_deref().unwrap_or_default();
    let ours = sluice_entry(managed).and_then(|entry| entry.fields_v1.as_ref());
    if ours.is_some_and(|fields| recorded.matches(&fields.0)) {
        return Check::InSync;
    }
    let applied = leaf_paths(&recorded.value());
    let kept = ours.map(|fields| leaf_paths(&fields.0)).unwrap_or_default();
    let lost: Vec<String> = applied.difference(&kept).cloned().collect();
    let mut by: Vec<String> = managed
        .iter()
        .filter(|entry| entry.manager.as_deref() != Some(FIELD_MANAGER))
        .filter(|entry| {
            entry.fields_v1.as_ref().is_some_and(|fields| {
                let theirs = leaf_paths(&fields.0);
                lost.iter().any(|path| theirs.contains(path))
            })
        })
        .filter_map(|entry| entry.manager.clone())
        .collect();
    by.sort();
    by.dedup();
    Check::Drifted(Drift {
        fields: lost.iter().map(|path| paths::display(path)).collect(),
        by,
    })
}

#[cfg(test)]
mod tests;
