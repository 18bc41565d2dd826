//! Pod health: the container states a kubelet (or kwok) reports are where a broken rollout shows
//! first — long before a Deployment's progress deadline.

use serde_json::Value;

use super::conditions::condition;
use super::{Health, int, text};

/// Waiting reasons that will not resolve by waiting: the image cannot be pulled, the container
/// cannot be created, or it keeps exiting.
const FAILING_WAIT_REASONS: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// - Succeeded → Healthy; Failed → Degraded with the pod's or a container's reason.
/// - A container (init or main) waiting for a reason in `FAILING_WAIT_REASONS` → Degraded,
///   `container web: CrashLoopBackOff (restarts: 4)`.
/// - Running and Ready → Healthy; Running, not Ready → Progressing, naming the unready containers.
/// - Pending → Progressing, with why (unschedulable, or what a container waits for).
pub fn assess_pod(pod: &Value) -> Health {
    match text(pod, &["status", "phase"]) {
        Some("Succeeded") => return Health::healthy("completed"),
        Some("Failed") => return Health::degraded(failure(pod)),
        _ => {}
    }
    let failing: Vec<String> = containers(pod)
        .filter_map(|(role, status)| {
            let reason = text(status, &["state", "waiting", "reason"])?;
            FAILING_WAIT_REASONS.contains(&reason).then(|| {
                let name = text(status, &["name"]).unwrap_or("?");
                let restarts = int(status, &["restartCount"]).unwrap_or(0);
                format!("{role} {name}: {reason} (restarts: {restarts})")
            })
        })
        .collect();
    if !failing.is_empty() {
        return Health::degraded(failing.join("; "));
    }
    match text(pod, &["status", "phase"]) {
        Some("Running") => running(pod),
        Some("Pending") | None => Health::progressing(pending(pod)),
        Some(other) => Health::unknown(format!("phase {other}")),
    }
}

/// Every container status with its role for messages, init containers first.
fn containers(pod: &Value) -> impl Iterator<Item = (&'static str, &Value)> {
    let list = |field: &str| {
        pod.get("status")
            .and_then(|status| status.get(field))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
    };
    let init = list("initContainerStatuses")
        .iter()
        .map(|status| ("init container", status));
    let main = list("containerStatuses")
        .iter()
        .map(|status| ("container", status));
    init.chain(main)
}

fn running(pod: &Value) -> Health {
    if condition(pod, "Ready").is_some_and(|ready| ready.is_true()) {
        return Health::healthy("");
    }
    let unready: Vec<&str> = containers(pod)
        .filter(|(role, status)| {
            *role == "container" && status.get("ready").and_then(Value::as_bool) != Some(true)
        })
        .filter_map(|(_, status)| text(status, &["name"]))
        .collect();
    if unready.is_empty() {
        Health::progressing("not ready")
    } else {
        Health::progressing(format!("not ready: {}", unready.join(", ")))
    }
}

/// Why a Pending pod is pending, most specific first.
fn pending(pod: &Value) -> String {
    if let Some(scheduled) = condition(pod, "PodScheduled").filter(|c| c.status == "False") {
        return format!("not scheduled: {}", scheduled.explain());
    }
    let waiting = containers(pod).find_map(|(role, status)| {
        let reason = text(status, &["state", "waiting", "reason"])?;
        Some(format!(
            "{role} {}: {reason}",
            text(status, &["name"]).unwrap_or("?")
        ))
    });
    waiting.unwrap_or_else(|| "pending".to_owned())
}

/// Why a Failed pod failed: the pod's own reason (Evicted, DeadlineExceeded…), else the first
/// container that terminated unsuccessfully.
fn failure(pod: &Value) -> String {
    let reason = text(pod, &["status", "reason"]).unwrap_or("");
    let message = text(pod, &["status", "message"]).unwrap_or("");
    match (reason, message) {
        ("", "") => {}
        ("", message) | (message, "") => return format!("failed: {message}"),
        (reason, message) => return format!("failed: {reason}: {message}"),
    }
    let terminated = containers(pod).find_map(|(role, status)| {
        let terminated = status.get("state")?.get("terminated")?;
        let code = int(terminated, &["exitCode"]).unwrap_or(0);
        (code != 0).then(|| {
            let name = text(status, &["name"]).unwrap_or("?");
            let why = text(terminated, &["reason"]).unwrap_or("terminated");
            format!("{role} {name}: {why} (exit code {code})")
        })
    });
    terminated.map_or_else(|| "failed".to_owned(), |why| format!("failed: {why}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::tests::yaml;
    use super::super::{HealthStatus, assess};
    use super::*;

    fn pod(status: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-0", "namespace": "shop"},
               "status": status})
    }

    #[test]
    fn kwok_crash_loop_is_degraded_with_container_and_restarts() {
        let crashing = yaml(include_str!("fixtures/pod-crashloop.yaml"));
        assert_eq!(
            assess(&crashing),
            Health::degraded("container web: CrashLoopBackOff (restarts: 4)")
        );
    }

    #[test]
    fn failing_waits_of_every_container_are_named() {
        let p = pod(json!({"phase": "Pending",
            "initContainerStatuses": [{"name": "migrate", "restartCount": 0, "ready": false,
                "state": {"waiting": {"reason": "CreateContainerConfigError",
                                      "message": "secret \"db\" not found"}}}],
            "containerStatuses": [{"name": "web", "restartCount": 0, "ready": false,
                "state": {"waiting": {"reason": "ImagePullBackOff",
                                      "message": "Back-off pulling image \"shop/web:9.9\""}}}]}));
        assert_eq!(
            assess(&p),
            Health::degraded(
                "init container migrate: CreateContainerConfigError (restarts: 0); \
                 container web: ImagePullBackOff (restarts: 0)"
            )
        );
    }

    #[test]
    fn running_ready_succeeded_and_pending() {
        let ready = pod(json!({"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "web", "ready": true, "restartCount": 0,
                                   "state": {"running": {"startedAt": "2025-05-14T09:12:05Z"}}}]}));
        assert_eq!(assess(&ready), Health::healthy(""));

        let starting = pod(json!({"phase": "Running",
            "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
            "containerStatuses": [{"name": "web", "ready": false, "restartCount": 0,
                                   "state": {"running": {}}},
                                  {"name": "proxy", "ready": true, "restartCount": 0,
                                   "state": {"running": {}}}]}));
        assert_eq!(assess(&starting), Health::progressing("not ready: web"));

        assert_eq!(
            assess(&pod(json!({"phase": "Succeeded"}))),
            Health::healthy("completed")
        );

        let unschedulable = pod(
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled",
            "status": "False", "reason": "Unschedulable",
            "message": "0/2 nodes are available: 2 Insufficient memory."}]}),
        );
        assert_eq!(
            assess(&unschedulable),
            Health::progressing(
                "not scheduled: Unschedulable: 0/2 nodes are available: 2 Insufficient memory."
            )
        );
        assert_eq!(
            assess(&pod(json!({"phase": "Pending"}))),
            Health::progressing("pending")
        );
    }

    #[test]
    fn failed_pods_say_why() {
        let evicted = pod(json!({"phase": "Failed", "reason": "Evicted",
            "message": "The node was low on resource: memory."}));
        assert_eq!(
            assess(&evicted),
            Health::degraded("failed: Evicted: The node was low on resource: memory.")
        );

        let exited = pod(
            json!({"phase": "Failed", "containerStatuses": [{"name": "migrate",
            "restartCount": 0, "ready": false,
            "state": {"terminated": {"exitCode": 2, "reason": "Error"}}}]}),
        );
        assert_eq!(
            assess(&exited),
            Health::degraded("failed: container migrate: Error (exit code 2)")
        );
        assert_eq!(
            assess(&pod(json!({"phase": "Failed"}))).status,
            HealthStatus::Degraded
        );
    }
}
