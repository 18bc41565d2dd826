//! Workload, rollup and aggregate tests, on objects as a real apiserver (and kwok) returns them.

use serde_json::{Value, json};

use super::*;

/// A YAML fixture as the JSON value the daemon would get from the apiserver.
pub(super) fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("fixture is valid YAML")
}

fn fixture_items(text: &str) -> Vec<Value> {
    yaml(text)["items"].as_array().expect("a List").clone()
}

const ROLLED_OUT: &str = include_str!("fixtures/deployment-rolled-out.yaml");
const MID_ROLLOUT: &str = include_str!("fixtures/deployment-mid-rollout.yaml");
const DEADLINE: &str = include_str!("fixtures/deployment-progress-deadline.yaml");
const ROLLOUT_PODS: &str = include_str!("fixtures/pods-crashloop-rollout.yaml");
const STATEFUL_ROLLING: &str = include_str!("fixtures/statefulset-rolling.yaml");

fn web() -> ObjectRef {
    ObjectRef {
        group: "apps".into(),
        kind: "Deployment".into(),
        namespace: "shop".into(),
        name: "web".into(),
    }
}

#[test]
fn severity_order() {
    use HealthStatus::*;
    assert!(Healthy < Suspended && Suspended < Unknown && Unknown < Progressing);
    assert!(Progressing < Missing && Missing < Degraded);
    assert_eq!(
        HealthStatus::worst([Healthy, Degraded, Progressing]),
        Degraded
    );
    assert_eq!(HealthStatus::worst([]), Healthy);
}

#[test]
fn rolled_out_deployment_is_healthy() {
    assert_eq!(
        assess(&yaml(ROLLED_OUT)),
        Health::healthy("3 of 3 replicas available")
    );
}

#[test]
fn deployment_mid_rollout_is_progressing() {
    assert_eq!(
        assess(&yaml(MID_ROLLOUT)),
        Health::progressing("1 of 3 replicas updated")
    );
}

#[test]
fn deployment_past_its_progress_deadline_is_degraded() {
    let health = assess(&yaml(DEADLINE));
    assert_eq!(health.status, HealthStatus::Degraded);
    assert_eq!(
        health.message,
        r#"rollout exceeded its progress deadline: ReplicaSet "web-84b7f6c5d9" has timed out progressing."#
    );
}

#[test]
fn deployment_rules_in_order() {
    let mut d = yaml(ROLLED_OUT);
    // A new spec the controller has not seen yet: the status describes the old one.
    d["metadata"]["generation"] = 2.into();
    assert_eq!(
        assess(&d),
        Health::progressing("waiting for the controller to observe generation 2")
    );
    d["status"]["observedGeneration"] = 2.into();

    d["spec"]["paused"] = true.into();
    assert_eq!(assess(&d), Health::suspended("rollout paused"));
    d["spec"]["paused"] = false.into();

    d["status"]["replicas"] = 4.into();
    assert_eq!(
        assess(&d),
        Health::progressing("1 old replicas pending termination")
    );
    d["status"]["replicas"] = 3.into();

    d["status"]["availableReplicas"] = 2.into();
    d["status"]["conditions"]
        .as_array_mut()
        .unwrap()
        .push(json!({
        "type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
        "message": "pods \"web-5f8d7c9b4-abcde\" is forbidden: exceeded quota: compute"}));
    assert_eq!(
        assess(&d),
        Health::progressing(
            "2 of 3 updated replicas available; FailedCreate: pods \"web-5f8d7c9b4-abcde\" is forbidden: exceeded quota: compute"
        )
    );
}

#[test]
fn deployment_replicas_default_to_one_and_zero_is_fine() {
    let mut d = yaml(ROLLED_OUT);
    d["spec"].as_object_mut().unwrap().remove("replicas");
    d["status"] = json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0});
    assert_eq!(
        assess(&d),
        Health::progressing("0 of 1 updated replicas available")
    );
    d["spec"]["replicas"] = 0.into();
    d["status"] = json!({"observedGeneration": 1});
    assert_eq!(assess(&d).status, HealthStatus::Healthy);
    // Just created: no status at all yet.
    d.as_object_mut().unwrap().remove("status");
    assert_eq!(assess(&d).status, HealthStatus::Progressing);
}

#[test]
fn crash_looping_new_pods_make_a_rollout_degraded_at_once() {
    let deployment = assess(&yaml(MID_ROLLOUT));
    let health = explain_workload(&deployment, &fixture_items(ROLLOUT_PODS));
    assert_eq!(
        health,
        Health::degraded("pod web-84b7f6c5d9-x2kq7: container web: CrashLoopBackOff (restarts: 3)")
    );
    assert_eq!(
        describe(&web(), &health),
        "Deployment shop/web: Degraded: pod web-84b7f6c5d9-x2kq7: container web: CrashLoopBackOff (restarts: 3)"
    );
}

#[test]
fn explaining_a_deadline_keeps_the_deadline_in_the_message() {
    let deployment = assess(&yaml(DEADLINE));
    let health = explain_workload(&deployment, &fixture_items(ROLLOUT_PODS));
    assert_eq!(health.status, HealthStatus::Degraded);
    assert!(health.message.starts_with("pod web-84b7f6c5d9-x2kq7: container web: CrashLoopBackOff (restarts: 3); rollout exceeded"), "{}", health.message);
}

#[test]
fn old_pods_crashing_during_a_fixing_rollout_do_not_count() {
    let mut pods = fixture_items(ROLLOUT_PODS);
    // The new pod is still being created; only an old one crash-loops.
    pods[2]["status"] = json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}],
        "containerStatuses": [{"name": "web", "ready": false, "restartCount": 0,
                               "state": {"waiting": {"reason": "ContainerCreating"}}}]});
    let deployment = assess(&yaml(MID_ROLLOUT));
    let health = explain_workload(&deployment, &pods);
    assert_eq!(
        health,
        Health::progressing(
            "1 of 3 replicas updated; pod web-84b7f6c5d9-x2kq7: container web: ContainerCreating"
        )
    );
}

#[test]
fn several_failing_pods_are_counted() {
    let mut pods = fixture_items(ROLLOUT_PODS);
    let mut second = pods[2].clone();
    second["metadata"]["name"] = "web-84b7f6c5d9-zz9tr".into();
    pods.push(second);
    let health = explain_workload(&assess(&yaml(MID_ROLLOUT)), &pods);
    assert_eq!(
        health.message,
        "pod web-84b7f6c5d9-x2kq7: container web: CrashLoopBackOff (restarts: 3); 1 more pods failing"
    );
}

#[test]
fn healthy_and_suspended_workloads_are_not_explained() {
    let pods = fixture_items(ROLLOUT_PODS);
    let healthy = assess(&yaml(ROLLED_OUT));
    assert_eq!(explain_workload(&healthy, &pods), healthy);
    let paused = Health::suspended("rollout paused");
    assert_eq!(explain_workload(&paused, &pods), paused);
    let progressing = assess(&yaml(MID_ROLLOUT));
    assert_eq!(explain_workload(&progressing, &[]), progressing);
}

#[test]
fn stateful_set_rolling_update() {
    let mut set = yaml(STATEFUL_ROLLING);
    assert_eq!(
        assess(&set),
        Health::progressing("rolling update: 1 of 3 replicas updated")
    );

    set["status"] = json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 3, "availableReplicas": 3,
        "updatedReplicas": 3, "currentRevision": "db-7f4b9c6d8", "updateRevision": "db-7f4b9c6d8"});
    assert_eq!(assess(&set), Health::healthy("3 of 3 replicas ready"));

    set["status"]["availableReplicas"] = 2.into(); // minReadySeconds not yet over for one
    assert_eq!(
        assess(&set),
        Health::progressing("2 of 3 replicas available")
    );

    // A canary partition: only the replicas at or above it are to be updated.
    set["status"] = json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 3, "availableReplicas": 3,
        "updatedReplicas": 1, "currentRevision": "db-6c9f8d7b5", "updateRevision": "db-7f4b9c6d8"});
    set["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = 2.into();
    assert_eq!(assess(&set).status, HealthStatus::Healthy);

    // OnDelete: an update waits for pods to be deleted, which is not a health problem.
    set["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
    set["status"]["updatedReplicas"] = 0.into();
    assert_eq!(assess(&set).status, HealthStatus::Healthy);
}

#[test]
fn daemon_set_counts_scheduled_pods() {
    let mut set = json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "kube-system", "generation": 4},
        "spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}},
        "status": {"observedGeneration": 4, "currentNumberScheduled": 2, "desiredNumberScheduled": 2,
                   "numberAvailable": 2, "numberMisscheduled": 0, "numberReady": 2,
                   "updatedNumberScheduled": 1}});
    assert_eq!(assess(&set), Health::progressing("1 of 2 pods updated"));
    set["status"]["updatedNumberScheduled"] = 2.into();
    set["status"]["numberAvailable"] = 1.into();
    assert_eq!(assess(&set), Health::progressing("1 of 2 pods available"));
    set["status"]["numberAvailable"] = 2.into();
    assert_eq!(assess(&set), Health::healthy("2 of 2 pods available"));
}

#[test]
fn replica_set_counts_available_replicas() {
    let set = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-5f8d7c9b4", "generation": 1},
        "spec": {"replicas": 2}, "status": {"observedGeneration": 1, "replicas": 2, "availableReplicas": 1}});
    assert_eq!(
        assess(&set),
        Health::progressing("1 of 2 replicas available")
    );
}

#[test]
fn objects_being_deleted_or_without_kind() {
    let mut d = yaml(ROLLED_OUT);
    d["metadata"]["deletionTimestamp"] = "2025-05-14T11:00:00Z".into();
    assert_eq!(assess(&d), Health::progressing("being deleted"));
    assert_eq!(
        assess(&json!({"metadata": {"name": "x"}})).status,
        HealthStatus::Unknown
    );
}

#[test]
fn aggregate_is_the_worst_part_naming_the_worst_objects() {
    let part = |name: &str, health: Health| {
        (
            ObjectRef {
                name: name.into(),
                ..web()
            },
            health,
        )
    };
    let crashing =
        Health::degraded("pod web-7d9c-x: container web: CrashLoopBackOff (restarts: 3)");
    let health = aggregate([
        part("api", Health::progressing("1 of 3 replicas updated")),
        part("web", crashing),
        part("db", Health::healthy("")),
    ]);
    assert_eq!(
        health,
        Health::degraded(
            "Deployment shop/web: Degraded: pod web-7d9c-x: container web: CrashLoopBackOff (restarts: 3)"
        )
    );

    let many = aggregate((0..5).map(|n| part(&format!("w{n}"), Health::progressing("starting"))));
    assert_eq!(many.status, HealthStatus::Progressing);
    assert!(
        many.message
            .ends_with("Deployment shop/w2: Progressing: starting; and 2 more Progressing"),
        "{}",
        many.message
    );

    let namespace = ObjectRef {
        group: String::new(),
        kind: "Namespace".into(),
        namespace: String::new(),
        name: "shop".into(),
    };
    assert_eq!(
        aggregate([(namespace.clone(), Health::healthy(""))]),
        Health::healthy("1 object healthy")
    );
    assert_eq!(
        describe(&namespace, &Health::missing()),
        "Namespace shop: Missing: not found in the cluster"
    );
    assert_eq!(aggregate([]), Health::healthy("no objects"));
}

#[test]
fn health_serializes_for_status() {
    let health = Health::degraded("failed");
    assert_eq!(
        serde_json::to_value(&health).unwrap(),
        json!({"status": "Degraded", "message": "failed"})
    );
    assert_eq!(health.to_string(), "Degraded: failed");
    assert_eq!(Health::healthy("").to_string(), "Healthy");
}

#[test]
fn kinds_without_status_are_decided_by_their_metadata() {
    // A Secret as the apiserver returns it, and the metadata-only view health reads of it.
    let full = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "db", "namespace": "shop", "resourceVersion": "41"},
        "data": {"password": "aHVudGVyMg=="}
    });
    let metadata_only = json!({"apiVersion": "v1", "kind": "Secret", "metadata": full["metadata"]});
    assert!(decided_by_metadata("", "Secret"));
    assert_eq!(assess(&full), assess(&metadata_only));
    assert_eq!(assess(&metadata_only).status, HealthStatus::Healthy);
    let mut deleting = metadata_only.clone();
    deleting["metadata"]["deletionTimestamp"] = json!("2026-11-22T10:00:00Z");
    assert_eq!(assess(&deleting).status, HealthStatus::Progressing);
    // Kinds whose health is in their status or spec are read whole.
    for (group, kind) in [
        ("", "Service"),
        ("", "PersistentVolumeClaim"),
        ("", "Namespace"),
        ("apps", "Deployment"),
        ("example.com", "Widget"),
    ] {
        assert!(!decided_by_metadata(group, kind), "{group}/{kind}");
    }
}
