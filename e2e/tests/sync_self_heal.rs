//! Drift is healed by watching, not by the interval: a `kubectl edit` of a field Git sets is
//! taken back within moments and reported with who changed it; a deleted object comes back;
//! `replicas` that Git does not set (an HPA's) is left alone; an actor that keeps fighting is
//! healed with backoff and reported, not fought in a hot loop; at rest nothing is written; with
//! `selfHeal: false` drift stays.

mod sync_support;

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;
use sluice_e2e::{TestNamespace, World, unique_name, wait_until};
use sync_support::*;

const CONFIG_MAP: &str = r#"# What the shop's web tier reads at start.
apiVersion: v1
kind: ConfigMap
metadata:
  name: shop-settings
data:
  currency: EUR          # the finance team's call
  "checkout.timeout": '30s'
"#;

/// No `replicas`: an HPA (here: whoever scales it) owns the count.
const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
spec:
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      containers:
      - name: shop
        image: "{image}"
"#;

/// Merge-patches ConfigMap `shop-settings` as `manager` would (`kubectl edit` sends an update as
/// field manager `kubectl-edit`).
async fn edit_currency(ns: &TestNamespace, manager: &str, value: &str) {
    ns.api::<ConfigMap>()
        .patch(
            "shop-settings",
            &PatchParams {
                field_manager: Some(manager.to_owned()),
                ..PatchParams::default()
            },
            &Patch::Merge(json!({"data": {"currency": value}})),
        )
        .await
        .expect("editing the ConfigMap");
}

async fn currency(ns: &TestNamespace) -> Option<String> {
    let cm = ns
        .api::<ConfigMap>()
        .get_opt("shop-settings")
        .await
        .ok()??;
    cm.data?.get("currency").cloned()
}

/// The notes of the events about GitSync `shop` with `reason`.
async fn notes(ns: &TestNamespace, reason: &str) -> Vec<String> {
    let list = ns
        .api::<Event>()
        .list(&Default::default())
        .await
        .expect("listing events");
    list.items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("shop"))
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.note)
        .collect()
}

async fn resource_versions(ns: &TestNamespace) -> (String, String, String) {
    let sync = ns
        .api::<deploy_synchronizer::resource::GitSync>()
        .get("shop")
        .await
        .unwrap();
    let cm = ns.api::<ConfigMap>().get("shop-settings").await.unwrap();
    let deploy = ns.api::<Deployment>().get("shop").await.unwrap();
    (
        sync.metadata.resource_version.unwrap(),
        cm.metadata.resource_version.unwrap(),
        deploy.metadata.resource_version.unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_healed_as_it_happens_and_fights_back_off() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-heal").await;
    world.push_image(&["demo/shop:2.0.1"]).await;
    let image = format!("{}/demo/shop:2.0.1", world.registry());

    let repo = unique_name("sync-heal");
    let files = tree(&[
        ("shop/settings.yaml", CONFIG_MAP),
        (
            "shop/deployment.yaml",
            &DEPLOYMENT.replace("{image}", &image),
        ),
    ]);
    let seed = world
        .git_seed(&repo, Some(files.path()))
        .await
        .expect("seed");
    git_secret(&ns, world, "git-credentials").await;
    create_git_sync(
        &ns,
        "shop",
        &world.git_http_url(&repo),
        "shop",
        "git-credentials",
    )
    .await;
    let synchronizer = Synchronizer::start(world, ns.name()).await;
    wait_applied(&ns, "shop", &seed).await;
    assert_eq!(currency(&ns).await.as_deref(), Some("EUR"));

    // (a) Someone edits a field Git sets: it is taken back at once, and the event says who.
    let edited = Instant::now();
    edit_currency(&ns, "kubectl-edit", "USD").await;
    wait_until("the edit to be healed", Duration::from_secs(10), || async {
        match currency(&ns).await.as_deref() {
            Some("EUR") => Ok(()),
            other => Err(format!("currency is {other:?}")),
        }
    })
    .await;
    eprintln!("edit healed in {:?}", edited.elapsed());
    let healed = wait_until("a Healed event", Duration::from_secs(10), || async {
        let notes = notes(&ns, "Healed").await;
        notes
            .into_iter()
            .find(|n| n.contains("shop-settings"))
            .ok_or_else(|| "no Healed event yet".to_owned())
    })
    .await;
    assert!(
        healed.contains("data.currency") && healed.contains("kubectl-edit"),
        "{healed}"
    );

    // (b) A deleted object comes back.
    ns.api::<ConfigMap>()
        .delete("shop-settings", &DeleteParams::default())
        .await
        .expect("deleting the ConfigMap");
    wait_until(
        "the ConfigMap to be re-created",
        Duration::from_secs(10),
        || async { currency(&ns).await.ok_or_else(|| "not there".to_owned()) },
    )
    .await;

    // (c) Scaling a Deployment whose replicas Git does not set is left alone.
    ns.api::<Deployment>()
        .patch(
            "shop",
            &PatchParams {
                field_manager: Some("horizontal-pod-autoscaler".into()),
                ..PatchParams::default()
            },
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .expect("scaling");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let deploy = ns.api::<Deployment>().get("shop").await.unwrap();
    assert_eq!(
        deploy.spec.replicas,
        Some(3),
        "replicas were fought over"
    );
    assert!(
        !notes(&ns, "Healed")
            .await
            .iter()
            .any(|n| n.contains("Deployment")),
        "the Deployment was healed"
    );

    // (d) At rest nothing is written: not the objects, not the GitSync's status, over several
    // intervals (the interval is 2 s).
    let before = resource_versions(&ns).await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        resource_versions(&ns).await,
        before,
        "something was written at rest"
    );

    // (e) An actor that keeps taking the field back is healed with backoff and reported once.
    let fight_started = Instant::now();
    let mut fights = 0;
    while fight_started.elapsed() < Duration::from_secs(15) {
        if currency(&ns).await.as_deref() != Some("GBP") {
            edit_currency(&ns, "config-bot", "GBP").await;
            fights += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Without backoff this is hundreds; with it: two free heals, then 2 s, 6 s…
    assert!(fights <= 8, "{fights} heals in 15 s: a hot loop");
    assert!(fights >= 2, "only {fights} heals: was it healed at all?");
    let fought = notes(&ns, "DriftFought").await;
    assert!(
        fought
            .iter()
            .any(|n| n.contains("config-bot") && n.contains("backoff")),
        "{fought:?}"
    );

    // (f) With selfHeal off, drift stays (and nothing is applied at the interval either).
    patch_spec(&ns, "shop", json!({"selfHeal": false})).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    edit_currency(&ns, "kubectl-edit", "CHF").await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(currency(&ns).await.as_deref(), Some("CHF"));

    // Turned back on, the next sync applies Git again and healing resumes.
    patch_spec(&ns, "shop", json!({"selfHeal": true})).await;
    wait_until("Git's value back", Duration::from_secs(20), || async {
        match currency(&ns).await.as_deref() {
            Some("EUR") => Ok(()),
            other => Err(format!("currency is {other:?}")),
        }
    })
    .await;
    synchronizer.stop().await;
}
