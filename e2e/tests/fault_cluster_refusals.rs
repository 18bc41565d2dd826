//! The cluster refuses what Git asks, three ways, and the synchronizer neither half-applies nor
//! wedges:
//! - a custom resource its CRD's schema rejects: the whole commit is refused at the dry-run,
//!   the message names the object, its file and the field; nothing of the commit is written;
//! - an object with a finalizer nobody clears, dropped from Git: the prune asks for its deletion
//!   and the sync goes on (the object waits in Terminating for its finalizer's owner), and the
//!   next commit is applied as usual;
//! - the target namespace deleted and held in Terminating by a finalizer: each write into it is
//!   refused and said (the namespace is being terminated), nothing elsewhere is touched; once
//!   the namespace is gone the synchronizer makes it again, with its content, by itself.

mod sync_support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::json;
use sluice_e2e::{TestNamespace, World, unique_name, wait_until};
use sync_support::*;

/// A Widget kind whose schema caps `spec.size` at 10.
fn widget_crd(group: &str) -> String {
    format!(
        r#"# Widgets: the storefront's promotional banners. The renderer cannot draw more than 10.
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
              required: [size]
              properties:
                size: {{type: integer, minimum: 1, maximum: 10}}
"#
    )
}

fn widget(group: &str, size: u32) -> String {
    format!(
        "apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: winter-sale\nspec:\n  # banners in the carousel\n  size:   {size}\n"
    )
}

fn config_map(name: &str, namespace: Option<&str>, mode: &str) -> String {
    let namespace = namespace.map_or(String::new(), |ns| format!("\n  namespace: {ns}"));
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}{namespace}\ndata: {{mode: \"{mode}\"}}\n"
    )
}

async fn mode(api: &Api<ConfigMap>, name: &str) -> Option<String> {
    let cm = api.get_opt(name).await.unwrap()?;
    cm.data?.get("mode").cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_resource_its_schema_rejects_refuses_the_whole_commit() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "refuse-schema").await;
    let group = format!("{}.e2e.sluice.dev", unique_name("g"));
    let repo = unique_name("refuse-schema");
    let files = tree(&[
        ("crds/widget.yaml", &widget_crd(&group)),
        ("app/widget.yaml", &widget(&group, 3)),
        (
            "app/settings.yaml",
            &config_map("banner-settings", None, "calm"),
        ),
    ]);
    let seed = world.git_seed(&repo, Some(files.path())).await.unwrap();
    git_secret(&ns, world, "git").await;
    create_git_sync(&ns, "banners", &world.git_http_url(&repo), "", "git").await;
    patch_spec(&ns, "banners", json!({"allowClusterScoped": true})).await;
    let synchronizer = Synchronizer::start(world, ns.name()).await;
    wait_applied(&ns, "banners", &seed).await;

    // 50 banners: the schema's maximum is 10. The settings change in the same commit.
    let files = tree(&[
        ("crds/widget.yaml", &widget_crd(&group)),
        ("app/widget.yaml", &widget(&group, 50)),
        (
            "app/settings.yaml",
            &config_map("banner-settings", None, "loud"),
        ),
    ]);
    let bad = commit_dir(world, &repo, files.path(), "banners: go big for the sale").await;
    let refused = wait_status(&ns, "banners", "the commit to be refused", |s| {
        s.attempted(&bad) && s.is("Ready=False")
    })
    .await;
    let (_, reason, message) = condition(&refused, "Ready").unwrap();
    assert_eq!(reason, "ValidationFailed", "{message}");
    for needle in ["winter-sale", "app/widget.yaml", "spec.size"] {
        assert!(message.contains(needle), "{needle:?} not in: {message}");
    }
    assert_eq!(
        refused.last_applied_revision.as_deref(),
        Some(seed.as_str())
    );
    let settings = ns.api::<ConfigMap>();
    assert_eq!(
        mode(&settings, "banner-settings").await.as_deref(),
        Some("calm")
    );
    let gvk = GroupVersionKind::gvk(&group, "v1", "Widget");
    let widgets: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns.name(), &ApiResource::from_gvk(&gvk));
    assert_eq!(
        widgets.get("winter-sale").await.unwrap().data["spec"]["size"],
        3
    );

    let files = tree(&[
        ("crds/widget.yaml", &widget_crd(&group)),
        ("app/widget.yaml", &widget(&group, 8)),
        (
            "app/settings.yaml",
            &config_map("banner-settings", None, "loud"),
        ),
    ]);
    let fix = commit_dir(world, &repo, files.path(), "banners: 8, the most it draws").await;
    wait_applied(&ns, "banners", &fix).await;
    assert_eq!(
        mode(&settings, "banner-settings").await.as_deref(),
        Some("loud")
    );
    assert_eq!(
        widgets.get("winter-sale").await.unwrap().data["spec"]["size"],
        8
    );

    synchronizer.stop().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let _ = crds
        .delete(&format!("widgets.{group}"), &DeleteParams::background())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_whose_finalizer_never_clears_does_not_wedge_the_prune() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "refuse-finalizer").await;
    let repo = unique_name("refuse-finalizer");
    let both = |mode: &str| {
        tree(&[
            ("app/settings.yaml", &config_map("settings", None, mode)),
            ("app/legacy.yaml", &config_map("legacy", None, mode)),
        ])
    };
    let files = both("v1");
    let seed = world.git_seed(&repo, Some(files.path())).await.unwrap();
    git_secret(&ns, world, "git").await;
    create_git_sync(&ns, "app", &world.git_http_url(&repo), "app", "git").await;
    let synchronizer = Synchronizer::start(world, ns.name()).await;
    wait_applied(&ns, "app", &seed).await;

    // Another controller put its finalizer on `legacy`, and will never take it off.
    let api = ns.api::<ConfigMap>();
    let hold = json!({"metadata": {"finalizers": ["e2e.sluice.dev/never"]}});
    api.patch("legacy", &PatchParams::default(), &Patch::Merge(&hold))
        .await
        .unwrap();

    let files = tree(&[("app/settings.yaml", &config_map("settings", None, "v2"))]);
    let drop = commit_dir(world, &repo, files.path(), "app: retire legacy").await;
    let status = wait_applied(&ns, "app", &drop).await;
    assert_eq!(status.inventory.len(), 1, "{}", describe(&status));
    let legacy = api.get("legacy").await.unwrap();
    assert!(
        legacy.metadata.deletion_timestamp.is_some(),
        "deletion asked for"
    );

    // The next commit goes through as usual.
    let files = tree(&[("app/settings.yaml", &config_map("settings", None, "v3"))]);
    let next = commit_dir(world, &repo, files.path(), "app: v3").await;
    wait_applied(&ns, "app", &next).await;
    assert_eq!(mode(&api, "settings").await.as_deref(), Some("v3"));

    // Its owner lets go: it is gone, and nothing is re-made.
    let release = json!({"metadata": {"finalizers": null}});
    api.patch("legacy", &PatchParams::default(), &Patch::Merge(&release))
        .await
        .unwrap();
    wait_until("legacy to go", Duration::from_secs(30), || async {
        match api.get_opt("legacy").await.unwrap() {
            None => Ok(()),
            Some(_) => Err("still there"),
        }
    })
    .await;
    synchronizer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_held_terminating_is_said_and_remade_once_gone() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "refuse-terminating").await;
    let shop = unique_name("refuse-shop");
    let repo = unique_name("refuse-terminating");
    let content = |mode: &str| {
        let namespace = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {shop}\n");
        tree(&[
            ("shop/namespace.yaml", &namespace),
            (
                "shop/settings.yaml",
                &config_map("settings", Some(&shop), mode),
            ),
            ("home/settings.yaml", &config_map("home", None, mode)),
        ])
    };
    let files = content("v1");
    let seed = world.git_seed(&repo, Some(files.path())).await.unwrap();
    git_secret(&ns, world, "git").await;
    create_git_sync(&ns, "shop", &world.git_http_url(&repo), "", "git").await;
    patch_spec(
        &ns,
        "shop",
        json!({"allowClusterScoped": true, "allowedNamespaces": [shop]}),
    )
    .await;
    let synchronizer = Synchronizer::start(world, ns.name()).await;
    wait_applied(&ns, "shop", &seed).await;

    // Someone deletes the shop's namespace; a finalizer of theirs holds it in Terminating.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let hold = json!({"metadata": {"finalizers": ["e2e.sluice.dev/hold"]}});
    namespaces
        .patch(&shop, &PatchParams::default(), &Patch::Merge(&hold))
        .await
        .unwrap();
    namespaces
        .delete(&shop, &DeleteParams::background())
        .await
        .unwrap();
    let in_shop: Api<ConfigMap> = Api::namespaced(client.clone(), &shop);
    wait_until(
        "the namespace controller to empty the shop",
        Duration::from_secs(60),
        || async {
            match in_shop.get_opt("settings").await {
                Ok(None) | Err(_) => Ok(()),
                Ok(Some(_)) => Err("settings still there"),
            }
        },
    )
    .await;

    // A commit now: refused in the terminating namespace, and said; the home namespace's object
    // is neither half-written nor pruned.
    let files = content("v2");
    let next = commit_dir(world, &repo, files.path(), "shop: v2").await;
    let refused = wait_status_within(
        &ns,
        "shop",
        "the write into the terminating namespace to be refused",
        Duration::from_secs(90),
        |s| s.attempted(&next) && s.is("Ready=False"),
    )
    .await;
    let (_, reason, message) = condition(&refused, "Ready").unwrap();
    println!("terminating: {reason}: {message}");
    assert!(message.contains(&shop), "{message}");
    assert!(message.contains("terminat"), "{message}");
    let home = ns.api::<ConfigMap>();
    assert_eq!(
        mode(&home, "home").await.as_deref(),
        Some("v1"),
        "nothing half-applied"
    );

    // The finalizer's owner lets go: the namespace goes, and the synchronizer makes it again
    // with its content, unasked.
    let release = json!({"metadata": {"finalizers": null}});
    namespaces
        .patch(&shop, &PatchParams::default(), &Patch::Merge(&release))
        .await
        .unwrap();
    wait_status_within(
        &ns,
        "shop",
        "the commit to be applied once the namespace is gone",
        Duration::from_secs(120),
        |s| s.applied(&next) && s.is("Ready=True"),
    )
    .await;
    assert_eq!(mode(&in_shop, "settings").await.as_deref(), Some("v2"));
    assert_eq!(mode(&home, "home").await.as_deref(), Some("v2"));

    synchronizer.stop().await;
    let _ = namespaces.delete(&shop, &DeleteParams::background()).await;
}
