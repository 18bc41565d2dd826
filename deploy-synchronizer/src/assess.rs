//! The shell around `health`: reads each inventory object (and a workload's pods when it is not
//! healthy) and rolls them into the sync's health.

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ApiResource, DynamicObject, ListParams, TypeMeta};
use kube::{Api, Client};
use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::apply::{Kinds, PARALLELISM, Resolved};
use crate::health::{self, Health, HealthStatus};
use crate::object::ObjectRef;
use crate::plan::Inventory;

/// A kind in a namespace with at least this many objects to read is listed once instead of read
/// object by object (a cold sync of 1,000 objects: three lists instead of 1,000 GETs).
pub const LIST_AT: usize = 8;

/// The health of every object in `inventory`, aggregated: the worst part, named.
pub async fn assess_inventory(client: &Client, kinds: &Kinds, inventory: &Inventory) -> Health {
    let ids: Vec<ObjectRef> = inventory.ids().cloned().collect();
    let listed = list_groups(client, kinds, inventory, &ids).await;
    let pods = PodCache::default();
    let parts: Vec<(ObjectRef, Health)> = stream::iter(ids)
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
        .await;
    health::aggregate(parts)
}

/// `(group, kind, namespace)` → the listed objects by name, for the groups big enough to list.
type Listed = HashMap<(String, String, String), Result<HashMap<String, Value>, String>>;

async fn list_groups(
    client: &Client,
    kinds: &Kinds,
    inventory: &Inventory,
    ids: &[ObjectRef],
) -> Listed {
    let mut sizes: HashMap<(String, String, String), usize> = HashMap::new();
    for id in ids {
        *sizes
            .entry((id.group.clone(), id.kind.clone(), id.namespace.clone()))
            .or_default() += 1;
    }
    let mut listed = Listed::new();
    for ((group, kind, namespace), size) in sizes {
        if size < LIST_AT {
            continue;
        }
        let sample = ObjectRef {
            group: group.clone(),
            kind: kind.clone(),
            namespace: namespace.clone(),
            name: String::new(),
        };
        let api_version = ids
            .iter()
            .find(|id| id.group == group && id.kind == kind)
            .and_then(|id| inventory.api_version(id))
            .unwrap_or_default();
        let Some(resolved) = kinds.resolve(&group, &api_version, &kind) else {
            continue;
        };
        let api = resolved.api(client.clone(), &sample);
        let metadata_only = health::decided_by_metadata(&group, &kind);
        let objects = list_pages(&api, &resolved.resource, metadata_only).await;
        listed.insert(
            (group, kind, namespace),
            objects.map_err(|error| error.to_string()),
        );
    }
    listed
}

/// Objects a list page holds at most: the peak memory of reading a big kind is a page's
/// response, not the whole kind's.
const PAGE: u32 = 250;

/// Every object of `api`'s kind, by name, as health reads them (see [`as_read`]), fetched in
/// pages of [`PAGE`]; only the metadata when `metadata_only`.
async fn list_pages(
    api: &Api<DynamicObject>,
    resource: &ApiResource,
    metadata_only: bool,
) -> Result<HashMap<String, Value>, kube::Error> {
    let mut objects = HashMap::new();
    let mut params = ListParams::default().limit(PAGE);
    loop {
        let next = if metadata_only {
            let page = api.list_metadata(&params).await?;
            for item in page.items {
                let object = DynamicObject {
                    types: None,
                    metadata: item.metadata,
                    data: Value::Null,
                };
                objects.extend(as_read(object, resource));
            }
            page.metadata.continue_
        } else {
            let page = api.list(&params).await?;
            for item in page.items {
                objects.extend(as_read(item, resource));
            }
            page.metadata.continue_
        };
        match next.filter(|token| !token.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(objects),
        }
    }
}

/// A listed object by name, as health reads it: with the list's `apiVersion` and `kind` (the
/// apiserver sends those once for the whole list, not in every item, and health is decided by
/// the kind), without `managedFields` (often half an object, never read by health). `None`
/// without a name.
fn as_read(mut object: DynamicObject, resource: &ApiResource) -> Option<(String, Value)> {
    let name = object.metadata.name.clone()?;
    object.types.get_or_insert_with(|| TypeMeta {
        api_version: resource.api_version.clone(),
        kind: resource.kind.clone(),
    });
    object.metadata.managed_fields = None;
    Some((name, serde_json::to_value(object).ok()?))
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
                            pod.metadata.managed_fields = None;
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

/// One object as health reads it (see [`as_read`]); only its metadata when that decides.
async fn read_one(
    client: &Client,
    resolved: &Resolved,
    id: &ObjectRef,
) -> Result<Option<(String, Value)>, kube::Error> {
    let api = resolved.api(client.clone(), id);
    let object = if health::decided_by_metadata(&id.group, &id.kind) {
        api.get_metadata_opt(&id.name)
            .await?
            .map(|meta| DynamicObject {
                types: None,
                metadata: meta.metadata,
                data: Value::Null,
            })
    } else {
        api.get_opt(&id.name).await?
    };
    Ok(object.and_then(|object| as_read(object, &resolved.resource)))
}

/// `spec.selector.matchLabels`, when it has any. Workloads whose selector uses only
/// `matchExpressions` are assessed without their pods.
fn match_labels(workload: &Value) -> Option<&Map<String, Value>> {
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
    fn listed_objects_get_the_kind_their_list_item_lacks() {
        // As a list of Deployments comes back: the list has apiVersion and kind, its items not.
        let list: kube::api::ObjectList<DynamicObject> = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "DeploymentList", "metadata": {"resourceVersion": "7"},
            "items": [
                {"metadata": {"name": "web", "namespace": "shop", "generation": 2},
                 "spec": {"replicas": 1},
                 "status": {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1,
                            "readyReplicas": 1, "availableReplicas": 1,
                            "conditions": [{"type": "Available", "status": "True"}]}},
                {"metadata": {"namespace": "shop"}}
            ]
        }))
        .unwrap();
        assert!(list.items[0].types.is_none());
        let resource = ApiResource {
            group: "apps".into(),
            version: "v1".into(),
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            plural: "deployments".into(),
        };
        let listed: HashMap<String, Value> = list
            .items
            .into_iter()
            .filter_map(|item| as_read(item, &resource))
            .collect();
        assert_eq!(listed.len(), 1, "an item without a name is left out");
        let web = &listed["web"];
        assert_eq!(web["kind"], "Deployment");
        assert_eq!(web["apiVersion"], "apps/v1");
        assert_eq!(health::assess(web).status, HealthStatus::Healthy);

        // A metadata-only read: no body, no managedFields, still a kind to decide by.
        let config_maps = ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
        };
        let metadata: kube::api::ObjectMeta = serde_json::from_value(json!({
            "name": "settings", "namespace": "shop",
            "managedFields": [{"manager": "sluice", "operation": "Apply", "fieldsType": "FieldsV1",
                               "fieldsV1": {"f:data": {"f:LOG_LEVEL": {}}}}]
        }))
        .unwrap();
        let (name, read) = as_read(
            DynamicObject {
                types: None,
                metadata,
                data: Value::Null,
            },
            &config_maps,
        )
        .unwrap();
        assert_eq!(name, "settings");
        assert_eq!(
            read,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "settings", "namespace": "shop"}})
        );
        assert_eq!(health::assess(&read).status, HealthStatus::Healthy);
    }

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
