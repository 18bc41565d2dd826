//! Health rules for workloads, Jobs, Pods, PVCs, Services and custom resources.
//!
//! The rules are kstatus's and Argo CD's, read off the live object alone: [`assess`] never fetches
//! anything. Where one object cannot tell the whole story — a Deployment is short of available
//! replicas, but why? — the daemon fetches the pods and [`explain_workload`] promotes what the
//! pods say, so a crash-looping rollout is Degraded within seconds instead of after the progress
//! deadline.
//!
//! [`HealthStatus`] is ordered by severity so the health of a set is its maximum:
//! `Healthy < Suspended < Unknown < Progressing < Missing < Degraded`.
//! - **Suspended** sits just above Healthy: a paused Deployment or suspended CronJob is a state
//!   someone chose, not a problem, but it is worth showing.
//! - **Unknown** (we could not tell, e.g. an object without apiVersion) is below Progressing: it
//!   must not hide a rollout that is under way, and must never trigger a rollback.
//! - **Missing** (an applied object is not in the cluster: deleted behind our back, or its apply
//!   failed) is worse than Progressing — it will not converge by waiting — but below Degraded,
//!   which is what the rollback decision keys on. [`assess`] never returns it; callers that look
//!   up an inventory entry and find nothing use [`Health::missing`].

mod batch;
mod conditions;
mod pods;
mod workloads;

#[cfg(test)]
mod tests;

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::object::{ObjectRef, group_of};

pub use workloads::explain_workload;

/// How an object is doing, from best to worst; `Ord` is severity.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum HealthStatus {
    Healthy,
    Suspended,
    Unknown,
    Progressing,
    Missing,
    Degraded,
}

impl HealthStatus {
    /// The most severe of `statuses`; `Healthy` for none.
    pub fn worst(statuses: impl IntoIterator<Item = Self>) -> Self {
        statuses.into_iter().max().unwrap_or(Self::Healthy)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "Healthy",
            Self::Suspended => "Suspended",
            Self::Unknown => "Unknown",
            Self::Progressing => "Progressing",
            Self::Missing => "Missing",
            Self::Degraded => "Degraded",
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status and the reason for it, in words a person can act on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    pub status: HealthStatus,
    pub message: String,
}

impl Health {
    pub fn new(status: HealthStatus, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
    pub fn healthy(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::Healthy, message)
    }
    pub fn suspended(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::Suspended, message)
    }
    pub fn unknown(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::Unknown, message)
    }
    pub fn progressing(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::Progressing, message)
    }
    pub fn degraded(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::Degraded, message)
    }
    /// For an applied object that is not in the cluster.
    pub fn missing() -> Self {
        Self::new(HealthStatus::Missing, "not found in the cluster")
    }
}

/// `Degraded: message`, or just the status when there is no message.
impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.status)
        } else {
            write!(f, "{}: {}", self.status, self.message)
        }
    }
}

/// The health of one live object, as the apiserver returns it.
pub fn assess(object: &Value) -> Health {
    let api_version = text(object, &["apiVersion"]).unwrap_or("");
    let Some(kind) = text(object, &["kind"]).filter(|kind| !kind.is_empty()) else {
        return Health::unknown("the object has no kind");
    };
    if object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
    {
        return Health::progressing("being deleted");
    }
    match (group_of(api_version), kind) {
        ("apps" | "extensions", "Deployment") => workloads::deployment(object),
        ("apps", "StatefulSet") => workloads::stateful_set(object),
        ("apps" | "extensions", "DaemonSet") => workloads::daemon_set(object),
        ("apps", "ReplicaSet") => workloads::replica_set(object),
        ("batch", "Job") => batch::job(object),
        ("batch", "CronJob") => batch::cron_job(object),
        ("", "Pod") => pods::assess_pod(object),
        ("", "PersistentVolumeClaim") => conditions::persistent_volume_claim(object),
        ("", "Service") => conditions::service(object),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            conditions::custom_resource_definition(object)
        }
        ("apiregistration.k8s.io", "APIService") => conditions::api_service(object),
        _ => conditions::generic(object),
    }
}

/// Kinds without a status: one that exists is healthy, so its health is decided from its
/// metadata alone (a deletion in progress). Reading only metadata keeps a Secret's data, and a
/// thousand ConfigMaps' contents, out of the health read.
pub fn decided_by_metadata(group: &str, kind: &str) -> bool {
    matches!(
        (group, kind),
        ("", "ConfigMap" | "Secret" | "ServiceAccount")
            | (
                "rbac.authorization.k8s.io",
                "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding"
            )
    )
}

/// How many of the worst parts [`aggregate`] names before summarizing the rest.
const NAMED_PARTS: usize = 3;

/// The health of a sync: its worst part, naming the objects in that state, e.g.
/// `Deployment shop/web: Degraded: pod web-7d9c-x: container web: CrashLoopBackOff (restarts: 3)`.
pub fn aggregate(parts: impl IntoIterator<Item = (ObjectRef, Health)>) -> Health {
    let parts: Vec<(ObjectRef, Health)> = parts.into_iter().collect();
    if parts.is_empty() {
        return Health::healthy("no objects");
    }
    let status = HealthStatus::worst(parts.iter().map(|(_, health)| health.status));
    if status == HealthStatus::Healthy {
        return all_healthy(parts.len());
    }
    let mut worst: Vec<&(ObjectRef, Health)> = parts
        .iter()
        .filter(|(_, health)| health.status == status)
        .collect();
    worst.sort_by(|a, b| a.0.cmp(&b.0));
    let mut message: Vec<String> = worst
        .iter()
        .take(NAMED_PARTS)
        .map(|(id, health)| describe(id, health))
        .collect();
    if worst.len() > NAMED_PARTS {
        message.push(format!("and {} more {status}", worst.len() - NAMED_PARTS));
    }
    Health::new(status, message.join("; "))
}

/// The health of `objects` objects that are all healthy, as [`aggregate`] words it.
pub fn all_healthy(objects: usize) -> Health {
    if objects == 0 {
        return Health::healthy("no objects");
    }
    let plural = if objects == 1 { "" } else { "s" };
    Health::healthy(format!("{objects} object{plural} healthy"))
}

/// `Deployment shop/web: Degraded: …`: one object's health for people.
pub fn describe(id: &ObjectRef, health: &Health) -> String {
    if id.namespace.is_empty() {
        format!("{} {}: {health}", id.kind, id.name)
    } else {
        format!("{} {}/{}: {health}", id.kind, id.namespace, id.name)
    }
}

/// The string at `path` below `value`.
fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(value, path)?.as_str()
}

/// The integer at `path` below `value`.
fn int(value: &Value, path: &[&str]) -> Option<i64> {
    at(value, path)?.as_i64()
}

fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |value, key| value.get(key))
}

/// `Progressing` while the controller has not yet seen the latest spec: every other status field
/// would describe the previous one. Objects without `metadata.generation` pass.
fn unobserved(object: &Value) -> Option<Health> {
    let generation = int(object, &["metadata", "generation"])?;
    let observed = int(object, &["status", "observedGeneration"]).unwrap_or(0);
    (observed < generation).then(|| {
        Health::progressing(format!(
            "waiting for the controller to observe generation {generation}"
        ))
    })
}
