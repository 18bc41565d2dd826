//! One commit carries a CustomResourceDefinition with its first custom resource, and a Namespace
//! with a ConfigMap in it: stage one (the CRD, the Namespace) is applied and the CRD awaited until
//! Established, then stage two, which could not even be dry-run before.

mod sync_support;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind};
use serde_json::json;
use sluice_e2e::{TestNamespace, World, unique_name};
use sync_support::*;

fn crd(group: &str) -> String {
    format!(
        r#"# A kind of our own, namespaced.
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{group}
spec:
  group: {group}
  scope: Namespaced
  names: {{kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: {{type: integer}}
"#
    )
}

fn widget(group: &str) -> String {
    format!("apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: first\nspec:\n  size: 3\n")
}

fn namespace_and_config(extra: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: {extra}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: {extra}
data: {{mode: "extra"}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crd_and_a_namespace_come_first_with_what_uses_them() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-stages").await;
    let suffix = unique_name("g");
    let group = format!("{suffix}.e2e.sluice.dev");
    let extra = unique_name("sync-stages-extra");

    let repo = unique_name("sync-stages");
    let files = tree(&[
        ("crds/widget.yaml", &crd(&group)),
        ("app/widget.yaml", &widget(&group)),
        ("app/extra.yaml", &namespace_and_config(&extra)),
    ]);
    let seed = world.git_seed(&repo, Some(files.path())).await.unwrap();
    git_secret(&ns, world, "git").await;
    create_git_sync(&ns, "stages", &world.git_http_url(&repo), "", "git").await;
    patch_spec(
        &ns,
        "stages",
        json!({"allowClusterScoped": true, "allowedNamespaces": [extra]}),
    )
    .await;
    let synchronizer = Synchronizer::start(world, ns.name()).await;

    let applied = wait_status(&ns, "stages", "the commit to be applied", |s| {
        s.applied(&seed)
    })
    .await;
    let mut kinds: Vec<_> = applied.inventory.iter().map(|e| e.kind.as_str()).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "ConfigMap",
            "CustomResourceDefinition",
            "Namespace",
            "Widget"
        ]
    );

    let gvk = GroupVersionKind::gvk(&group, "v1", "Widget");
    let widgets: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns.name(), &ApiResource::from_gvk(&gvk));
    let first = widgets.get("first").await.expect("the Widget");
    assert_eq!(first.data["spec"]["size"], 3);
    let settings: Api<ConfigMap> = Api::namespaced(client.clone(), &extra);
    assert_eq!(
        settings.get("settings").await.unwrap().data.unwrap()["mode"],
        "extra"
    );

    synchronizer.stop().await;
    // Cluster-scoped leftovers are this test's to remove.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let _ = crds
        .delete(&format!("widgets.{group}"), &DeleteParams::background())
        .await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(&extra, &DeleteParams::background()).await;
}
