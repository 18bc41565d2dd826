//! The shell around `health`: reads each inventory object (and a workload's pods when it is not
//! healthy) and rolls them into the sync's health.

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};
use serde_json::Value;

use crate::apply::{Kinds, PARALLELISM};
use crate::health::{self, Health, HealthStatus};
use crate::object::ObjectRef;
use crate::plan::Inventory;

/// The health of every object in `inventory`, aggregated: the worst part, named.
pub async fn assess_inventory(client: &Client, kinds: &Kinds, inventory: &Inventory) -> Health {
    let parts: Vec<(ObjectRef, Health)> = stream::iter(inventory.ids().cloned())
        .map(|id| async move {
            let api_version = inventory.api_version(&id).unwrap_or_default();
            let health = assess_one(client, kinds, &id, &api_version).await;
            (id, health)
        })
        .buffer_unordered(PARALLELISM)
        .collect()
        .await;
    health::aggregate(parts)
}

async fn assess_one(client: &Client, kinds: &Kinds, id: &ObjectRef, api_version: &str) -> Health {
    let Some(resolved) = kinds.resolve(&id.group, api_version, &id.kind) else {
        return Health::missing();
    };
    let live = match resolved.api(client.clone(), id).get_opt(&id.name).await {
        Ok(Some(object)) => serde_json::to_value(object).unwrap_or(Value::Null),
        Ok(None) => return Health::missing(),
        Err(error) => return Health::unknown(format!("cannot read it: {error}")),
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
    let Some(selector) = label_selector(&live) else {
        return assessed;
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), &id.namespace);
    match pods.list(&ListParams::default().labels(&selector)).await {
        Ok(list) => {
            let pods: Vec<Value> = list
                .items
                .iter()
                .filter_map(|pod| serde_json::to_value(pod).ok())
                .collect();
            health::explain_workload(&assessed, &pods)
        }
        Err(error) => {
            tracing::debug!(object = %id, %error, "cannot list the workload's pods");
            assessed
        }
    }
}

/// `spec.selector.matchLabels` as a label selector (`app=web,tier=front`). Workloads whose
/// selector uses only `matchExpressions` are assessed without their pods.
fn label_selector(workload: &Value) -> Option<String> {
    let labels = workload
        .pointer("/spec/selector/matchLabels")?
        .as_object()?;
    let selector: Vec<String> = labels
        .iter()
        .filter_map(|(key, value)| Some(format!("{key}={}", value.as_str()?)))
        .collect();
    (!selector.is_empty()).then(|| selector.join(","))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn selector_from_match_labels() {
        let deployment =
            json!({"spec": {"selector": {"matchLabels": {"app": "web", "tier": "front"}}}});
        assert_eq!(
            label_selector(&deployment).as_deref(),
            Some("app=web,tier=front")
        );
        assert_eq!(label_selector(&json!({"spec": {}})), None);
    }
}
