//! Whether a kind is namespaced. The cluster's discovery answers for kinds it serves; a
//! CustomResourceDefinition in the same render answers for the kinds it is about to create, which
//! is what lets one commit carry a CRD and its first custom resources.

use std::collections::BTreeMap;

use serde_json::Value;

/// Where objects of a kind live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Namespaced,
    Cluster,
}

impl Scope {
    /// The value of a CRD's `spec.scope`.
    fn parse(crd_scope: &str) -> Option<Self> {
        match crd_scope {
            "Namespaced" => Some(Self::Namespaced),
            "Cluster" => Some(Self::Cluster),
            _ => None,
        }
    }
}

/// Answers `(group, kind) -> scope` for the kinds the cluster serves; `None` for kinds it does not
/// know. The daemon backs it with API discovery; tests and offline commands with a closure such as
/// `builtin_scope` (the tests').
pub trait ScopeLookup {
    fn scope_of(&self, group: &str, kind: &str) -> Option<Scope>;
}

impl<F: Fn(&str, &str) -> Option<Scope>> ScopeLookup for F {
    fn scope_of(&self, group: &str, kind: &str) -> Option<Scope> {
        self(group, kind)
    }
}

/// The group of CustomResourceDefinitions.
pub(super) const CRD_GROUP: &str = "apiextensions.k8s.io";
pub(super) const CRD_KIND: &str = "CustomResourceDefinition";

/// The kinds declared by the CRDs among `objects`, with their scope. A CRD without a readable
/// group, kind or scope declares nothing; the apiserver's dry-run reports what is wrong with it.
pub(super) fn declared_by_crds<'a>(
    objects: impl IntoIterator<Item = &'a Value>,
) -> BTreeMap<(String, String), Scope> {
    objects
        .into_iter()
        .filter(|object| is_crd(object))
        .filter_map(|crd| {
            let spec = crd.get("spec")?;
            let group = spec.get("group")?.as_str()?;
            let kind = spec.get("names")?.get("kind")?.as_str()?;
            let scope = Scope::parse(spec.get("scope")?.as_str()?)?;
            Some(((group.to_owned(), kind.to_owned()), scope))
        })
        .collect()
}

fn is_crd(object: &Value) -> bool {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    object.get("kind").and_then(Value::as_str) == Some(CRD_KIND)
        && crate::object::group_of(api_version) == CRD_GROUP
}

/// Discovery first, then the render's CRDs. A CRD's scope is immutable, so the two can only
/// disagree when the render tries to change it, and the apiserver rejects that CRD anyway.
pub(super) struct Resolver<'a> {
    pub cluster: &'a dyn ScopeLookup,
    pub declared: BTreeMap<(String, String), Scope>,
}

impl Resolver<'_> {
    pub fn scope_of(&self, group: &str, kind: &str) -> Option<Scope> {
        self.cluster.scope_of(group, kind).or_else(|| {
            self.declared
                .get(&(group.to_owned(), kind.to_owned()))
                .copied()
        })
    }
}

/// The scope of the built-in kinds of Kubernetes (1.3x), for planning without a cluster (the CLI,
/// tests). Custom resources are unknown here: pair it with discovery or a CRD in the render.
#[cfg(test)]
pub fn builtin_scope(group: &str, kind: &str) -> Option<Scope> {
    use Scope::{Cluster, Namespaced};
    let scope = match (group, kind) {
        ("", "Namespace" | "Node" | "PersistentVolume") => Cluster,
        (
            "",
            "ConfigMap"
            | "Secret"
            | "Service"
            | "ServiceAccount"
            | "Pod"
            | "PersistentVolumeClaim"
            | "ReplicationController"
            | "ResourceQuota"
            | "LimitRange"
            | "Endpoints"
            | "PodTemplate"
            | "Event",
        ) => Namespaced,
        (
            "apps",
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "ControllerRevision",
        ) => Namespaced,
        ("batch", "Job" | "CronJob") => Namespaced,
        ("autoscaling", "HorizontalPodAutoscaler") => Namespaced,
        ("policy", "PodDisruptionBudget") => Namespaced,
        ("networking.k8s.io", "Ingress" | "NetworkPolicy") => Namespaced,
        ("networking.k8s.io", "IngressClass") => Cluster,
        ("discovery.k8s.io", "EndpointSlice") => Namespaced,
        ("coordination.k8s.io", "Lease") => Namespaced,
        ("rbac.authorization.k8s.io", "Role" | "RoleBinding") => Namespaced,
        ("rbac.authorization.k8s.io", "ClusterRole" | "ClusterRoleBinding") => Cluster,
        ("storage.k8s.io", "StorageClass" | "CSIDriver" | "VolumeAttachment") => Cluster,
        ("scheduling.k8s.io", "PriorityClass") => Cluster,
        ("node.k8s.io", "RuntimeClass") => Cluster,
        (CRD_GROUP, CRD_KIND) => Cluster,
        ("apiregistration.k8s.io", "APIService") => Cluster,
        (
            "admissionregistration.k8s.io",
            "MutatingWebhookConfiguration"
            | "ValidatingWebhookConfiguration"
            | "ValidatingAdmissionPolicy"
            | "ValidatingAdmissionPolicyBinding"
            | "MutatingAdmissionPolicy"
            | "MutatingAdmissionPolicyBinding",
        ) => Cluster,
        _ => return None,
    };
    Some(scope)
}
