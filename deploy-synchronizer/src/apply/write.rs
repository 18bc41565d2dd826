//! One request at a time: apply (or dry-run) an object, delete it, re-create it, wait for a CRD,
//! read the live facts the plan needs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, ValidationDirective};
use serde_json::{Value, json};
use sluice_shared::naming::FIELD_MANAGER;

use super::{ApplyError, Kinds, ObjectFailure, PARALLELISM, Problem, RECREATE_TIMEOUT, Resolved};
use crate::listing;
use crate::object::ObjectRef;
use crate::plan::{Apply, LiveFacts};

/// How often a wait polls.
const POLL: Duration = Duration::from_millis(200);

/// Server-side applies `apply` as field manager `sluice`, forced, strict about unknown fields;
/// with `dry_run`, only asks whether the apiserver would accept it. Returns the object as the
/// apiserver made it.
pub(super) async fn apply_one(
    writer: &Client,
    resolved: &Resolved,
    apply: &Apply,
    dry_run: bool,
) -> Result<Value, ObjectFailure> {
    let api = resolved.api(writer.clone(), &apply.id);
    let params = PatchParams {
        dry_run,
        field_validation: Some(ValidationDirective::Strict),
        ..PatchParams::apply(FIELD_MANAGER).force()
    };
    match api
        .patch(&apply.id.name, &params, &Patch::Apply(&apply.object))
        .await
    {
        Ok(object) => {
            if !dry_run {
                sluice_shared::failpoint::point("sync.applied");
            }
            Ok(serde_json::to_value(object).unwrap_or(Value::Null))
        }
        Err(error) => Err(failure(&apply.id, &apply.source, &error)),
    }
}

/// Deletes `apply`'s object (background propagation: its dependents, such as a Deployment's
/// ReplicaSets, are collected after it), waits until it is gone, and applies it again. `why`
/// says why, in the log and in a failure (`to re-create it over an immutable field`).
pub(super) async fn recreate(
    writer: &Client,
    resolved: &Resolved,
    apply: &Apply,
    why: &str,
) -> Result<Value, ObjectFailure> {
    let api = resolved.api(writer.clone(), &apply.id);
    tracing::info!(object = %apply.id, "deleting {why}");
    match api
        .delete(&apply.id.name, &DeleteParams::background())
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(error) => return Err(failure(&apply.id, &apply.source, &error)),
    }
    let start = Instant::now();
    loop {
        match api.get_metadata_opt(&apply.id.name).await {
            Ok(None) => break,
            Ok(Some(_)) if start.elapsed() < RECREATE_TIMEOUT => tokio::time::sleep(POLL).await,
            Ok(Some(_)) => {
                return Err(ObjectFailure {
                    id: apply.id.clone(),
                    source: apply.source.clone(),
                    problem: Problem::Refused,
                    message: format!(
                        "deleted {why}, but still there after {}s (a finalizer?)",
                        RECREATE_TIMEOUT.as_secs()
                    ),
                });
            }
            Err(error) => return Err(failure(&apply.id, &apply.source, &error)),
        }
    }
    apply_one(writer, resolved, apply, false).await
}

/// Deletes `id` (background propagation). `Ok(false)` when it was already gone.
pub(super) async fn delete(
    writer: &Client,
    kinds: &Kinds,
    id: &ObjectRef,
    api_version: &str,
) -> Result<bool, ObjectFailure> {
    let Some(resolved) = kinds.resolve(&id.group, api_version, &id.kind) else {
        // The kind is gone (its CRD was deleted), and with it every object of the kind.
        return Ok(false);
    };
    let api = resolved.api(writer.clone(), id);
    match api.delete(&id.name, &DeleteParams::background()).await {
        Ok(_) => {
            tracing::info!(object = %id, "pruned");
            sluice_shared::failpoint::point("sync.pruned");
            Ok(true)
        }
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(error) => Err(failure(id, "", &error)),
    }
}

/// Waits until CRD `name` reports `Established=True`.
pub(super) async fn await_established(
    reader: &Client,
    name: &str,
    timeout: Duration,
) -> Result<(), ApplyError> {
    let api: Api<CustomResourceDefinition> = Api::all(reader.clone());
    let start = Instant::now();
    loop {
        let last = match api.get_opt(name).await {
            Ok(Some(crd)) => {
                let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
                let established = conditions.iter().find(|c| c.type_ == "Established");
                match established {
                    Some(c) if c.status == "True" => return Ok(()),
                    Some(c) => format!(
                        "Established={}: {}",
                        c.status,
                        c.message.as_deref().unwrap_or("")
                    ),
                    None => "no Established condition yet".to_owned(),
                }
            }
            Ok(None) => "not found".to_owned(),
            Err(error) => error.to_string(),
        };
        if start.elapsed() >= timeout {
            return Err(ApplyError::NotEstablished {
                name: name.to_owned(),
                waited: timeout,
                last,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The live facts (owner annotation, prune opt-out) of those of `ids` that exist. Kinds the
/// cluster does not serve yet have no live objects. Big groups (see [`listing::groups`]) are read
/// with one paged metadata list instead of one request an object, unless their kind is sparse
/// in them ([`listing::worth_listing`]).
pub async fn read_live_facts(
    reader: &Client,
    kinds: &Kinds,
    ids: impl IntoIterator<Item = ObjectRef>,
) -> Result<BTreeMap<ObjectRef, LiveFacts>, ApplyError> {
    let (listed, mut singles) = listing::groups(ids);
    let mut live = BTreeMap::new();
    for ids in listed {
        let Some(resolved) = kinds.resolve(&ids[0].group, "", &ids[0].kind) else {
            continue;
        };
        let api = resolved.api(reader.clone(), &ids[0]);
        let wanted = ids.iter().map(|id| id.name.as_str()).collect();
        let Some(by_name) = listing::list_pages(&api, &resolved.resource, true, &wanted)
            .await
            .map_err(ApplyError::Read)?
        else {
            singles.extend(ids);
            continue;
        };
        for id in ids {
            if let Some(object) = by_name.get(&id.name) {
                live.insert(id, LiveFacts::of(object));
            }
        }
    }
    let results: Vec<Result<Option<(ObjectRef, LiveFacts)>, kube::Error>> = stream::iter(singles)
        .map(|id| async move {
            let Some(resolved) = kinds.resolve(&id.group, "", &id.kind) else {
                return Ok(None);
            };
            let api = resolved.api(reader.clone(), &id);
            let meta = api.get_metadata_opt(&id.name).await?;
            Ok(meta.map(|meta| {
                let metadata = serde_json::to_value(&meta.metadata).unwrap_or(Value::Null);
                (id, LiveFacts::of(&json!({ "metadata": metadata })))
            }))
        })
        .buffer_unordered(PARALLELISM)
        .collect()
        .await;
    for result in results {
        if let Some((id, facts)) = result.map_err(ApplyError::Read)? {
            live.insert(id, facts);
        }
    }
    Ok(live)
}

/// An apiserver error as an object failure, with the fix where there is an obvious one.
fn failure(id: &ObjectRef, source: &str, error: &kube::Error) -> ObjectFailure {
    let (problem, message) = match error {
        kube::Error::Api(status) => {
            let message = if status.message.is_empty() {
                status.reason.clone()
            } else {
                status.message.clone()
            };
            if status.code == 422 && message.contains("field is immutable") {
                (
                    Problem::Immutable,
                    format!(
                        "{message}; the change needs the object deleted and re-created: set \
                         `spec.recreateOnImmutableChange: true` on the GitSync, or delete it by hand"
                    ),
                )
            } else {
                (Problem::Refused, message)
            }
        }
        other => (Problem::Unreachable, other.to_string()),
    };
    ObjectFailure {
        id: id.clone(),
        source: source.to_owned(),
        problem,
        message,
    }
}

#[cfg(test)]
mod tests {
    use kube::core::Status;

    use super::*;

    fn id() -> ObjectRef {
        ObjectRef {
            group: "apps".into(),
            kind: "Deployment".into(),
            namespace: "shop".into(),
            name: "web".into(),
        }
    }

    fn api_error(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(Box::new(Status {
            code,
            message: message.into(),
            reason: "Invalid".into(),
            ..Status::default()
        }))
    }

    #[test]
    fn an_immutable_field_is_named_with_the_fix() {
        let error = api_error(
            422,
            "Deployment.apps \"web\" is invalid: spec.selector: Invalid value: ...: field is immutable",
        );
        let failure = failure(&id(), "apps/web.yaml:3", &error);
        assert_eq!(failure.problem, Problem::Immutable);
        assert!(
            failure.message.contains("recreateOnImmutableChange"),
            "{}",
            failure.message
        );
        assert!(
            failure
                .to_string()
                .starts_with("apps/Deployment/shop/web (from apps/web.yaml:3): "),
            "{failure}"
        );
    }

    #[test]
    fn other_refusals_keep_the_apiserver_message() {
        let failure = failure(
            &id(),
            "a.yaml:1",
            &api_error(400, "unknown field \"spec.replica\""),
        );
        assert_eq!(failure.problem, Problem::Refused);
        assert_eq!(failure.message, "unknown field \"spec.replica\"");
    }

    #[test]
    fn validation_errors_list_every_object() {
        let one = failure(&id(), "a.yaml:1", &api_error(400, "bad"));
        let two = ObjectFailure {
            source: "b.yaml:7".into(),
            ..one.clone()
        };
        let error = ApplyError::Validation {
            failures: vec![one, two],
            written: false,
        };
        let text = error.to_string();
        assert!(
            text.contains("refused 2 object(s); nothing was written"),
            "{text}"
        );
        assert!(
            text.contains("(from a.yaml:1): bad; apps/Deployment/shop/web (from b.yaml:7)"),
            "{text}"
        );
    }
}
