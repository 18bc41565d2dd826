//! What a diff leaves out: fields the API server writes on every object, which no manifest sets
//! and no user can act on. Showing them would make every object look changed.

use serde_json::{Map, Value};

/// Bookkeeping the API server keeps in `metadata`.
const SERVER_METADATA: [&str; 7] = [
    "managedFields",
    "resourceVersion",
    "uid",
    "generation",
    "creationTimestamp",
    "selfLink",
    "deletionGracePeriodSeconds",
];

/// `kubectl apply`'s copy of the last applied manifest. It is not ours (Sluice uses server-side
/// apply), it duplicates the whole object, and on a Secret it holds the values in clear text.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The object without server bookkeeping: `status`, the [`SERVER_METADATA`] fields, the
/// last-applied annotation, and `annotations` / `labels` maps left empty (or null) by that.
/// Everything else is kept, including server defaults: the desired side is meant to be the
/// server-side dry-run of the manifest, which carries the same defaults (see [`super`]).
pub fn normalize(object: &Value) -> Value {
    let mut object = object.clone();
    let Some(fields) = object.as_object_mut() else {
        return object;
    };
    fields.remove("status");
    if let Some(Value::Object(metadata)) = fields.get_mut("metadata") {
        for field in SERVER_METADATA {
            metadata.remove(field);
        }
        if let Some(Value::Object(annotations)) = metadata.get_mut("annotations") {
            annotations.remove(LAST_APPLIED_ANNOTATION);
        }
        for field in ["annotations", "labels"] {
            if metadata.get(field).is_some_and(is_empty_map) {
                metadata.remove(field);
            }
        }
    }
    object
}

fn is_empty_map(value: &Value) -> bool {
    value.is_null() || value.as_object().is_some_and(Map::is_empty)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn live_deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "shop",
                "uid": "0b6e8c2e-5d4c-4a8f-9f0e-1c2d3e4f5a6b",
                "resourceVersion": "48213",
                "generation": 7,
                "creationTimestamp": "2026-01-02T03:04:05Z",
                "selfLink": "/apis/apps/v1/namespaces/shop/deployments/web",
                "managedFields": [{"manager": "sluice", "operation": "Apply"}],
                "annotations": {LAST_APPLIED_ANNOTATION: "{\"kind\":\"Deployment\"}"},
                "labels": {"app": "web"},
            },
            "spec": {"replicas": 2},
            "status": {"readyReplicas": 2, "observedGeneration": 7},
        })
    }

    #[test]
    fn server_bookkeeping_is_dropped_and_the_rest_kept() {
        let normalized = normalize(&live_deployment());
        assert_eq!(
            normalized,
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
                "spec": {"replicas": 2},
            })
        );
    }

    #[test]
    fn other_annotations_stay() {
        let mut object = live_deployment();
        object["metadata"]["annotations"]["team"] = json!("web");
        object["metadata"]["labels"] = json!({});
        let normalized = normalize(&object);
        assert_eq!(
            normalized["metadata"]["annotations"],
            json!({"team": "web"})
        );
        assert_eq!(normalized["metadata"].get("labels"), None);
    }

    #[test]
    fn non_objects_pass_through() {
        assert_eq!(normalize(&json!("text")), json!("text"));
        assert_eq!(
            normalize(&json!({"metadata": null})),
            json!({"metadata": null})
        );
    }
}
