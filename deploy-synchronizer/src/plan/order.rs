//! Apply stages and the order of kinds.
//!
//! Two stages. **Foundations** holds what other objects need to exist at admission time and that
//! never needs a namespace itself: Namespaces, CustomResourceDefinitions, ClusterRoles and
//! ClusterRoleBindings. The applier must wait for the stage's CRDs to be `Established` before
//! stage two, or the custom resources in it are rejected as unknown kinds. **Resources** holds
//! everything else.
//!
//! ServiceAccounts stay in stage two on purpose: they are namespaced (so they would race their own
//! Namespace inside stage one), and nothing needs them at admission except Pods, which controllers
//! create later and retry. Roles stay in stage two for the same reason; RoleBindings may be
//! admitted before their Role because the synchronizer's identity holds `bind`.
//!
//! Within a stage the applier works with bounded parallelism, so the order there is a courtesy
//! (it is Argo CD's and Helm's kind order) and a guarantee of determinism, not a dependency
//! barrier: that is what stages are for.

use crate::object::ObjectRef;

use super::Apply;
use super::scope::{CRD_GROUP, CRD_KIND};

/// Argo CD's sync order by kind (gitops-engine `kindOrder`, itself Helm's install order), with
/// PriorityClass and RuntimeClass beside StorageClass. Kinds not listed — custom resources above
/// all — come after the list, and admission webhooks and policies come after them: registering a
/// webhook before its backend answers would make the apiserver reject every object it intercepts.
const KIND_ORDER: &[(&str, &str)] = &[
    ("", "Namespace"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("", "ResourceQuota"),
    ("", "LimitRange"),
    ("policy", "PodSecurityPolicy"),
    ("policy", "PodDisruptionBudget"),
    ("", "ServiceAccount"),
    ("", "Secret"),
    ("", "ConfigMap"),
    ("storage.k8s.io", "StorageClass"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("node.k8s.io", "RuntimeClass"),
    ("", "PersistentVolume"),
    ("", "PersistentVolumeClaim"),
    (CRD_GROUP, CRD_KIND),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("", "Service"),
    ("apps", "DaemonSet"),
    ("", "Pod"),
    ("", "ReplicationController"),
    ("apps", "ReplicaSet"),
    ("apps", "Deployment"),
    ("autoscaling", "HorizontalPodAutoscaler"),
    ("apps", "StatefulSet"),
    ("batch", "Job"),
    ("batch", "CronJob"),
    ("networking.k8s.io", "IngressClass"),
    ("networking.k8s.io", "Ingress"),
    ("apiregistration.k8s.io", "APIService"),
];

/// Applied after every other kind, custom resources included.
const LAST: &[(&str, &str)] = &[
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "MutatingAdmissionPolicyBinding",
    ),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
    ),
];

/// The kinds applied in stage one.
const FOUNDATIONS: &[(&str, &str)] = &[
    ("", "Namespace"),
    (CRD_GROUP, CRD_KIND),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
];

/// Position of a kind in the apply order; lower applies first. Matched on group and kind, so a
/// custom `Service` of some other group is a custom resource, not a core Service.
pub fn kind_rank(group: &str, kind: &str) -> usize {
    let find = |table: &[(&str, &str)]| table.iter().position(|&(g, k)| g == group && k == kind);
    if let Some(rank) = find(KIND_ORDER) {
        rank
    } else if let Some(last) = find(LAST) {
        KIND_ORDER.len() + 1 + last
    } else {
        KIND_ORDER.len()
    }
}

/// Deterministic apply order: kind order, then group and kind for kinds of equal rank (custom
/// resources), then namespace and name.
pub(super) fn apply_key(id: &ObjectRef) -> (usize, &str, &str, &str, &str) {
    ranked_key(kind_rank(&id.group, &id.kind), id)
}

/// [`apply_key`] with the kind's rank already known.
fn ranked_key(rank: usize, id: &ObjectRef) -> (usize, &str, &str, &str, &str) {
    (rank, &id.group, &id.kind, &id.namespace, &id.name)
}

/// Prune order: the reverse of the kind order — webhooks, custom resources and workloads go before
/// the Namespaces and CRDs they live in — and namespace and name ascending within a kind.
pub(super) fn prune_key(id: &ObjectRef) -> (std::cmp::Reverse<usize>, &str, &str, &str, &str) {
    let (rank, group, kind, namespace, name) = apply_key(id);
    (std::cmp::Reverse(rank), group, kind, namespace, name)
}

/// Which apply stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StageName {
    /// Namespaces, CRDs, ClusterRoles, ClusterRoleBindings.
    Foundations,
    /// Everything else.
    Resources,
}

impl StageName {
    fn of(id: &ObjectRef) -> Self {
        if FOUNDATIONS
            .iter()
            .any(|&(g, k)| g == id.group && k == id.kind)
        {
            Self::Foundations
        } else {
            Self::Resources
        }
    }
}

/// One apply stage: every object in it may be applied in parallel; the next stage starts when all
/// of them are applied and every CRD in `await_established` reports `Established=True`.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub name: StageName,
    pub objects: Vec<Apply>,
    /// CRDs applied in this stage whose kinds later stages (or the next sync) use.
    pub await_established: Vec<ObjectRef>,
}

/// Splits the objects into their stages, each in apply order; empty stages are left out.
pub(super) fn into_stages(objects: Vec<Apply>) -> Vec<Stage> {
    // The kind's rank is looked up once per object, not once per comparison.
    let mut ranked: Vec<(usize, Apply)> = objects
        .into_iter()
        .map(|apply| (kind_rank(&apply.id.group, &apply.id.kind), apply))
        .collect();
    ranked.sort_by(|(rank_a, a), (rank_b, b)| {
        ranked_key(*rank_a, &a.id).cmp(&ranked_key(*rank_b, &b.id))
    });
    let (foundations, resources): (Vec<_>, Vec<_>) = ranked
        .into_iter()
        .map(|(_, apply)| apply)
        .partition(|apply| StageName::of(&apply.id) == StageName::Foundations);
    let mut stages = Vec::with_capacity(2);
    if !foundations.is_empty() {
        let await_established = foundations
            .iter()
            .filter(|apply| apply.id.group == CRD_GROUP && apply.id.kind == CRD_KIND)
            .map(|apply| apply.id.clone())
            .collect();
        stages.push(Stage {
            name: StageName::Foundations,
            objects: foundations,
            await_established,
        });
    }
    if !resources.is_empty() {
        stages.push(Stage {
            name: StageName::Resources,
            objects: resources,
            await_established: Vec::new(),
        });
    }
    stages
}
