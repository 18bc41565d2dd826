//! Placing one desired object: its scope, its namespace, whether this sync may write there, and
//! the ownership marks. What comes out is exactly what the applier sends.

use serde_json::{Map, Value};

use crate::object::{MANAGED_LABEL, OWNER_ANNOTATION, ObjectRef};

use super::refusal::Refusal;
use super::scope::{Resolver, Scope};
use super::{Apply, Desired, Settings};

/// Places `desired`, or says why it may not be applied.
pub(super) fn place(
    desired: Desired,
    scopes: &Resolver<'_>,
    settings: &Settings,
) -> Result<Apply, Box<Refusal>> {
    let Desired {
        mut id,
        mut object,
        source,
    } = desired;
    let Some(scope) = scopes.scope_of(&id.group, &id.kind) else {
        return Err(Box::new(Refusal::UnknownKind { id, origin: source }));
    };
    match scope {
        Scope::Cluster => {
            // The apiserver ignores a namespace on a cluster-scoped object; so does identity, or
            // the inventory would hold a name the cluster does not know.
            id.namespace.clear();
            if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                metadata.remove("namespace");
            }
            if !settings.may_hold(&id) {
                return Err(Box::new(Refusal::ClusterScopedNotAllowed {
                    id,
                    origin: source,
                    sync: settings.owner(),
                }));
            }
        }
        Scope::Namespaced => {
            if id.namespace.is_empty() {
                id.namespace = settings.default_namespace().to_owned();
            }
            // Written even when the manifest named it, so object and identity cannot disagree.
            metadata(&mut object).insert("namespace".into(), id.namespace.clone().into());
            if !settings.may_hold(&id) {
                return Err(Box::new(Refusal::NamespaceNotAllowed {
                    namespace: id.namespace.clone(),
                    id,
                    origin: source,
                    sync: settings.owner(),
                    allowed: settings.writable_namespaces(),
                }));
            }
        }
    }
    mark(&mut object, &settings.owner());
    if id.group.is_empty() && id.kind == "Secret" {
        fold_string_data(&mut object);
    }
    Ok(Apply { id, object, source })
}

/// A Secret's `stringData` folded into `data` (base64), as the apiserver stores it, a
/// `stringData` key winning over the same key of `data` as it does there. Applied as written,
/// `stringData` would be recorded in the field set Sluice owns but never stored, so an edit of
/// `data` would go unseen by drift detection and `diff`; folded, what Sluice owns and compares is
/// what is stored. (Flux's server-side apply normalizes Secrets the same way.)
pub(super) fn fold_string_data(object: &mut Value) {
    use base64::Engine;
    let Some(map) = object.as_object_mut() else {
        return;
    };
    let Some(Value::Object(strings)) = map.remove("stringData") else {
        return;
    };
    let data = map_at(map, "data");
    for (key, value) in strings {
        let text = match value {
            Value::String(text) => text,
            other => other.to_string(),
        };
        data.insert(
            key,
            base64::engine::general_purpose::STANDARD
                .encode(text)
                .into(),
        );
    }
}

/// Sets the label that lets watchers select Sluice's objects and the annotation naming the owning
/// sync, which prune and the conflict check trust.
fn mark(object: &mut Value, owner: &str) {
    let metadata = metadata(object);
    map_at(metadata, "labels").insert(MANAGED_LABEL.into(), "true".into());
    map_at(metadata, "annotations").insert(OWNER_ANNOTATION.into(), owner.into());
}

/// `object.metadata`, created when missing (render guarantees an object with metadata.name, so
/// replacing a non-map here only happens to inputs the apiserver would reject anyway).
fn metadata(object: &mut Value) -> &mut Map<String, Value> {
    if !object.is_object() {
        *object = Value::Object(Map::new());
    }
    let root = object.as_object_mut().expect("made an object above");
    map_at(root, "metadata")
}

fn map_at<'a>(parent: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = parent
        .entry(key)
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut().expect("made an object above")
}

/// True when `id` is a Namespace, which is cluster-scoped but counts as writing to the namespace it
/// names: a sync that may write into `shop` may create `shop`.
pub(super) fn is_namespace(id: &ObjectRef) -> bool {
    id.group.is_empty() && id.kind == "Namespace"
}
