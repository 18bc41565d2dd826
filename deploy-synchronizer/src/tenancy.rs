//! Multi-tenancy lockdown, as Flux offers it: rules the platform team sets on the daemon
//! (`--default-service-account`, `--no-cross-namespace-refs`), which a tenant's GitSync cannot
//! lift, because the tenant writes the GitSync and the platform team runs the daemon.
//!
//! - Every GitSync without `serviceAccountName` writes as the default ServiceAccount of its own
//!   namespace, so what a tenant may write is what the platform team granted that account: a
//!   ClusterRole, or an object in another tenant's namespace, is refused by the API server in the
//!   dry-run, before anything is written.
//! - With cross-namespace references refused, a GitSync that names another namespace
//!   (`targetNamespace`, `allowedNamespaces`, `dependsOn`, `helm.namespace`) is refused before
//!   its source is fetched: Ready=False and Stalled, reason `AccessDenied`, naming each field.
//!
//! Pure: the reconciler asks, and writes the answer into the status.

use crate::resource::GitSyncSpec;

/// The platform team's rules for every GitSync this daemon runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lockdown {
    /// The ServiceAccount (in each GitSync's namespace) a GitSync without `serviceAccountName`
    /// writes as. `None`: the daemon's own identity writes.
    pub default_service_account: Option<String>,
    /// Refuse GitSyncs that name another namespace.
    pub no_cross_namespace_refs: bool,
}

impl Lockdown {
    /// The ServiceAccount of `spec`'s namespace its writes impersonate, if any.
    pub fn service_account<'a>(&'a self, spec: &'a GitSyncSpec) -> Option<&'a str> {
        spec.service_account_name
            .as_deref()
            .filter(|name| !name.is_empty())
            .or(self.default_service_account.as_deref())
            .filter(|name| !name.is_empty())
    }

    /// Why a GitSync in `namespace` with `spec` is refused, if it is: each reference that leaves
    /// its namespace, by field.
    pub fn refusal(&self, namespace: &str, spec: &GitSyncSpec) -> Option<String> {
        if !self.no_cross_namespace_refs {
            return None;
        }
        let refs = cross_namespace_refs(namespace, spec);
        (!refs.is_empty()).then(|| {
            format!(
                "cross-namespace references are refused on this cluster (the synchronizer runs \
                 with --no-cross-namespace-refs), and this GitSync names namespaces other than \
                 {namespace}: {}",
                refs.join(", ")
            )
        })
    }
}

/// Each reference of `spec` to a namespace other than `namespace`, as `field: value`.
pub fn cross_namespace_refs(namespace: &str, spec: &GitSyncSpec) -> Vec<String> {
    let other = |ns: &str| ns != namespace;
    let mut refs = Vec::new();
    if let Some(target) = spec.target_namespace.as_deref().filter(|ns| other(ns)) {
        refs.push(format!("spec.targetNamespace: {target}"));
    }
    for (i, allowed) in spec.allowed_namespaces.iter().enumerate() {
        if other(allowed) {
            refs.push(format!("spec.allowedNamespaces[{i}]: {allowed}"));
        }
    }
    for (i, dependency) in spec.depends_on.iter().enumerate() {
        if let Some(ns) = dependency.namespace.as_deref().filter(|ns| other(ns)) {
            refs.push(format!("spec.dependsOn[{i}].namespace: {ns}"));
        }
    }
    let release = spec
        .helm
        .as_ref()
        .and_then(|helm| helm.namespace.as_deref());
    if let Some(ns) = release.filter(|ns| other(ns)) {
        refs.push(format!("spec.helm.namespace: {ns}"));
    }
    refs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::{DependencyRef, HelmSpec};

    fn spec(value: serde_json::Value) -> GitSyncSpec {
        let mut value = value;
        value["source"] = serde_json::json!({"url": "https://git.example/config.git"});
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_sync_writes_as_its_own_account_else_the_default() {
        let lockdown = Lockdown {
            default_service_account: Some("tenant".into()),
            no_cross_namespace_refs: false,
        };
        let own = spec(serde_json::json!({"serviceAccountName": "deployer"}));
        assert_eq!(lockdown.service_account(&own), Some("deployer"));
        assert_eq!(
            lockdown.service_account(&spec(serde_json::json!({}))),
            Some("tenant")
        );
        let empty = spec(serde_json::json!({"serviceAccountName": ""}));
        assert_eq!(lockdown.service_account(&empty), Some("tenant"));
        assert_eq!(Lockdown::default().service_account(&empty), None);
    }

    #[test]
    fn every_reference_to_another_namespace_is_named() {
        let mut s = spec(serde_json::json!({
            "targetNamespace": "team-b",
            "allowedNamespaces": ["team-a", "*"],
        }));
        s.depends_on = vec![
            DependencyRef {
                name: "crds".into(),
                namespace: Some("platform".into()),
            },
            DependencyRef {
                name: "db".into(),
                namespace: None,
            },
        ];
        s.helm = Some(
            serde_json::from_value::<HelmSpec>(serde_json::json!({"namespace": "team-a"})).unwrap(),
        );
        assert_eq!(
            cross_namespace_refs("team-a", &s),
            [
                "spec.targetNamespace: team-b",
                "spec.allowedNamespaces[1]: *",
                "spec.dependsOn[0].namespace: platform",
            ]
        );
        let lockdown = Lockdown {
            no_cross_namespace_refs: true,
            ..Lockdown::default()
        };
        let why = lockdown.refusal("team-a", &s).unwrap();
        assert!(why.contains("--no-cross-namespace-refs"), "{why}");
        assert!(why.contains("spec.targetNamespace: team-b"), "{why}");
        assert_eq!(Lockdown::default().refusal("team-a", &s), None);
        assert_eq!(
            lockdown.refusal(
                "team-a",
                &spec(serde_json::json!({"targetNamespace": "team-a"}))
            ),
            None
        );
    }
}
