//! A platform team gives the synchronizer a Role in the tenant's namespace and nothing
//! cluster-wide (as Argo CD's namespaced install does). With `--heal-watch-scope namespace` it
//! syncs there and self-heals by watching that namespace only: an edit is taken back and a
//! deleted object comes back, with the sync's interval far off, so only the watch can have seen
//! them.

mod sync_support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use kube::api::{DeleteParams, PostParams};
use serde_json::json;
use sluice_e2e::{TestNamespace, World, edit_by_hand, unique_name, wait_until};
use sync_support::*;

const SETTINGS: &str = r#"# Read by the tenant's API at start.
apiVersion: v1
kind: ConfigMap
metadata:
  name: tenant-settings
data:
  plan: "gold"     # billing tier
  region: eu-west-1
"#;

/// ServiceAccount `synchronizer` with a Role of every verb on every resource of `ns`, and
/// nothing else.
async fn namespaced_identity(ns: &TestNamespace) {
    let account: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "synchronizer"}})).unwrap();
    ns.api::<ServiceAccount>()
        .create(&PostParams::default(), &account)
        .await
        .expect("the ServiceAccount");
    ns.grant(
        "synchronizer",
        "synchronizer",
        json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
    )
    .await;
}

async fn plan(ns: &TestNamespace) -> Option<String> {
    let map = ns
        .api::<ConfigMap>()
        .get_opt("tenant-settings")
        .await
        .ok()??;
    map.data?.get("plan").cloned()
}

async fn wait_plan(ns: &TestNamespace, what: &str) {
    wait_until(what, Duration::from_secs(10), || async {
        match plan(ns).await.as_deref() {
            Some("gold") => Ok(()),
            other => Err(format!("plan is {other:?}")),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synchronizer_with_a_namespaced_role_heals_by_watching_its_namespace() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-tenant").await;
    namespaced_identity(&ns).await;

    // The identity can do nothing cluster-wide: a list of ConfigMaps in all namespaces is
    // forbidden (what a cluster-scoped watch would start with).
    let mut tenant = kube_config(world).await;
    tenant.auth_info.impersonate =
        Some(format!("system:serviceaccount:{}:synchronizer", ns.name()));
    let tenant_client = kube::Client::try_from(tenant.clone()).unwrap();
    let everywhere: kube::Api<ConfigMap> = kube::Api::all(tenant_client);
    let refused = everywhere.list(&Default::default()).await.unwrap_err();
    assert!(
        matches!(&refused, kube::Error::Api(status) if status.code == 403),
        "{refused}"
    );

    let repo = unique_name("sync-tenant");
    let files = tree(&[("tenant/settings.yaml", SETTINGS)]);
    let seed = world.git_seed(&repo, Some(files.path())).await.unwrap();
    git_secret(&ns, world, "git").await;
    create_git_sync_spec(
        &ns,
        "tenant",
        json!({
            "source": {"url": world.git_http_url(&repo), "ref": {"branch": "main"},
                       "path": "tenant", "interval": "30m", "secretRef": {"name": "git"}},
            "targetNamespace": ns.name(),
            "selfHeal": true
        }),
    )
    .await;
    let synchronizer = Synchronizer::start_scoped(
        tenant,
        ns.name(),
        deploy_synchronizer::controller::WatchScope::Namespace,
    );
    wait_applied(&ns, "tenant", &seed).await;

    // An edit of a field Git sets: the namespace's watch sees it and takes it back.
    edit_by_hand(
        &ns.api::<ConfigMap>(),
        "tenant-settings",
        json!({"data": {"plan": "free"}}),
    )
    .await;
    wait_plan(&ns, "the edit to be healed").await;

    // A deletion: re-created.
    ns.api::<ConfigMap>()
        .delete("tenant-settings", &DeleteParams::default())
        .await
        .expect("deleting the ConfigMap");
    wait_plan(&ns, "the ConfigMap to be re-created").await;

    synchronizer.stop().await;
}
