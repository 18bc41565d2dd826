//! The shell around `health`: reads each inventory object (and a workload's pods when it is not
//! healthy) and rolls them into the sync's health.

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};
use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::apply::{Kinds, PARALLELISM, Resolved};
use crate::health::{self, Health, HealthStatus};
use crate::listing;
use crate::object::ObjectRef;
use crate::plan::Inventory;

/// The health of every object in `inventory`, aggregated: the worst part, named.
pub async fn assess_inventory(client: &Client, kinds: &Kinds, inventory: &Inventory) -> Health {
    health::aggregate(assess_objects(client, kinds, inventory).await)
}

/// The health of each object in `inventory`, in no particular order.
pub async fn assess_objects(
    client: &Client,
    kinds: &Kinds,
    inventory: &Inventory,
) -> Vec<(ObjectRef, Health)> {
    let ids: Vec<ObjectRef> = inventory.ids().cloned().collect();
    let listed = list_groups(client, kinds, inventory, &ids).await;
    let pods = PodCache::default();
    stream::iter(ids)
        .map(|id| {
            let (listed, pods) = (&listed, &pods);
            async move {
                let api_version = inventory.api_version(&id).unwrap_or_default();
                let health = assess_one(client, kinds, &id, &api_version, listed, pods).await;
                (id, health)
            }
        })
        .buffer_unordered(PARALLELISM)
        .collect()
        .await
}

/// `(group, kind, namespace)` → the listed objects by name, for the groups big enough to list.
type Listed = HashMap<(String, String, String), Result<HashMap<String, Value>, String>>;

async fn list_groups(
    client: &Client,
    kinds: &Kinds,
    inventory: &Inventory,
    ids: &[ObjectRef],
) -> Listed {
    let (big, _) = listing::groups(ids.iter().cloned());
    let mut listed = Listed::new();
    for group in big {
        let sample = &group[0];
        let api_version = inventory.api_version(sample).unwrap_or_default();
        let Some(resolved) = kinds.resolve(&sample.group, &api_version, &sample.kind) else {
            continue;
        };
        let api = resolved.api(client.clone(), sample);
        let metadata_only = health::decided_by_metadata(&sample.group, &sample.kind);
        let wanted = group.iter().map(|id| id.name.as_str()).collect();
        let objects =
            match listing::list_pages(&api, &resolved.resource, metadata_only, &wanted).await {
                Ok(Some(objects)) => Ok(objects),
                // A sparse kind: each object read on its own.
                Ok(None) => continue,
                Err(error) => Err(error.to_string()),
            };
        listed.insert(listing::group_of(sample), objects);
    }
    listed
}

/// The pods of each namespace, listed once per assessment, the first time a workload that is
/// not healthy needs them to explain why.
#[derive(Default)]
struct PodCache(tokio::sync::Mutex<HashMap<String, Result<Vec<Value>, String>>>);

impl PodCache {
    async fn matching(
        &self,
        client: &Client,
        namespace: &str,
        selector: &Map<String, Value>,
    ) -> Result<Vec<Value>, String> {
        let mut cache = self.0.lock().await;
        if !cache.contains_key(namespace) {
            let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
            let listed = pods
                .list(&ListParams::default())
                .await
                .map(|list| {
                    list.items
                        .into_iter()
                        .filter_map(|mut pod| {
                            // Health reads a pod's labels, name and status; the spec is most
                            // of a pod and a namespace may hold hundreds.
                            pod.metadata.managed_fields = None;
                            pod.spec = None;
                            serde_json::to_value(pod).ok()
                        })
                        .collect()
                })
                .map_err(|error| error.to_string());
            cache.insert(namespace.to_owned(), listed);
        }
        match &cache[namespace] {
            Ok(pods) => Ok(pods
                .iter()
                .filter(|pod| selects(selector, pod))
                .cloned()
                .collect()),
            Err(error) => Err(error.clone()),
        }
    }
}

/// Whether `pod`'s labels hold every `matchLabels` pair of `selector`.
fn selects(selector: &Map<String, Value>, pod: &Value) -> bool {
    let labels = pod.pointer("/metadata/labels").and_then(Value::as_object);
    selector
        .iter()
        .all(|(key, value)| labels.and_then(|labels| labels.get(key)) == Some(value))
}

async fn assess_one(
    client: &Client,
    kinds: &Kinds,
    id: &ObjectRef,
    api_version: &str,
    listed: &Listed,
    pods: &PodCache,
) -> Health {
    let Some(resolved) = kinds.resolve(&id.group, api_version, &id.kind) else {
        return Health::missing();
    };
    let group = (id.group.clone(), id.kind.clone(), id.namespace.clone());
    let live = match listed.get(&group) {
        Some(Ok(objects)) => match objects.get(&id.name) {
            Some(object) => object.clone(),
            None => return Health::missing(),
        },
        Some(Err(error)) => return Health::unknown(format!("cannot read it: {error}")),
        None => match read_one(client, &resolved, id).await {
            Ok(Some((_, object))) => object,
            Ok(None) => return Health::missing(),
            Err(error) => return Health::unknown(format!("cannot read it: {error}")),
        },
    };
    let assessed = health::assess(&live);
    let workload = id.group == "apps"
        && matches!(
            id.kind.as_str(),
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet"
        );
    if !workload
        || matches!(
            assessed.status,
            HealthStatus::Healthy | HealthStatus::Suspended
        )
    {
        return assessed;
    }
    let Some(selector) = match_labels(&live) else {
        return assessed;
    };
    match pods.matching(client, &id.namespace, selector).await {
        Ok(pods) => health::explain_workload(&assessed, &pods),
        Err(error) => {
            tracing::debug!(object = %id, %error, "cannot list the workload's pods");
            assessed
        }
    }
}

/// One object as health reads it (see [`listing::as_read`]); only its metadata when that
/// decides.
pub(crate) async fn read_one(
    client: &Client,
    resolved: &Resolved,
    id: &ObjectRef,
) -> Result<Option<(String, Value)>, kube::Error> {
    let api = resolved.api(client.clone(), id);
    let object = if health::decided_by_metadata(&id.group, &id.kind) {
        api.get_metadata_opt(&id.name)
            .await?
            .map(|meta| listing::metadata_object(meta.metadata))
    } else {
        api.get_opt(&id.name).await?
    };
    Ok(object.and_then(|object| listing::as_read(object, &resolved.resource)))
}

/// `spec.selector.matchLabels`, when it has any. Workloads whose selector uses only
/// `matchExpressions` are assessed without their pods.
pub(crate) fn match_labels(workload: &Value) -> Option<&Map<String, Value>> {
    workload
        .pointer("/spec/selector/matchLabels")?
        .as_object()
        .filter(|labels| !labels.is_empty())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pods_are_selected_by_match_labels() {
        let deployment =
            json!({"spec": {"selector": {"matchLabels": {"app": "web", "tier": "front"}}}});
        let selector = match_labels(&deployment).unwrap();
        let pod = |labels: Value| json!({"metadata": {"labels": labels}});
        assert!(selects(
            selector,
            &pod(json!({"app": "web", "tier": "front", "pod-template-hash": "7f"}))
        ));
        assert!(!selects(selector, &pod(json!({"app": "web"}))));
        assert!(!selects(
            selector,
            &pod(json!({"app": "api", "tier": "front"}))
        ));
        assert!(!selects(selector, &json!({"metadata": {}})));
        assert_eq!(
            match_labels(&json!({"spec": {"selector": {"matchLabels": {}}}})),
            None
        );
        assert_eq!(match_labels(&json!({"spec": {}})), None);
    }
}
