//! Replicated workloads — Deployments, StatefulSets, DaemonSets, ReplicaSets — and the rollup of
//! their pods' health into theirs.

use serde_json::Value;

use super::conditions::condition;
use super::pods::assess_pod;
use super::{Health, HealthStatus, int, text, unobserved};

/// `spec.replicas`, which the apiserver defaults to 1.
fn desired_replicas(workload: &Value) -> i64 {
    int(workload, &["spec", "replicas"]).unwrap_or(1)
}

fn status_count(workload: &Value, field: &str) -> i64 {
    int(workload, &["status", field]).unwrap_or(0)
}

/// kstatus and Argo CD's Deployment rules, in this order:
/// 1. the controller has observed the latest generation, else Progressing;
/// 2. `spec.paused` → Suspended: someone stopped the rollout on purpose, and no deadline runs
///    while it is paused;
/// 3. `Progressing` condition with reason `ProgressDeadlineExceeded` → Degraded;
/// 4. updated, then total (old replicas gone), then available replicas reach `spec.replicas`
///    (default 1), else Progressing.
///
/// A `ReplicaFailure` condition (quota exceeded, a missing ServiceAccount) is added to the message
/// but stays Progressing: it is often transient, e.g. while stage two of a sync is still applying
/// the ServiceAccount. A crash-looping rollout is caught by [`explain_workload`], not here.
pub(super) fn deployment(deployment: &Value) -> Health {
    if let Some(health) = unobserved(deployment) {
        return health;
    }
    if deployment.pointer("/spec/paused").and_then(Value::as_bool) == Some(true) {
        return Health::suspended("rollout paused");
    }
    if let Some(progressing) = condition(deployment, "Progressing")
        && progressing.reason == "ProgressDeadlineExceeded"
    {
        return Health::degraded(format!(
            "rollout exceeded its progress deadline: {}",
            progressing.message
        ));
    }
    let replicas = desired_replicas(deployment);
    let updated = status_count(deployment, "updatedReplicas");
    let total = status_count(deployment, "replicas");
    let available = status_count(deployment, "availableReplicas");
    let waiting = if updated < replicas {
        format!("{updated} of {replicas} replicas updated")
    } else if total > updated {
        format!("{} old replicas pending termination", total - updated)
    } else if available < updated {
        format!("{available} of {updated} updated replicas available")
    } else {
        return Health::healthy(format!("{available} of {replicas} replicas available"));
    };
    match condition(deployment, "ReplicaFailure").filter(|c| c.is_true()) {
        Some(failure) => Health::progressing(format!("{waiting}; {}", failure.explain())),
        None => Health::progressing(waiting),
    }
}

/// Observed generation; for `RollingUpdate` (the default) the update revision has become the
/// current one — or, with a `partition`, the replicas above it are updated; then ready and
/// available replicas reach `spec.replicas`. `OnDelete` updates wait for someone to delete pods,
/// so they do not hold health back.
pub(super) fn stateful_set(set: &Value) -> Health {
    if let Some(health) = unobserved(set) {
        return health;
    }
    let replicas = desired_replicas(set);
    let updated = status_count(set, "updatedReplicas");
    if status_count(set, "replicas") > replicas {
        return Health::progressing(format!(
            "{} replicas pending termination",
            status_count(set, "replicas") - replicas
        ));
    }
    if text(set, &["spec", "updateStrategy", "type"]).unwrap_or("RollingUpdate") == "RollingUpdate"
    {
        let partition = int(
            set,
            &["spec", "updateStrategy", "rollingUpdate", "partition"],
        )
        .unwrap_or(0);
        if partition > 0 {
            let expected = (replicas - partition).max(0);
            if updated < expected {
                return Health::progressing(format!(
                    "{updated} of {expected} replicas above partition {partition} updated"
                ));
            }
        } else if text(set, &["status", "updateRevision"])
            != text(set, &["status", "currentRevision"])
        {
            return Health::progressing(format!(
                "rolling update: {updated} of {replicas} replicas updated"
            ));
        }
    }
    let ready = status_count(set, "readyReplicas");
    if ready < replicas {
        return Health::progressing(format!("{ready} of {replicas} replicas ready"));
    }
    // availableReplicas (minReadySeconds) is reported since Kubernetes 1.22; older: trust ready.
    let available = int(set, &["status", "availableReplicas"]).unwrap_or(ready);
    if available < replicas {
        return Health::progressing(format!("{available} of {replicas} replicas available"));
    }
    Health::healthy(format!("{ready} of {replicas} replicas ready"))
}

/// Observed generation; for `RollingUpdate` every scheduled pod is updated; every scheduled pod is
/// available.
pub(super) fn daemon_set(set: &Value) -> Health {
    if let Some(health) = unobserved(set) {
        return health;
    }
    let desired = status_count(set, "desiredNumberScheduled");
    let updated = status_count(set, "updatedNumberScheduled");
    let available = status_count(set, "numberAvailable");
    let rolling = text(set, &["spec", "updateStrategy", "type"]).unwrap_or("RollingUpdate")
        == "RollingUpdate";
    if rolling && updated < desired {
        return Health::progressing(format!("{updated} of {desired} pods updated"));
    }
    if available < desired {
        return Health::progressing(format!("{available} of {desired} pods available"));
    }
    Health::healthy(format!("{available} of {desired} pods available"))
}

/// A bare ReplicaSet: observed, and available replicas reach `spec.replicas`.
pub(super) fn replica_set(set: &Value) -> Health {
    if let Some(health) = unobserved(set) {
        return health;
    }
    let replicas = desired_replicas(set);
    let available = status_count(set, "availableReplicas");
    if available < replicas {
        let waiting = format!("{available} of {replicas} replicas available");
        return match condition(set, "ReplicaFailure").filter(|c| c.is_true()) {
            Some(failure) => Health::progressing(format!("{waiting}; {}", failure.explain())),
            None => Health::progressing(waiting),
        };
    }
    Health::healthy(format!("{available} of {replicas} replicas available"))
}

/// Rolls a workload's pods into its health. The daemon calls it with the pods of a workload that
/// is not Healthy (found by the workload's selector):
/// - it looks only at pods of the newest pod template — the newest `pod-template-hash` (or
///   `controller-revision-hash`) by creation time — so old pods that crash while being replaced
///   do not count against a rollout that fixes them;
/// - if one of those pods is Degraded (CrashLoopBackOff, ImagePullBackOff…) the workload is
///   Degraded now, with the pod's reason as the message: a rollout whose new pods crash-loop
///   will not recover by waiting for the progress deadline;
/// - if they are merely Progressing, their reason (e.g. unschedulable) is added to the message.
///
/// Healthy and Suspended workloads are returned unchanged.
pub fn explain_workload(workload: &Health, pods: &[Value]) -> Health {
    if matches!(
        workload.status,
        HealthStatus::Healthy | HealthStatus::Suspended
    ) {
        return workload.clone();
    }
    let newest = newest_template(pods);
    let mut assessed: Vec<(&str, Health)> = pods
        .iter()
        .filter(|pod| template_of(pod) == newest)
        .map(|pod| {
            (
                text(pod, &["metadata", "name"]).unwrap_or("?"),
                assess_pod(pod),
            )
        })
        .collect();
    assessed.sort_by(|a, b| b.1.status.cmp(&a.1.status).then(a.0.cmp(b.0)));
    let Some((name, worst)) = assessed.first() else {
        return workload.clone();
    };
    match worst.status {
        HealthStatus::Degraded => {
            let failing = assessed
                .iter()
                .filter(|(_, h)| h.status == HealthStatus::Degraded)
                .count();
            let mut message = format!("pod {name}: {}", worst.message);
            if failing > 1 {
                message.push_str(&format!("; {} more pods failing", failing - 1));
            }
            if workload.status == HealthStatus::Degraded && !workload.message.is_empty() {
                message.push_str(&format!("; {}", workload.message));
            }
            Health::degraded(message)
        }
        HealthStatus::Progressing if !worst.message.is_empty() => Health::new(
            workload.status,
            format!("{}; pod {name}: {}", workload.message, worst.message),
        ),
        _ => workload.clone(),
    }
}

/// The pod template a pod was made from: the hash label its controller sets.
fn template_of(pod: &Value) -> Option<&str> {
    let labels = pod.get("metadata")?.get("labels")?;
    labels
        .get("pod-template-hash")
        .or_else(|| labels.get("controller-revision-hash"))?
        .as_str()
}

/// The template of the most recently created pod: the new ReplicaSet's or revision's pods are
/// the ones being created during a rollout. RFC 3339 UTC timestamps, as the apiserver writes them,
/// sort as strings.
fn newest_template(pods: &[Value]) -> Option<&str> {
    pods.iter()
        .max_by_key(|pod| text(pod, &["metadata", "creationTimestamp"]).unwrap_or(""))
        .and_then(template_of)
}
