use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry, ObjectMeta};
use serde_json::{Value, json};

use super::fight::{BASE, FIGHT_WINDOW, Fight, MAX_DELAY};
use super::*;

/// A Deployment's field set as Sluice applies it (image, replicas, labels).
fn applied() -> Value {
    json!({
        "f:metadata": {"f:labels": {"f:app": {}, "f:sluice.dev/sync": {}}},
        "f:spec": {
            "f:replicas": {},
            "f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}
            }}}
        }
    })
}

fn entry(manager: &str, operation: &str, fields: Value) -> ManagedFieldsEntry {
    ManagedFieldsEntry {
        manager: Some(manager.into()),
        operation: Some(operation.into()),
        fields_v1: Some(FieldsV1(fields)),
        api_version: Some("apps/v1".into()),
        fields_type: Some("FieldsV1".into()),
        ..ManagedFieldsEntry::default()
    }
}

fn meta(entries: Vec<ManagedFieldsEntry>) -> ObjectMeta {
    ObjectMeta {
        name: Some("web".into()),
        managed_fields: Some(entries),
        ..ObjectMeta::default()
    }
}

fn recorded() -> AppliedFields {
    AppliedFields::of(&[entry("sluice", "Apply", applied())]).unwrap()
}

#[test]
fn an_untouched_object_is_in_sync() {
    let live = meta(vec![
        entry("sluice", "Apply", applied()),
        // The Deployment controller's annotations and status are its own.
        entry(
            "kube-controller-manager",
            "Update",
            json!({"f:metadata": {"f:annotations": {"f:deployment.kubernetes.io/revision": {}}}}),
        ),
    ]);
    assert_eq!(check(&recorded(), Some(&live)), Check::InSync);
}

#[test]
fn key_order_does_not_matter() {
    let reordered: Value = serde_json::from_str(
        r#"{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"web\"}":{"f:name":{},"f:image":{},".":{}}}}},"f:replicas":{}},
            "f:metadata":{"f:labels":{"f:sluice.dev/sync":{},"f:app":{}}}}"#,
    )
    .unwrap();
    let live = meta(vec![entry("sluice", "Apply", reordered)]);
    assert_eq!(check(&recorded(), Some(&live)), Check::InSync);
}

#[test]
fn a_field_edited_by_another_manager_is_drift_naming_it() {
    // `kubectl edit` changed the image: the field moved to kubectl-edit's entry.
    let mut ours = applied();
    ours["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]
        .as_object_mut()
        .unwrap()
        .remove("f:image");
    let live = meta(vec![
        entry("sluice", "Apply", ours),
        entry(
            "kubectl-edit",
            "Update",
            json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"web\"}": {"f:image": {}}
            }}}}}),
        ),
    ]);
    let Check::Drifted(drift) = check(&recorded(), Some(&live)) else {
        panic!("expected drift");
    };
    assert_eq!(
        drift.fields,
        ["spec.template.spec.containers[name=web].image"]
    );
    assert_eq!(drift.by, ["kubectl-edit"]);
    assert_eq!(
        drift.to_string(),
        "spec.template.spec.containers[name=web].image (changed by kubectl-edit)"
    );
}

#[test]
fn a_scaled_replica_count_is_drift_when_git_sets_it() {
    let mut ours = applied();
    ours["f:spec"].as_object_mut().unwrap().remove("f:replicas");
    let live = meta(vec![
        entry("sluice", "Apply", ours),
        entry("kubectl", "Update", json!({"f:spec": {"f:replicas": {}}})),
    ]);
    let Check::Drifted(drift) = check(&recorded(), Some(&live)) else {
        panic!("expected drift");
    };
    assert_eq!(drift.fields, ["spec.replicas"]);
    assert_eq!(drift.by, ["kubectl"]);
}

#[test]
fn replicas_git_does_not_set_are_left_to_the_hpa() {
    let mut ours = applied();
    ours["f:spec"].as_object_mut().unwrap().remove("f:replicas");
    let recorded = AppliedFields::of(&[entry("sluice", "Apply", ours.clone())]).unwrap();
    let live = meta(vec![
        entry("sluice", "Apply", ours),
        entry(
            "horizontal-pod-autoscaler",
            "Update",
            json!({"f:spec": {"f:replicas": {}}}),
        ),
    ]);
    assert_eq!(check(&recorded, Some(&live)), Check::InSync);
}

#[test]
fn a_removed_label_is_drift_with_no_owner() {
    let mut ours = applied();
    ours["f:metadata"]["f:labels"]
        .as_object_mut()
        .unwrap()
        .remove("f:app");
    let live = meta(vec![entry("sluice", "Apply", ours)]);
    let Check::Drifted(drift) = check(&recorded(), Some(&live)) else {
        panic!("expected drift");
    };
    assert_eq!(drift.fields, ["metadata.labels.app"]);
    assert!(drift.by.is_empty());
    assert_eq!(drift.to_string(), "metadata.labels.app (removed)");
}

#[test]
fn a_forced_apply_by_another_manager_is_drift() {
    // Only the other manager's entry is left for the whole object.
    let live = meta(vec![entry("helm", "Apply", applied())]);
    let Check::Drifted(drift) = check(&recorded(), Some(&live)) else {
        panic!("expected drift");
    };
    assert_eq!(drift.by, ["helm"]);
    assert_eq!(drift.fields.len(), 5, "{drift:?}");
    assert!(
        drift.to_string().starts_with("metadata.labels.app, "),
        "{drift}"
    );
}

#[test]
fn shared_ownership_of_the_same_value_is_not_drift() {
    let live = meta(vec![
        entry("sluice", "Apply", applied()),
        entry("argocd", "Apply", json!({"f:spec": {"f:replicas": {}}})),
    ]);
    assert_eq!(check(&recorded(), Some(&live)), Check::InSync);
}

#[test]
fn a_deleted_object_is_deleted() {
    assert_eq!(check(&recorded(), None), Check::Deleted);
}

#[test]
fn subresource_and_update_entries_of_sluice_are_not_the_applied_set() {
    let managed = vec![
        entry("sluice", "Update", json!({"f:status": {}})),
        ManagedFieldsEntry {
            subresource: Some("status".into()),
            ..entry("sluice", "Apply", json!({"f:status": {}}))
        },
    ];
    assert_eq!(AppliedFields::of(&managed), None);
}

#[test]
fn applied_fields_are_read_from_an_apply_response() {
    let object = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "a", "managedFields": [{
            "manager": "sluice", "operation": "Apply", "apiVersion": "v1",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:k": {}}},
            "time": "2026-11-22T07:00:00Z"
        }]}
    });
    let fields = AppliedFields::of_object(&object).unwrap();
    let live = meta(vec![entry(
        "sluice",
        "Apply",
        json!({"f:data": {"f:k": {}}}),
    )]);
    assert_eq!(check(&fields, Some(&live)), Check::InSync);
}

#[test]
fn leaf_paths_skip_the_dot_marker() {
    let paths: Vec<String> = leaf_paths(&applied())
        .iter()
        .map(|p| paths::display(p))
        .collect();
    assert_eq!(
        paths,
        [
            "metadata.labels.app",
            "metadata.labels.sluice.dev/sync",
            "spec.replicas",
            "spec.template.spec.containers[name=web].image",
            "spec.template.spec.containers[name=web].name",
        ]
    );
}

#[test]
fn the_first_heals_go_out_at_once() {
    let start = Instant::now();
    let mut fight = Fight::default();
    for n in 0..2 {
        let now = start + Duration::from_millis(100 * n);
        assert_eq!(fight.pace(now).delay, Duration::ZERO);
        fight.healed(now);
    }
}

#[test]
fn drift_right_after_each_heal_backs_off_and_is_reported_once() {
    let start = Instant::now();
    let mut fight = Fight::default();
    let mut now = start;
    let mut delays = Vec::new();
    let mut reported = 0;
    for _ in 0..10 {
        let pace = fight.seen(now);
        delays.push(pace.delay.as_secs());
        reported += usize::from(pace.fight_started);
        now += pace.delay;
        fight.healed(now);
        now += Duration::from_millis(50); // the other actor takes it back at once
    }
    assert_eq!(delays, [0, 0, 2, 6, 18, 54, 162, 300, 300, 300]);
    assert_eq!(reported, 1);
    assert!(fight.fighting(now));
    assert_eq!(BASE.as_secs(), 2);
    assert_eq!(MAX_DELAY.as_secs(), 300);
}

#[test]
fn drift_long_after_a_heal_starts_afresh() {
    let start = Instant::now();
    let mut fight = Fight::default();
    for n in 0..5 {
        fight.healed(start + Duration::from_millis(n));
    }
    let later = start + FIGHT_WINDOW + Duration::from_secs(1);
    assert_eq!(fight.pace(later).delay, Duration::ZERO);
    assert!(!fight.fighting(later));
}

#[test]
fn an_apply_response_is_kept_as_what_drift_needs() {
    let object = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "a", "resourceVersion": "42", "managedFields": [
            {"manager": "sluice", "operation": "Apply", "fieldsV1": {"f:data": {"f:k": {}}}},
            {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:data": {"f:x": {}}}}
        ]},
        "data": {"k": "a big value"}
    });
    let kept = applied_record(object.clone());
    assert_eq!(kept["metadata"]["resourceVersion"], "42");
    assert_eq!(
        kept["metadata"]["managedFields"].as_array().unwrap().len(),
        1
    );
    assert!(kept.get("data").is_none());
    assert_eq!(
        AppliedFields::of_object(&kept),
        AppliedFields::of_object(&object)
    );
}
