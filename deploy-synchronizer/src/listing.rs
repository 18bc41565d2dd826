//! Reading many objects of a kind: a kind with [`LIST_AT`] or more objects in one namespace is
//! read with one paged list instead of a request per object (live facts before a plan, health
//! after an apply), unless the namespace holds many more of that kind than are wanted (see
//! [`worth_listing`]). Only the wanted objects are kept, each as [`as_read`] makes it.

use std::collections::{BTreeMap, HashMap, HashSet};

use kube::Api;
use kube::api::{ApiResource, DynamicObject, ListParams, ObjectMeta, TypeMeta};
use serde_json::Value;

use crate::object::ObjectRef;

/// A kind in a namespace with at least this many objects to read is listed once instead of read
/// object by object (a cold sync of 1,000 objects: three lists instead of 1,000 GETs).
pub const LIST_AT: usize = 8;

/// `(group, kind, namespace)`: what one list reads.
pub type Group = (String, String, String);

/// The group `id` is listed with.
pub fn group_of(id: &ObjectRef) -> Group {
    (id.group.clone(), id.kind.clone(), id.namespace.clone())
}

/// `ids` split into the groups to list (each of [`LIST_AT`] or more objects of one kind in one
/// namespace) and the rest, to read one by one.
pub fn groups(ids: impl IntoIterator<Item = ObjectRef>) -> (Vec<Vec<ObjectRef>>, Vec<ObjectRef>) {
    let mut by_group: BTreeMap<Group, Vec<ObjectRef>> = BTreeMap::new();
    for id in ids {
        by_group.entry(group_of(&id)).or_default().push(id);
    }
    let mut listed = Vec::new();
    let mut singles = Vec::new();
    for (_, ids) in by_group {
        if ids.len() >= LIST_AT {
            listed.push(ids);
        } else {
            singles.extend(ids);
        }
    }
    (listed, singles)
}

/// A metadata-only read as an object without a body, for [`as_read`].
pub fn metadata_object(metadata: ObjectMeta) -> DynamicObject {
    DynamicObject {
        types: None,
        metadata,
        data: Value::Null,
    }
}

/// Objects a list page holds at most: the peak memory of reading a big kind is a page's
/// response, not the whole kind's.
const PAGE: u32 = 250;

/// How many times a paged list starts again from its first page when its continue token has
/// expired (the apiserver compacted the revision the earlier pages were read at).
const RESTARTS: u32 = 2;

/// A list reads at most this many times as many objects as are wanted (past one page): a
/// namespace with 5,400 ConfigMaps of 300 GitSyncs is not listed whole for each GitSync's 18
/// (the 300-GitSync bench read 1.6 million objects so, and held gigabytes while it did).
const SPARSE: u64 = 4;

/// Whether listing a kind is worth it, from its first page: `listed` objects on it and
/// `remaining` more (the apiserver's `remainingItemCount`; unknown: listed), `wanted` of all.
pub fn worth_listing(listed: usize, remaining: Option<i64>, wanted: usize) -> bool {
    let total = listed as u64 + remaining.map_or(0, |r| r.max(0) as u64);
    total <= u64::from(PAGE) || total <= SPARSE * wanted as u64
}

/// The `wanted` objects of `api`'s kind that exist, by name, as health reads them (see
/// [`as_read`]), fetched in pages of [`PAGE`]; only the metadata when `metadata_only`. `None`
/// when the kind is too sparse in wanted objects to list ([`worth_listing`]): read them one by
/// one.
pub async fn list_pages(
    api: &Api<DynamicObject>,
    resource: &ApiResource,
    metadata_only: bool,
    wanted: &HashSet<&str>,
) -> Result<Option<HashMap<String, Value>>, kube::Error> {
    paged(
        |params| list_page(api, resource, metadata_only, params),
        wanted,
    )
    .await
}

/// A page of a list: its objects by name, the token of the next page if there is one, and how
/// many objects remain after it if the apiserver says.
type Page = (Vec<(String, Value)>, Option<String>, Option<i64>);

/// The objects of every page `fetch` returns, from the first until one without a next token. A
/// continue token that expires midway restarts the list from the first page (up to
/// [`RESTARTS`] times), so that health neither mixes pages read at two revisions nor gives up on
/// a kind because a big list was slow.
async fn paged<Fetch, Fetched>(
    mut fetch: Fetch,
    wanted: &HashSet<&str>,
) -> Result<Option<HashMap<String, Value>>, kube::Error>
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
            Ok((items, next, remaining)) => {
                let first_page = params.continue_token.is_none();
                if first_page && !worth_listing(items.len(), remaining, wanted.len()) {
                    tracing::debug!(
                        wanted = wanted.len(),
                        listed = items.len(),
                        ?remaining,
                        "few of a kind's objects wanted; reading them one by one"
                    );
                    return Ok(None);
                }
                objects.extend(
                    items
                        .into_iter()
                        .filter(|(name, _)| wanted.contains(name.as_str())),
                );
                match next.filter(|token| !token.is_empty()) {
                    Some(token) => params = params.continue_token(&token),
                    None => return Ok(Some(objects)),
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
        let items = page
            .items
            .into_iter()
            .filter_map(|item| as_read(metadata_object(item.metadata), resource));
        let meta = page.metadata;
        Ok((items.collect(), meta.continue_, meta.remaining_item_count))
    } else {
        let page = api.list(&params).await?;
        let items = page
            .items
            .into_iter()
            .filter_map(|item| as_read(item, resource));
        let meta = page.metadata;
        Ok((items.collect(), meta.continue_, meta.remaining_item_count))
    }
}

/// Whether a list failed because its continue token is too old: `410 Gone`, reason `Expired`
/// (or no reason, from an apiserver that gives only the code).
fn continue_expired(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status)
        if status.code == 410 && matches!(status.reason.as_str(), "Expired" | "Gone" | ""))
}

/// A read object by name, as the synchronizer keeps it: with the list's `apiVersion` and `kind` (the
/// apiserver sends those once for the whole list, not in every item, and health is decided by
/// the kind), without `managedFields` (often half an object, never read by health), and for the
/// workloads of `apps` and `batch` without their pod template (most of the rest; health reads a
/// workload's replicas, selector, strategy and status). `None` without a name.
pub fn as_read(mut object: DynamicObject, resource: &ApiResource) -> Option<(String, Value)> {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::health::{self, HealthStatus};

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
        let names: Vec<String> = (0..pages)
            .flat_map(|p| (0..2).map(move |n| format!("p{p}-{n}")))
            .collect();
        let wanted: HashSet<&str> = names.iter().map(String::as_str).collect();
        let requests = std::cell::RefCell::new(Vec::new());
        let listed = paged(
            |params: ListParams| {
                let request = requests.borrow().len();
                requests.borrow_mut().push(params.clone());
                async move {
                    if expire_at.contains(&request) {
                        let status =
                            kube::core::Status::failure("too old", "Expired").with_code(410);
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
                    let remaining = Some(2 * (pages - page - 1) as i64);
                    Ok((items, next, remaining))
                }
            },
            &wanted,
        )
        .await
        .map(|listed| listed.expect("all wanted: listed"));
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
    fn a_kind_is_listed_unless_far_more_of_it_live_than_are_wanted() {
        // One page: always cheaper than eight reads or more.
        assert!(worth_listing(250, Some(0), 8));
        assert!(worth_listing(200, None, 8));
        // 1,000 ConfigMaps of one GitSync, 600 of them wanted.
        assert!(worth_listing(250, Some(750), 600));
        // 5,400 ConfigMaps of 300 GitSyncs, 18 wanted: read one by one.
        assert!(!worth_listing(250, Some(5150), 18));
        // Exactly four times as many as wanted: still listed.
        assert!(worth_listing(250, Some(150), 100));
        assert!(!worth_listing(250, Some(151), 100));
    }

    #[tokio::test]
    async fn only_the_wanted_objects_are_kept_and_a_sparse_kind_is_not_listed_past_its_first_page()
    {
        // 300 ConfigMaps in two pages (250 and 50); the apiserver counts what remains.
        let list = |wanted: HashSet<String>| async move {
            let requests = std::cell::Cell::new(0);
            let wanted: HashSet<&str> = wanted.iter().map(String::as_str).collect();
            let listed = paged(
                |params: ListParams| {
                    requests.set(requests.get() + 1);
                    let first = params.continue_token.is_none();
                    async move {
                        let range = if first { 0..250 } else { 250..300 };
                        let items = range.map(|n| (format!("cm-{n}"), json!({"n": n})));
                        let next = first.then(|| "1".to_owned());
                        Ok((items.collect(), next, first.then_some(50)))
                    }
                },
                &wanted,
            )
            .await
            .unwrap();
            (listed, requests.get())
        };
        // 76 wanted of 300: listed to the end, only the wanted kept.
        let wanted: HashSet<String> = (0..75).chain([260]).map(|n| format!("cm-{n}")).collect();
        let (listed, requests) = list(wanted.clone()).await;
        let listed = listed.expect("listed");
        assert_eq!(requests, 2);
        assert_eq!(listed.keys().cloned().collect::<HashSet<_>>(), wanted);
        // 2 wanted of 300: one page read, then they are read one by one.
        let wanted: HashSet<String> = ["cm-3".into(), "cm-260".into()].into();
        let (listed, requests) = list(wanted).await;
        assert!(listed.is_none());
        assert_eq!(requests, 1);
    }

    #[test]
    fn big_groups_are_listed_and_the_rest_read_one_by_one() {
        let id = |kind: &str, namespace: &str, n: usize| ObjectRef {
            group: String::new(),
            kind: kind.into(),
            namespace: namespace.into(),
            name: format!("{kind}-{n}").to_lowercase(),
        };
        let ids = (0..LIST_AT)
            .map(|n| id("ConfigMap", "shop", n))
            .chain((0..LIST_AT - 1).map(|n| id("ConfigMap", "billing", n)))
            .chain([id("Service", "shop", 0)]);
        let (listed, singles) = groups(ids);
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].len(), LIST_AT);
        assert!(
            listed[0]
                .iter()
                .all(|id| group_of(id) == group_of(&listed[0][0]))
        );
        assert_eq!(singles.len(), LIST_AT);
    }
}
