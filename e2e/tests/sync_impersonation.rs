//! Writes use the ServiceAccount a GitSync names: without RBAC of its own it can write nothing,
//! and the server-side dry-run says so before anything is written; once a Role lets it, the same
//! commit is applied.

mod sync_support;

use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use serde_json::json;
use sluice_e2e::{TestNamespace, World, unique_name};
use sync_support::*;

const CONFIG_MAP: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: limited
data:
  written-by: "the deployer ServiceAccount"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_made_as_the_named_service_account() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-sa").await;
    let sa: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "deployer"}})).unwrap();
    ns.api::<ServiceAccount>()
        .create(&Default::default(), &sa)
        .await
        .unwrap();

    let repo = unique_name("sync-sa");
    let files = tree(&[("configmap.yaml", CONFIG_MAP)]);
    let seed = world.git_seed(&repo, Some(files.path())).await.unwrap();
    git_secret(&ns, world, "git").await;
    create_git_sync(&ns, "limited", &world.git_http_url(&repo), "", "git").await;
    patch_spec(&ns, "limited", json!({"serviceAccountName": "deployer"})).await;
    let synchronizer = Synchronizer::start(world, ns.name()).await;

    let refused_status = wait_status(&ns, "limited", "the dry-run to refuse the write", |s| {
        s.is("Ready=False ValidationFailed")
    })
    .await;
    let message = refused_status.message("Ready");
    let who = format!("system:serviceaccount:{}:deployer", ns.name());
    assert!(
        message.contains(&who),
        "names the ServiceAccount: {message}"
    );
    assert!(message.contains("forbidden"), "{message}");
    assert!(
        message.contains("(from configmap.yaml:1)"),
        "names the file: {message}"
    );
    assert!(message.contains("nothing was written"), "{message}");
    assert_eq!(
        refused_status.last_attempted_revision.as_deref(),
        Some(seed.as_str())
    );
    assert!(
        ns.api::<ConfigMap>()
            .get_opt("limited")
            .await
            .unwrap()
            .is_none()
    );

    // Let the ServiceAccount manage ConfigMaps: the retry applies the commit.
    ns.grant(
        "deployer",
        "configmap-writer",
        json!([{"apiGroups": [""], "resources": ["configmaps"],
                "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"]}]),
    )
    .await;
    wait_status(
        &ns,
        "limited",
        "the commit to be applied as the ServiceAccount",
        |s| s.applied(&seed),
    )
    .await;
    let cm = ns.api::<ConfigMap>().get("limited").await.unwrap();
    assert_eq!(
        cm.data.unwrap()["written-by"],
        "the deployer ServiceAccount"
    );

    synchronizer.stop().await;
}
