//! A kube client for the world, and one namespace per test.

use std::fmt::Debug;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{FIELD_MANAGER, World};

/// The label every namespace of the e2e tests carries, so leftovers are easy to find.
pub const E2E_LABEL: &str = "sluice.dev/e2e";

impl World {
    /// A kube client for the world's kube-apiserver, from its admin kubeconfig.
    pub async fn kube_client(&self) -> Client {
        let path = self.kubeconfig();
        let kubeconfig = Kubeconfig::read_from(&path)
            .unwrap_or_else(|e| panic!("reading the world's kubeconfig {}: {e}", path.display()));
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .unwrap_or_else(|e| {
                    panic!("loading the world's kubeconfig {}: {e}", path.display())
                });
        Client::try_from(config).unwrap_or_else(|e| panic!("a kube client for the world: {e}"))
    }
}

/// A namespace of one test's own, deleted when dropped (also when the test fails).
pub struct TestNamespace {
    name: String,
    client: Client,
}

impl TestNamespace {
    /// Creates a namespace named `<prefix>-<unique suffix>`.
    pub async fn create(client: &Client, prefix: &str) -> TestNamespace {
        let name = crate::unique_name(prefix);
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": { "name": name, "labels": { E2E_LABEL: "true" } }
        }))
        .expect("a namespace");
        let api: Api<Namespace> = Api::all(client.clone());
        api.create(&PostParams::default(), &ns).await.unwrap_or_else(|e| {
            panic!("creating namespace {name} (is the world's kube-apiserver up? `e2e/env status`): {e}")
        });
        TestNamespace {
            name,
            client: client.clone(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The API of a namespaced kind in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Server-side applies a YAML manifest of kind `K` into this namespace as Sluice does (field
    /// manager `sluice`, forced), and returns what the apiserver made of it.
    pub async fn apply<K>(&self, yaml: &str) -> K
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + Debug
            + Serialize
            + DeserializeOwned,
        <K as Resource>::DynamicType: Default,
    {
        apply_yaml(&self.api::<K>(), yaml).await
    }

    /// Role `role` of `rules` (RBAC's JSON shape) in this namespace, bound to its ServiceAccount
    /// `account`, as an admin grants a tenant's identity.
    pub async fn grant(&self, account: &str, role: &str, rules: serde_json::Value) {
        use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
        let role_object: Role =
            serde_json::from_value(serde_json::json!({"metadata": {"name": role}, "rules": rules}))
                .expect("a Role");
        let binding: RoleBinding = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("{account}-{role}")},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": self.name}]
        }))
        .expect("a RoleBinding");
        let post = PostParams::default();
        self.api::<Role>()
            .create(&post, &role_object)
            .await
            .expect("creating the Role");
        self.api::<RoleBinding>()
            .create(&post, &binding)
            .await
            .expect("creating the RoleBinding");
    }
}

/// The field manager `kubectl edit` writes as: a person's edit, as self-heal sees it.
pub const HAND_EDIT: &str = "kubectl-edit";

/// Edits object `name` as a person with `kubectl edit` does: `patch` merged in as field manager
/// [`HAND_EDIT`]. Panics with the apiserver's answer when it is refused.
pub async fn edit_by_hand<K>(api: &Api<K>, name: &str, patch: serde_json::Value) -> K
where
    K: Resource + Clone + Debug + DeserializeOwned,
    <K as Resource>::DynamicType: Default,
{
    let params = PatchParams {
        field_manager: Some(HAND_EDIT.into()),
        ..PatchParams::default()
    };
    api.patch(name, &params, &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "editing {} {name} by hand: {e}",
                K::kind(&Default::default())
            )
        })
}

/// Server-side applies a YAML manifest of kind `K` through `api`, with field manager `sluice`,
/// forced; panics with the apiserver's answer when it is refused.
pub async fn apply_yaml<K>(api: &Api<K>, yaml: &str) -> K
where
    K: Resource + Clone + Debug + Serialize + DeserializeOwned,
    <K as Resource>::DynamicType: Default,
{
    let object: K = serde_saphyr::from_str(yaml).unwrap_or_else(|e| {
        panic!(
            "the fixture is not a valid {}: {e}\n{yaml}",
            K::kind(&Default::default())
        )
    });
    let name = object
        .meta()
        .name
        .clone()
        .expect("the fixture has a metadata.name");
    // The apply body must name its kind: typed k8s-openapi objects serialize without it.
    let mut body = serde_json::to_value(&object).expect("serializable");
    body["apiVersion"] = K::api_version(&Default::default()).into();
    body["kind"] = K::kind(&Default::default()).into();
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .unwrap_or_else(|e| panic!("server-side apply of {name}: {e}"))
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        // Drop cannot await, and the test's runtime may be going down: delete from a thread of
        // our own with a fresh client, and don't wait for the namespace to finish terminating.
        let name = std::mem::take(&mut self.name);
        let deleted = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let world = World::load().ok()?;
                let api: Api<Namespace> = Api::all(world.kube_client().await);
                api.delete(&name, &DeleteParams::background()).await.ok()
            })
        })
        .join();
        let _ = deleted;
    }
}

/// Server-side applies the CRD in `yaml` (idempotent, so parallel tests agree) and waits up to
/// `within` until it is Established, i.e. served.
pub async fn install_crd_yaml(client: &Client, yaml: &str, within: std::time::Duration) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = apply_yaml(&api, yaml)
        .await
        .metadata
        .name
        .unwrap_or_default();
    crate::wait_until(
        &format!("the CRD {name} to be Established"),
        within,
        || async {
            let crd = api.get(&name).await.map_err(|e| e.to_string())?;
            let established = crd
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            established
                .then_some(())
                .ok_or_else(|| "not Established yet".to_owned())
        },
    )
    .await;
}
