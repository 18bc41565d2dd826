//! Object identity and the marks Sluice leaves on what it applies. Every other module of the core
//! speaks of objects through [`ObjectRef`].

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Annotation naming the sync resource (`<namespace>/<name>`) that applied an object. Prune and
/// the ownership conflict check read it; nothing without it is ever deleted.
pub const OWNER_ANNOTATION: &str = sluice_shared::key!("owner");
/// Label set on every applied object, so watchers can select what Sluice manages.
pub const MANAGED_LABEL: &str = sluice_shared::key!("managed");
/// Annotation that opts an object out of pruning: `sluice.dev/prune: disabled`.
pub const PRUNE_ANNOTATION: &str = sluice_shared::key!("prune");
/// The value of [`PRUNE_ANNOTATION`] that keeps an object when it leaves the render.
pub const PRUNE_DISABLED: &str = "disabled";

/// Which object: group, kind, namespace (empty for cluster-scoped) and name. The API version is
/// deliberately not part of identity: `apps/v1` and a later `apps/v2` Deployment are one object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    pub group: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    /// Identity of a manifest: `None` when apiVersion, kind or metadata.name is missing.
    pub fn of(object: &Value) -> Option<Self> {
        let api_version = object.get("apiVersion")?.as_str()?;
        let kind = object.get("kind")?.as_str()?;
        let metadata = object.get("metadata")?;
        let name = metadata.get("name")?.as_str()?;
        let namespace = metadata
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        if api_version.is_empty() || kind.is_empty() || name.is_empty() {
            return None;
        }
        Some(Self {
            group: group_of(api_version).to_owned(),
            kind: kind.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }

    pub fn is_cluster_scoped(&self) -> bool {
        self.namespace.is_empty()
    }
}

/// `group/kind/namespace/name`, with `core` for the empty group and `_` for no namespace, e.g.
/// `apps/Deployment/shop/web` or `core/Namespace/_/shop`.
impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        let namespace = if self.namespace.is_empty() {
            "_"
        } else {
            &self.namespace
        };
        write!(f, "{group}/{}/{namespace}/{}", self.kind, self.name)
    }
}

/// The group of an apiVersion: `apps/v1` -> `apps`, `v1` -> `` (core).
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn identity_ignores_version() {
        let v1 = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                        "metadata": {"name": "web", "namespace": "shop"}});
        let v2 = json!({"apiVersion": "apps/v2", "kind": "Deployment",
                        "metadata": {"name": "web", "namespace": "shop"}});
        assert_eq!(ObjectRef::of(&v1), ObjectRef::of(&v2));
        assert_eq!(
            ObjectRef::of(&v1).unwrap().to_string(),
            "apps/Deployment/shop/web"
        );
    }

    #[test]
    fn core_and_cluster_scoped() {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}});
        let r = ObjectRef::of(&ns).unwrap();
        assert!(r.is_cluster_scoped());
        assert_eq!(r.to_string(), "core/Namespace/_/shop");
    }

    #[test]
    fn missing_parts_have_no_identity() {
        assert_eq!(
            ObjectRef::of(&json!({"kind": "ConfigMap", "metadata": {"name": "a"}})),
            None
        );
        assert_eq!(
            ObjectRef::of(&json!({"apiVersion": "v1", "metadata": {"name": "a"}})),
            None
        );
        assert_eq!(
            ObjectRef::of(&json!({"apiVersion": "v1", "kind": "ConfigMap"})),
            None
        );
    }
}
