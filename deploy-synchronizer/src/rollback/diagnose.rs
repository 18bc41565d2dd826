//! The shell that gathers a revert pull request's [`Diagnosis`]: the health of each applied
//! object, the failing pods of the unhealthy workloads, and the Warning events around them — what
//! a person on call would otherwise look up with kubectl. Rendering is [`crate::rollback::body`]'s.
//!
//! Gathering is best effort: the revision has failed already and the pull request is worth
//! opening with what could be read, so an error becomes a note in the diagnosis, never a failure.
//! The work is bounded ([`OBJECTS`], [`PODS_PER_WORKLOAD`], one event list per namespace), as a
//! revision that broke everything must not make the diagnosis take minutes.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::ListParams;
use kube::{Api, Client};
use serde_json::Value;

use super::{CommitFacts, Diagnosis, EventFacts, ObjectFacts, PodFacts};
use crate::apply::Kinds;
use crate::assess::{assess_objects, match_labels, read_one};
use crate::health::{self, Health, HealthStatus};
use crate::object::ObjectRef;
use crate::plan::Inventory;

/// The most unhealthy objects diagnosed; the rest are counted in a note.
const OBJECTS: usize = 20;
/// The most failing pods shown of one workload.
const PODS_PER_WORKLOAD: usize = 10;

/// Why `revision` failed, as far as the cluster tells: see the module docs.
pub(crate) async fn diagnose(
    client: &Client,
    kinds: &Kinds,
    inventory: &Inventory,
    revision: &str,
    base: &str,
    reason: &str,
    commit: Option<CommitFacts>,
) -> Diagnosis {
    let mut d = Diagnosis {
        revision: revision.to_owned(),
        base: base.to_owned(),
        reason: reason.to_owned(),
        commit,
        ..Diagnosis::default()
    };
    let unhealthy = unhealthy(assess_objects(client, kinds, inventory).await);
    if unhealthy.len() > OBJECTS {
        d.notes.push(format!(
            "{} objects are not healthy; the {OBJECTS} worst are diagnosed here",
            unhealthy.len()
        ));
    }
    // What each namespace's Warning events are looked through for.
    let mut watched: BTreeMap<String, Vec<Watched>> = BTreeMap::new();
    for (id, health) in unhealthy.into_iter().take(OBJECTS) {
        d.objects.push(ObjectFacts::of(&id, &health));
        let mut pods = Vec::new();
        if is_workload(&id) {
            match failing_pods(client, kinds, inventory, &id).await {
                Ok((shown, total)) => {
                    if total > shown.len() {
                        d.notes.push(format!(
                            "{} has {total} failing pods; {} are shown",
                            name(&id),
                            shown.len()
                        ));
                    }
                    pods = shown;
                }
                Err(error) => d
                    .notes
                    .push(format!("could not list pods of {}: {error}", name(&id))),
            }
        }
        if !id.is_cluster_scoped() {
            let names = pods.iter().map(|pod| pod.name.clone()).collect();
            watched
                .entry(id.namespace.clone())
                .or_default()
                .push(Watched { id, pods: names });
        }
        d.pods.extend(pods);
    }
    for (namespace, watched) in &watched {
        match warning_events(client, namespace).await {
            Ok(events) => d.events.extend(
                events
                    .into_iter()
                    .filter(|event| watched.iter().any(|w| w.concerns(event))),
            ),
            Err(error) => d.notes.push(format!(
                "could not list the Warning events of namespace {namespace}: {error}"
            )),
        }
    }
    d
}

/// The objects that are not healthy (a suspended one is someone's choice), worst first.
fn unhealthy(parts: Vec<(ObjectRef, Health)>) -> Vec<(ObjectRef, Health)> {
    let mut parts: Vec<(ObjectRef, Health)> = parts
        .into_iter()
        .filter(|(_, health)| {
            !matches!(
                health.status,
                HealthStatus::Healthy | HealthStatus::Suspended
            )
        })
        .collect();
    parts.sort_by(|(a, x), (b, y)| y.status.cmp(&x.status).then_with(|| a.cmp(b)));
    parts
}

fn is_workload(id: &ObjectRef) -> bool {
    id.group == "apps"
        && matches!(
            id.kind.as_str(),
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet"
        )
}

/// `Deployment demo/web`.
fn name(id: &ObjectRef) -> String {
    format!("{} {}/{}", id.kind, id.namespace, id.name)
}

/// The pods of workload `id` (by its `matchLabels`) that are not healthy, worst first, at most
/// [`PODS_PER_WORKLOAD`] of them, and how many there are.
async fn failing_pods(
    client: &Client,
    kinds: &Kinds,
    inventory: &Inventory,
    id: &ObjectRef,
) -> Result<(Vec<PodFacts>, usize), String> {
    let api_version = inventory.api_version(id).unwrap_or_default();
    let resolved = kinds
        .resolve(&id.group, &api_version, &id.kind)
        .ok_or_else(|| format!("the cluster does not serve {api_version} {}", id.kind))?;
    let live = match read_one(client, &resolved, id).await {
        Ok(Some((_, live))) => live,
        Ok(None) => return Ok((Vec::new(), 0)),
        Err(error) => return Err(error.to_string()),
    };
    let Some(selector) = match_labels(&live) else {
        return Err("its selector has no matchLabels".to_owned());
    };
    let selector: Vec<String> = selector
        .iter()
        .map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or_default()))
        .collect();
    let api: Api<Pod> = Api::namespaced(client.clone(), &id.namespace);
    let listed = api
        .list(&ListParams::default().labels(&selector.join(",")))
        .await
        .map_err(|error| error.to_string())?;
    let mut failing: Vec<(Health, Value)> = listed
        .items
        .into_iter()
        .filter_map(|mut pod| {
            pod.metadata.managed_fields = None;
            serde_json::to_value(pod).ok()
        })
        .map(|pod| (health::assess(&pod), pod))
        .filter(|(health, _)| health.status != HealthStatus::Healthy)
        .collect();
    failing.sort_by_key(|(health, _)| std::cmp::Reverse(health.status));
    let owner = format!("{}/{}", id.kind, id.name);
    let shown = failing
        .iter()
        .take(PODS_PER_WORKLOAD)
        .map(|(_, pod)| PodFacts::from_pod(pod, &owner))
        .collect();
    Ok((shown, failing.len()))
}

/// The Warning events of `namespace`.
async fn warning_events(client: &Client, namespace: &str) -> Result<Vec<EventFacts>, String> {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let listed = api
        .list(&ListParams::default().fields("type=Warning"))
        .await
        .map_err(|error| error.to_string())?;
    Ok(listed
        .items
        .iter()
        .filter_map(|event| serde_json::to_value(event).ok())
        .map(|event| EventFacts::from_event(&event))
        .collect())
}

/// An unhealthy object and its failing pods, whose events the diagnosis shows.
struct Watched {
    id: ObjectRef,
    pods: Vec<String>,
}

impl Watched {
    /// Whether `event` is about the object, one of its pods, or (for a Deployment) one of its
    /// ReplicaSets — named `<deployment>-<hash>`.
    fn concerns(&self, event: &EventFacts) -> bool {
        let Some((kind, name)) = event.object.split_once('/') else {
            return false;
        };
        match kind {
            _ if kind == self.id.kind && name == self.id.name => true,
            "ReplicaSet" if self.id.kind == "Deployment" => name
                .strip_prefix(self.id.name.as_str())
                .is_some_and(|rest| rest.starts_with('-')),
            "Pod" => self.pods.iter().any(|pod| pod == name),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(kind: &str, name: &str) -> ObjectRef {
        ObjectRef {
            group: "apps".into(),
            kind: kind.into(),
            namespace: "demo".into(),
            name: name.into(),
        }
    }

    fn event(object: &str) -> EventFacts {
        EventFacts {
            object: object.into(),
            ..EventFacts::default()
        }
    }

    #[test]
    fn the_events_of_a_workload_its_replica_sets_and_failing_pods() {
        let web = Watched {
            id: id("Deployment", "web"),
            pods: vec!["web-6d8f7c9b54-q7x2m".into()],
        };
        assert!(web.concerns(&event("Deployment/web")));
        assert!(web.concerns(&event("ReplicaSet/web-6d8f7c9b54")));
        assert!(web.concerns(&event("Pod/web-6d8f7c9b54-q7x2m")));
        assert!(!web.concerns(&event("ReplicaSet/webshop-6d8f7c9b54")));
        assert!(!web.concerns(&event("ReplicaSet/web")));
        assert!(!web.concerns(&event("Pod/web-6d8f7c9b54-healthy")));
        assert!(!web.concerns(&event("Deployment/api")));
        assert!(!web.concerns(&event("Service/web")));

        let db = Watched {
            id: id("StatefulSet", "db"),
            pods: vec![],
        };
        assert!(db.concerns(&event("StatefulSet/db")));
        assert!(!db.concerns(&event("ReplicaSet/db-1")));
    }

    #[test]
    fn only_objects_that_are_not_healthy_worst_first() {
        let parts = vec![
            (id("Deployment", "a"), Health::healthy("")),
            (id("Deployment", "b"), Health::progressing("rolling")),
            (id("Deployment", "c"), Health::suspended("paused")),
            (id("Deployment", "d"), Health::degraded("stuck")),
            (id("Deployment", "e"), Health::missing()),
        ];
        let names: Vec<String> = unhealthy(parts)
            .into_iter()
            .map(|(id, _)| id.name)
            .collect();
        assert_eq!(names, vec!["d", "e", "b"]);
    }
}
