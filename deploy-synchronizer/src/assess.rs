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

/// How many times a paged list starts again from its first page when its continue token has
/// expired (the apiserver compacted the revision the earlier pages were read at).
const RESTARTS: u32 = 2;

/// Every object of `api`'s kind, by name, as health reads them (see [`as_read`]), fetched in
/// pages of [`PAGE`]; only the metadata when `metadata_only`.
async fn list_pages(
    api: &Api<DynamicObject>,
    resource: &ApiResource,
    metadata_only: bool,
) -> Result<HashMap<String, Value>, kube::Error> {
    paged(|params| list_page(api, resource, metadata_only, params)).await
}

/// A page of a list: its objects by name, and the token of the next page if there is one.
type Page = (Vec<(String, Value)>, Option<String>);

/// The objects of every page `fetch` returns, from the first until one without a next token. A
/// continue token that expires midway restarts the list from the first page (up to
/// [`RESTARTS`] times), so that health neither mixes pages read at two revisions nor gives up on
/// a kind because a big list was slow.
async fn paged<Fetch, Fetched>(mut fetch: Fetch) -> Result<HashMap<String, Value>, kube::Error>
where
    Fetch: FnMut(ListParams) -> Fetched,
    Fetched: Future<Output = Result<Page, kube::Error>>,
{
    let first = ListParams::default().limit(PAGE);
    let mut objects = HashMap::new();
    let mut params = first.clone();
    let mut restarts = 0;
    loop {
        let restarting = params.continue_token.is_some() && restarts < RESTARTS;
        match fetch(params.clone()).await {
            Ok((items, next)) => {
                objects.extend(items);
                match next.filter(|token| !token.is_empty()) {
                    Some(token) => params = params.continue_token(&token),
                    None => return Ok(objects),
                }
            }
            Err(error) if restarting && continue_expired(&error) => {
                restarts += 1;
                tracing::debug!(
                    restarts,
                    "a list's continue token expired; listing again from the first page"
                );
                objects.clear();
                params = first.clone();
            }
            Err(error) => return Err(error),
        }
    }
}

/// One page of [`list_pages`].
async fn list_page(
    api: &Api<DynamicObject>,
    resource: &ApiResource,
    metadata_only: bool,
    params: ListParams,
) -> Result<Page, kube::Error> {
    if metadata_only {
        let page = api.list_metadata(&params).await?;
        let items = page.items.into_iter().filter_map(|item| {
            let object = DynamicObject {
                types: None,
                metadata: item.metadata,
                data: Value::Null,
            };
            as_read(object, resource)
        });
        Ok((items.collect(), page.metadata.continue_))
    } else {
        let page = api.list(&params).await?;
        let items = page
            .items
            .into_iter()
            .filter_map(|item| as_read(item, resource));
        Ok((items.collect(), page.metadata.continue_))
    }
}

/// Whether a list failed because its continue token is too old: `410 Gone`, reason `Expired`
/// (or no reason, from an apiserver that gives only the code).
fn continue_expired(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status)
        if status.code == 410 && matches!(status.reason.as_str(), "Expired" | "Gone" | ""))
}

/// A listed object by name, as health reads it: with the list's `apiVersion` and `kind` (the
/// apiserver sends those once for the whole list, not in every item, and health is decided by
/// the kind), without `managedFields` (often half an object, never read by health), and for the
/// workloads of `apps` and `batch` without their pod template (most of the rest; health reads a
/// workload's replicas, selector, strategy and status). `None` without a name.
fn as_read(mut object: DynamicObject, resource: &ApiResource) -> Option<(String, Value)> {
    let name = object.metadata.name.clone()?;
    object.types.get_or_insert_with(|| TypeMeta {
        api_version: resource.api_version.clone(),
        kind: resource.kind.clone(),
    });
    object.metadata.managed_fields = None;
    if matches!(resource.group.as_str(), "apps" | "batch")
        && let Some(spec) = object.data.get_mut("spec").and_then(Value::as_object_mut)
    {
        spec.remove("template");
        spec.remove("jobTemplate");
    }
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
                 "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                          "template": {"metadata": {"labels": {"app": "web"}},
                                       "spec": {"containers": [{"name": "web", "image": "web:1.4.2"}]}}},
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
        assert_eq!(
            web["spec"],
            json!({"replicas": 1, "selector": {"matchLabels": {"app": "web"}}}),
            "the pod template is not kept"
        );
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
    fn an_expired_continue_token_is_told_from_other_list_errors() {
        let status = |value: Value| {
            kube::Error::Api(
                serde_json::from_value::<kube::core::Status>(value)
                    .unwrap()
                    .boxed(),
            )
        };
        // As kube-apiserver answers a continue token older than the compaction.
        let expired = status(json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {"continue": "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ"},
            "status": "Failure", "reason": "Expired", "code": 410,
            "message": "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list."
        }));
        assert!(continue_expired(&expired));
        assert!(continue_expired(&status(
            json!({"status": "Failure", "code": 410})
        )));
        let forbidden = status(
            json!({"status": "Failure", "reason": "Forbidden", "code": 403,
            "message": "deployments.apps is forbidden: User \"system:serviceaccount:sluice:deploy-synchronizer\" cannot list resource \"deployments\""}),
        );
        assert!(!continue_expired(&forbidden));
        let timeout = status(json!({"status": "Failure", "reason": "Timeout", "code": 504}));
        assert!(!continue_expired(&timeout));
    }

    /// A fake list of `pages` pages (objects `p<page>-<n>`), whose continue token expires at
    /// each request in `expire_at` (counted from 0); the params of every request, in order.
    async fn list_with(
        pages: usize,
        expire_at: &[usize],
    ) -> (Result<HashMap<String, Value>, kube::Error>, Vec<ListParams>) {
        let requests = std::cell::RefCell::new(Vec::new());
        let listed = paged(|params: ListParams| {
            let request = requests.borrow().len();
            requests.borrow_mut().push(params.clone());
            async move {
                if expire_at.contains(&request) {
                    let status = kube::core::Status::failure("too old", "Expired").with_code(410);
                    return Err(kube::Error::Api(status.boxed()));
                }
                let page: usize = params
                    .continue_token
                    .as_deref()
                    .map_or(0, |token| token.parse().unwrap());
                let items = (0..2)
                    .map(|n| (format!("p{page}-{n}"), json!({"page": page})))
                    .collect();
                let next = (page + 1 < pages).then(|| (page + 1).to_string());
                Ok((items, next))
            }
        })
        .await;
        (listed, requests.into_inner())
    }

    #[tokio::test]
    async fn a_list_whose_continue_token_expires_starts_again_from_the_first_page() {
        // Three pages read in one go.
        let (listed, requests) = list_with(3, &[]).await;
        assert_eq!(listed.unwrap().len(), 6);
        let tokens: Vec<_> = requests.iter().map(|p| p.continue_token.clone()).collect();
        assert_eq!(tokens, [None, Some("1".into()), Some("2".into())]);
        assert!(requests.iter().all(|p| p.limit == Some(PAGE)));

        // The token expires at the third page: the list starts again and reads all three.
        let (listed, requests) = list_with(3, &[2]).await;
        let listed = listed.unwrap();
        assert_eq!(listed.len(), 6);
        assert!(listed.contains_key("p0-0") && listed.contains_key("p2-1"));
        let tokens: Vec<_> = requests.iter().map(|p| p.continue_token.clone()).collect();
        assert_eq!(
            tokens,
            [
                None,
                Some("1".into()),
                Some("2".into()),
                None,
                Some("1".into()),
                Some("2".into())
            ]
        );

        // Expired on every continuation: after RESTARTS restarts the error is the answer.
        let (listed, requests) = list_with(3, &[1, 3, 5, 7]).await;
        assert!(continue_expired(&listed.unwrap_err()));
        assert_eq!(requests.len(), 2 * (RESTARTS as usize + 1));

        // A 410 on the first page has no token to blame: no restart.
        let (listed, requests) = list_with(3, &[0]).await;
        assert!(listed.is_err());
        assert_eq!(requests.len(), 1);
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
