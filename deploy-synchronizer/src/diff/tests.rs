use serde_json::json;

use super::*;

/// A live Deployment as the API server returns it.
fn live_web(image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "uid": "7d9c1a34-0f7b-4a4e-9a55-2f1c5e0b9d11",
            "resourceVersion": "90211",
            "generation": 4,
            "creationTimestamp": "2026-03-01T10:00:00Z",
            "managedFields": [
                {"manager": "sluice", "operation": "Apply", "fieldsV1": {"f:spec": {}}},
                {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status"},
            ],
            "annotations": {"deployment.kubernetes.io/revision": "4"},
            "labels": {"app": "web"},
        },
        "spec": {
            "replicas": 3,
            "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "web",
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    }],
                    "restartPolicy": "Always",
                },
            },
        },
        "status": {"replicas": 3, "readyReplicas": 3, "observedGeneration": 4},
    })
}

/// The server-side dry-run of the manifest: the live object with the apply's changes, fresh
/// bookkeeping and a status of its own.
fn dry_run_web(image: &str) -> Value {
    let mut object = live_web(image);
    object["metadata"]["resourceVersion"] = json!("90212");
    object["metadata"]["generation"] = json!(5);
    object["metadata"]["managedFields"][0]["time"] = json!("2026-03-02T09:00:00Z");
    object["status"] = json!({"replicas": 3, "observedGeneration": 4, "conditions": []});
    object
}

fn secret(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
           "metadata": {"name": "db", "namespace": "shop"}, "data": data})
}

/// The lines a diff adds and removes, without headers and context.
fn changed_lines(diff: &str) -> Vec<&str> {
    diff.lines()
        .filter(|line| !line.starts_with("---") && !line.starts_with("+++"))
        .filter(|line| line.starts_with('+') || line.starts_with('-'))
        .collect()
}

#[test]
fn managed_fields_and_status_are_ignored() {
    let diff = diff_objects(
        Some(&dry_run_web("web:1.4.2")),
        Some(&live_web("web:1.4.2")),
    );
    assert_eq!(diff.change, Change::Unchanged);
    assert_eq!(diff.unified, "");
    assert_eq!(diff.object_ref.to_string(), "apps/Deployment/shop/web");
}

#[test]
fn changed_image_shows_a_minimal_diff() {
    let diff = diff_objects(
        Some(&dry_run_web("web:1.4.3")),
        Some(&live_web("web:1.4.2")),
    );
    assert_eq!(diff.change, Change::Modified);
    assert!(
        diff.unified.starts_with(
            "--- live/apps/Deployment/shop/web\n+++ desired/apps/Deployment/shop/web\n@@ "
        ),
        "{}",
        diff.unified
    );
    assert_eq!(
        changed_lines(&diff.unified),
        ["-      - image: web:1.4.2", "+      - image: web:1.4.3"]
    );
    assert!(!diff.unified.contains("managedFields") && !diff.unified.contains("readyReplicas"));
}

#[test]
fn key_order_does_not_matter() {
    let live = json!({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "a", "namespace": "shop"}, "data": {"x": "1", "y": "2"}});
    let desired: Value = serde_json::from_str(
        r#"{"data": {"y": "2", "x": "1"}, "metadata": {"namespace": "shop", "name": "a"},
            "kind": "ConfigMap", "apiVersion": "v1"}"#,
    )
    .unwrap();
    let diff = diff_objects(Some(&desired), Some(&live));
    assert_eq!(
        (diff.change, diff.unified.as_str()),
        (Change::Unchanged, "")
    );
}

#[test]
fn secret_values_never_appear() {
    // Plaintexts and their base64 as stored: none may be printed, in any form.
    let secrets = [
        ("s3cr3t-old", "czNjcjN0LW9sZA=="),
        ("s3cr3t-new", "czNjcjN0LW5ldw=="),
        ("admin", "YWRtaW4="),
    ];
    let mut live = secret(json!({"password": secrets[0].1, "user": secrets[2].1}));
    live["metadata"]["annotations"] = json!({LAST_APPLIED_ANNOTATION:
        format!("{{\"stringData\":{{\"password\":\"{}\"}}}}", secrets[0].0)});
    let desired = json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                         "metadata": {"name": "db", "namespace": "shop"},
                         "stringData": {"password": secrets[1].0, "user": secrets[2].0}});
    let outputs = [
        diff_objects(Some(&desired), Some(&live)),
        diff_objects(Some(&desired), None),
        diff_objects(None, Some(&live)),
    ];
    let report = DiffReport::new(outputs.to_vec());
    let text = format!(
        "{}{}",
        report.render(),
        serde_json::to_string(&report).unwrap()
    );
    for (plain, encoded) in secrets {
        assert!(
            !text.contains(plain) && !text.contains(encoded),
            "{plain} leaked:\n{text}"
        );
    }
    // Only the password changed; the user, equal on both sides, is not a change.
    assert_eq!(outputs[0].change, Change::Modified);
    assert_eq!(
        changed_lines(&outputs[0].unified),
        [
            format!("-  password: {MASK}"),
            format!("+  password: {MASK_CHANGED}")
        ]
    );
}

#[test]
fn equal_secrets_show_no_diff() {
    let live = secret(json!({"password": "aHVudGVyMg=="}));
    let as_data = secret(json!({"password": "aHVudGVyMg=="}));
    let as_string_data = json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                                "metadata": {"name": "db", "namespace": "shop"},
                                "stringData": {"password": "hunter2"}});
    for desired in [as_data, as_string_data] {
        let diff = diff_objects(Some(&desired), Some(&live));
        assert_eq!(
            (diff.change, diff.unified.as_str()),
            (Change::Unchanged, ""),
            "{desired}"
        );
    }
}

#[test]
fn created_object_is_shown_whole() {
    let desired = json!({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": "web", "namespace": "shop"}, "data": {"mode": "fast"}});
    let diff = diff_objects(Some(&desired), None);
    assert_eq!(diff.change, Change::Created);
    let added = changed_lines(&diff.unified);
    assert!(
        added.iter().all(|line| line.starts_with('+')),
        "{}",
        diff.unified
    );
    assert!(
        added.contains(&"+  mode: fast") && added.contains(&"+kind: ConfigMap"),
        "{added:?}"
    );
    assert!(diff.unified.contains("@@ -0,0 +1,"), "{}", diff.unified);
}

#[test]
fn pruned_object_is_shown_whole() {
    let diff = diff_objects(None, Some(&live_web("web:1.4.2")));
    assert_eq!(diff.change, Change::Deleted);
    let removed = changed_lines(&diff.unified);
    assert!(removed.iter().all(|line| line.starts_with('-')));
    assert!(
        removed.contains(&"-      - image: web:1.4.2"),
        "{removed:?}"
    );
    assert!(!diff.unified.contains("uid:") && !diff.unified.contains("status:"));
}

#[test]
fn report_renders_changes_in_object_order() {
    let map = |name: &str, value: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": value}});
    let report = DiffReport::new(vec![
        diff_objects(Some(&map("b", "2")), Some(&map("b", "1"))),
        diff_objects(Some(&map("c", "1")), Some(&map("c", "1"))),
        diff_objects(Some(&map("a", "1")), None),
    ]);
    assert!(report.has_changes());
    assert_eq!(report.changed().count(), 2);
    let text = report.render();
    let a = text.find("desired/core/ConfigMap/_/a").unwrap();
    let b = text.find("desired/core/ConfigMap/_/b").unwrap();
    assert!(a < b && !text.contains("ConfigMap/_/c"), "{text}");
    assert_eq!(
        report.summary(),
        "3 objects: 1 created, 1 modified, 0 deleted, 1 unchanged"
    );
}

#[test]
fn exit_code_rule() {
    let unchanged = DiffReport::new(vec![diff_objects(
        Some(&live_web("a")),
        Some(&live_web("a")),
    )]);
    let changed = DiffReport::new(vec![diff_objects(
        Some(&live_web("b")),
        Some(&live_web("a")),
    )]);
    assert_eq!(exit_code::<()>(&Ok(DiffReport::default())), 0);
    assert_eq!(exit_code::<()>(&Ok(unchanged)), 0);
    assert_eq!(exit_code::<()>(&Ok(changed)), 1);
    assert_eq!(exit_code::<&str>(&Err("dry-run failed")), 2);
}

#[test]
fn object_without_identity_still_gets_a_header() {
    let diff = diff_objects(Some(&json!({"kind": "Thing", "spec": {"a": 1}})), None);
    assert!(
        diff.unified.starts_with("--- live/core/Thing/_/\n"),
        "{}",
        diff.unified
    );
}
