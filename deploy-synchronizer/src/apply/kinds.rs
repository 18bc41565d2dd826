//! The kinds the cluster serves, from API discovery: what plan/ asks (`(group, kind) -> scope`)
//! and what the applier needs to address an object (`ApiResource` and scope).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope as KubeScope};

use crate::object::ObjectRef;
use crate::plan::{Scope, ScopeLookup};

/// One discovery of the cluster's kinds. Run again after CRDs become Established: kinds they
/// declare are unknown to an older discovery.
pub struct Kinds {
    discovery: Discovery,
    /// Every kind served, by `(group, version, kind)`, and by `(group, kind)` at its group's
    /// recommended version: indexed once per discovery. A sync looks up every object's kind
    /// (a thousand objects: a thousand lookups), and kube's own lookups copy the whole
    /// resource list of a group version on each call.
    served: HashMap<(String, String, String), Resolved>,
    recommended: HashMap<(String, String), Resolved>,
}

impl Kinds {
    /// Discovers every group and kind: aggregated discovery (two requests) where the apiserver
    /// offers it, the per-group walk otherwise.
    pub async fn discover(client: &Client) -> Result<Self, kube::Error> {
        let discovery = match Discovery::new(client.clone()).run_aggregated().await {
            Ok(discovery) => discovery,
            Err(error) => {
                tracing::debug!(%error, "aggregated discovery failed; walking the groups");
                Discovery::new(client.clone()).run().await?
            }
        };
        Ok(Self::indexed(discovery))
    }

    fn indexed(discovery: Discovery) -> Self {
        let mut served = HashMap::new();
        let mut recommended = HashMap::new();
        for group in discovery.groups() {
            for version in group.versions() {
                for (resource, capabilities) in group.versioned_resources(version) {
                    let key = (
                        resource.group.clone(),
                        resource.version.clone(),
                        resource.kind.clone(),
                    );
                    // The first of a kind wins, as in kube's `resolve_gvk`.
                    served.entry(key).or_insert(Resolved {
                        resource,
                        capabilities,
                    });
                }
            }
            for (resource, capabilities) in group.recommended_resources() {
                // The first of a kind wins, as in kube's `recommended_kind`.
                recommended
                    .entry((resource.group.clone(), resource.kind.clone()))
                    .or_insert(Resolved {
                        resource,
                        capabilities,
                    });
            }
        }
        Self {
            discovery,
            served,
            recommended,
        }
    }

    /// A fingerprint of every kind served (group, version, kind, plural, scope): equal for two
    /// discoveries of the same kinds, whatever order the apiserver listed them in.
    pub fn fingerprint(&self) -> u64 {
        let mut served: Vec<String> = Vec::new();
        for group in self.discovery.groups() {
            for version in group.versions() {
                for (resource, capabilities) in group.versioned_resources(version) {
                    served.push(format!(
                        "{}/{}/{}/{}/{:?}",
                        resource.group,
                        resource.version,
                        resource.kind,
                        resource.plural,
                        capabilities.scope
                    ));
                }
            }
        }
        served.sort_unstable();
        let mut hasher = std::hash::DefaultHasher::new();
        served.hash(&mut hasher);
        hasher.finish()
    }

    /// Every API version the cluster serves, as Helm's `--api-versions` takes them: each
    /// `group/version` (`v1` for the core group) and each `group/version/Kind`, sorted.
    pub fn api_versions(&self) -> Vec<String> {
        let mut served = std::collections::BTreeSet::new();
        for group in self.discovery.groups() {
            for version in group.versions() {
                for (resource, _) in group.versioned_resources(version) {
                    let api_version = resource.api_version.clone();
                    served.insert(format!("{api_version}/{}", resource.kind));
                    served.insert(api_version);
                }
            }
        }
        served.into_iter().collect()
    }

    /// The resource of `kind` in `group` at `api_version` (`apps/v1`, `v1`), or at the group's
    /// recommended version when that one is not served (an inventory entry applied with a
    /// version since removed). `None` for kinds the cluster does not serve.
    pub fn resolve(&self, group: &str, api_version: &str, kind: &str) -> Option<Resolved> {
        let version = api_version.rsplit('/').next().unwrap_or(api_version);
        self.served
            .get(&(group.to_owned(), version.to_owned(), kind.to_owned()))
            .or_else(|| self.recommended_kind(group, kind))
            .cloned()
    }

    fn recommended_kind(&self, group: &str, kind: &str) -> Option<&Resolved> {
        self.recommended.get(&(group.to_owned(), kind.to_owned()))
    }
}

impl ScopeLookup for Kinds {
    fn scope_of(&self, group: &str, kind: &str) -> Option<Scope> {
        let capabilities = &self.recommended_kind(group, kind)?.capabilities;
        Some(match capabilities.scope {
            KubeScope::Cluster => Scope::Cluster,
            KubeScope::Namespaced => Scope::Namespaced,
        })
    }
}

/// A kind the cluster serves.
#[derive(Clone)]
pub struct Resolved {
    pub resource: ApiResource,
    pub capabilities: ApiCapabilities,
}

impl Resolved {
    /// The API that reads and writes `id` (its namespace when the kind is namespaced).
    pub fn api(&self, client: Client, id: &ObjectRef) -> Api<DynamicObject> {
        match self.capabilities.scope {
            KubeScope::Cluster => Api::all_with(client, &self.resource),
            KubeScope::Namespaced => Api::namespaced_with(client, &id.namespace, &self.resource),
        }
    }
}
