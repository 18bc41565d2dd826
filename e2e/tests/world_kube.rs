//! The world's kube-apiserver behaves as Sluice needs: what Sluice applies server-side (field
//! manager `sluice`) is stored and owned by it, and an edit by anyone else reaches a watcher,
//! with managedFields telling who owns what.

use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use sluice_e2e::{FIELD_MANAGER, TestNamespace, World};

/// The configuration of a small web app, as a Sluice config repo would hold it.
const WEB_CONFIG: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  labels:
    app.kubernetes.io/name: web
    app.kubernetes.io/managed-by: sluice
data:
  # Read by the app at start; the one key an operator likes to turn up by hand.
  log-level: info
  greeting: "hello from sluice"
  # Strings, as every ConfigMap value is.
  max-connections: "100"
"#;

/// Someone who is not Sluice: an operator with kubectl, another controller.
const SOMEONE_ELSE: &str = "someone-else";

fn entry<'a>(cm: &'a ConfigMap, manager: &str) -> Option<&'a ManagedFieldsEntry> {
    cm.metadata
        .managed_fields
        .iter()
        .flatten()
        .find(|e| e.manager.as_deref() == Some(manager))
}

/// Whether `manager`'s entry owns `data.<key>` (fieldsV1 `{"f:data": {"f:<key>": {}}}`).
fn owns_data_key(cm: &ConfigMap, manager: &str, key: &str) -> bool {
    entry(cm, manager)
        .and_then(|e| e.fields_v1.as_ref())
        .and_then(|f| f.0.get("f:data"))
        .and_then(|d| d.get(format!("f:{key}")))
        .is_some()
}

fn data<'a>(cm: &'a ConfigMap, key: &str) -> Option<&'a str> {
    cm.data.as_ref()?.get(key).map(String::as_str)
}

fn managers(cm: &ConfigMap) -> Vec<String> {
    cm.metadata
        .managed_fields
        .iter()
        .flatten()
        .map(|e| {
            format!(
                "{}/{}",
                e.manager.as_deref().unwrap_or("?"),
                e.operation.as_deref().unwrap_or("?")
            )
        })
        .collect()
}

/// The next object from `stream` that satisfies `want`, within `timeout`.
async fn next_matching(
    stream: &mut (impl Stream<Item = Result<ConfigMap, watcher::Error>> + Unpin),
    timeout: Duration,
    what: &str,
    want: impl Fn(&ConfigMap) -> bool,
) -> ConfigMap {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(timeout, async {
        while let Some(event) = stream.next().await {
            let cm = event.unwrap_or_else(|e| panic!("the watch failed: {e}"));
            if want(&cm) {
                return cm;
            }
            seen.push(format!("{:?}", cm.data));
        }
        panic!("the watch ended before {what}");
    })
    .await;
    found.unwrap_or_else(|_| panic!("no watch event with {what} within {timeout:?}; saw {seen:?}"))
}

#[tokio::test]
async fn server_side_apply_is_stored_and_owned_by_sluice() {
    let world = World::get();
    let ns = TestNamespace::create(&world.kube_client().await, "kube-ssa").await;

    let applied: ConfigMap = ns.apply(WEB_CONFIG).await;
    assert_eq!(applied.metadata.namespace.as_deref(), Some(ns.name()));

    // Read back with a plain GET, not the apply's answer.
    let api = ns.api::<ConfigMap>();
    let stored = api
        .get("web-config")
        .await
        .expect("the applied ConfigMap is there");
    assert_eq!(data(&stored, "log-level"), Some("info"));
    assert_eq!(data(&stored, "greeting"), Some("hello from sluice"));
    assert_eq!(data(&stored, "max-connections"), Some("100"));
    let labels = stored.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("sluice")
    );

    let sluice = entry(&stored, FIELD_MANAGER).unwrap_or_else(|| {
        panic!(
            "no managedFields entry of {FIELD_MANAGER}: {:?}",
            managers(&stored)
        )
    });
    assert_eq!(sluice.operation.as_deref(), Some("Apply"));
    for key in ["log-level", "greeting", "max-connections"] {
        assert!(
            owns_data_key(&stored, FIELD_MANAGER, key),
            "sluice does not own data.{key}"
        );
    }

    // Applying the same manifest again changes nothing: same resourceVersion.
    let again: ConfigMap = ns.apply(WEB_CONFIG).await;
    assert_eq!(
        again.metadata.resource_version,
        stored.metadata.resource_version
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_sees_an_edit_by_another_manager() {
    let world = World::get();
    let client = world.kube_client().await;
    let ns = TestNamespace::create(&client, "kube-watch").await;
    let api = ns.api::<ConfigMap>();
    let _: ConfigMap = ns.apply(WEB_CONFIG).await;

    // The watcher first lists (the object as applied), then watches from that list's version.
    let config = watcher::Config::default().fields("metadata.name=web-config");
    let mut events = watcher(api.clone(), config)
        .default_backoff()
        .applied_objects()
        .boxed();
    let listed = next_matching(
        &mut events,
        Duration::from_secs(30),
        "log-level info",
        |cm| data(cm, "log-level") == Some("info"),
    )
    .await;

    // Someone else turns up the log level, with an ordinary (non-apply) patch.
    let edit = PatchParams {
        field_manager: Some(SOMEONE_ELSE.into()),
        ..Default::default()
    };
    api.patch(
        "web-config",
        &edit,
        &Patch::Merge(json!({ "data": { "log-level": "debug" } })),
    )
    .await
    .expect("the other manager's patch");

    let edited = next_matching(
        &mut events,
        Duration::from_secs(30),
        "log-level debug",
        |cm| data(cm, "log-level") == Some("debug"),
    )
    .await;
    assert_ne!(
        edited.metadata.resource_version,
        listed.metadata.resource_version
    );
    assert_eq!(
        data(&edited, "greeting"),
        Some("hello from sluice"),
        "the rest is untouched"
    );

    // Both managers are on record, and the edited key changed hands.
    let all = managers(&edited);
    let theirs =
        entry(&edited, SOMEONE_ELSE).unwrap_or_else(|| panic!("no {SOMEONE_ELSE} in {all:?}"));
    assert_eq!(theirs.operation.as_deref(), Some("Update"), "{all:?}");
    let ours =
        entry(&edited, FIELD_MANAGER).unwrap_or_else(|| panic!("no {FIELD_MANAGER} in {all:?}"));
    assert_eq!(ours.operation.as_deref(), Some("Apply"), "{all:?}");
    assert!(
        owns_data_key(&edited, SOMEONE_ELSE, "log-level"),
        "{SOMEONE_ELSE} owns the key it set"
    );
    assert!(
        !owns_data_key(&edited, FIELD_MANAGER, "log-level"),
        "sluice lost data.log-level"
    );
    assert!(
        owns_data_key(&edited, FIELD_MANAGER, "greeting"),
        "sluice keeps what it alone set"
    );

    // An unforced apply now conflicts, naming the other manager: the drift is visible.
    let mut body: serde_json::Value = serde_saphyr::from_str(WEB_CONFIG).expect("fixture");
    body["metadata"]["namespace"] = ns.name().into();
    let unforced = PatchParams::apply(FIELD_MANAGER);
    match api
        .patch("web-config", &unforced, &Patch::Apply(&body))
        .await
    {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 409, "{status:?}");
            assert!(
                status.message.contains(SOMEONE_ELSE),
                "the conflict names the other manager: {}",
                status.message
            );
            assert!(
                status.message.contains("log-level"),
                "the conflict names the field: {}",
                status.message
            );
        }
        other => panic!("an unforced apply over someone else's field must conflict, got {other:?}"),
    }

    // Sluice's forced apply takes the key back, and the watcher sees that too.
    let _: ConfigMap = ns.apply(WEB_CONFIG).await;
    let restored = next_matching(
        &mut events,
        Duration::from_secs(30),
        "log-level info again",
        |cm| data(cm, "log-level") == Some("info"),
    )
    .await;
    assert!(owns_data_key(&restored, FIELD_MANAGER, "log-level"));
    assert!(!owns_data_key(&restored, SOMEONE_ELSE, "log-level"));
}
