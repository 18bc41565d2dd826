//! User story: the platform team publishes the shop chart to the company's OCI registry (HTTPS,
//! basic auth, the company CA), and each environment takes it from there: its GitSync names the
//! chart with a version range, its own values file from the config repository, and values an
//! operator keeps in the cluster (a ConfigMap, a Secret). A values edit in the cluster rolls out
//! with no commit; a newer chart in the range rolls out at the next interval, one outside it never
//! does; a registry that refuses the credentials is `RenderFailed` naming the chart, with nothing
//! deleted, and recovers when the Secret is fixed; so is a range no version satisfies.
//!
//! Against the real world: `helm push` to the world's TLS registry, `helm` built from Go modules,
//! the git server, kube-apiserver and kwok.

mod sync_support;

use std::path::Path;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use sluice_e2e::{TestNamespace, World, unique_name};
use sync_support::*;

/// The chart, as the tests keep it.
const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/charts/shop");

async fn create<K>(ns: &TestNamespace, object: serde_json::Value)
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + serde::Serialize,
    K::DynamicType: Default,
{
    let object: K = serde_json::from_value(object).unwrap();
    ns.api::<K>()
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
}

async fn settings(ns: &TestNamespace, key: &str) -> Option<String> {
    let map = ns
        .api::<ConfigMap>()
        .get_opt("shop-shop-settings")
        .await
        .unwrap()?;
    map.data?.get(key).cloned()
}

async fn web_version(ns: &TestNamespace) -> Option<String> {
    let web = ns
        .api::<Deployment>()
        .get_opt("shop-shop-web")
        .await
        .unwrap()?;
    web.metadata
        .labels?
        .get("app.kubernetes.io/version")
        .cloned()
}

async fn wait_settings(ns: &TestNamespace, key: &str, want: &str) {
    let what = format!("{key} = {want} in the rendered settings");
    sluice_e2e::wait_until(&what, DEADLINE, || async {
        match settings(ns, key).await {
            Some(value) if value == want => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chart_from_an_oci_registry_follows_its_range_and_the_values_kept_in_the_cluster() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-helm-oci").await;
    world.push_image(&["demo/web:1.4.2"]).await;

    // The team publishes 1.4.2, and a 2.0.0 no environment has opted into yet.
    // A registry path of the run's own: an earlier run's versions must not count.
    let charts = unique_name("charts");
    let first = world
        .push_chart(Path::new(CHART), "1.4.2", &charts, true)
        .await;
    world
        .push_chart(Path::new(CHART), "2.0.0", &charts, true)
        .await;
    let repository = first
        .chart
        .strip_suffix("/shop")
        .expect("oci://…/charts/shop")
        .to_owned();

    // The config repository holds only the environment's values.
    let repo = unique_name("sync-helm-oci");
    let tree = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tree.path().join("envs/prod")).unwrap();
    std::fs::write(
        tree.path().join("envs/prod/values-prod.yaml"),
        "# Production: the shop behind the EU load balancer.\nweb:\n    replicas: 2   # two zones\n",
    )
    .unwrap();
    let seed = world.git_seed(&repo, Some(tree.path())).await.unwrap();
    git_secret(&ns, world, "git").await;

    // What the operators keep in the cluster: the registry's login and CA, the currency, and a
    // page size in a Secret.
    let (user, password) = world.registry_credentials();
    let ca = std::fs::read_to_string(world.ca_file()).unwrap();
    create::<Secret>(
        &ns,
        json!({"metadata": {"name": "charts"},
               "stringData": {"username": user, "password": password, "ca.crt": ca}}),
    )
    .await;
    create::<ConfigMap>(
        &ns,
        json!({"metadata": {"name": "shop-settings"},
               "data": {"values.yaml": "# set by the pricing team\nsettings:\n  currency: CHF\n"}}),
    )
    .await;
    create::<Secret>(
        &ns,
        json!({"metadata": {"name": "shop-tuning"},
               "stringData": {"values.yaml": "settings:\n  pageSize: 48\n"}}),
    )
    .await;

    create_git_sync(&ns, "shop", &world.git_http_url(&repo), "envs/prod", "git").await;
    patch_spec(
        &ns,
        "shop",
        json!({"render": "Helm", "helm": {
            "repoURL": repository,
            "chart": "shop",
            "version": "1.4.x",
            "chartSecretRef": {"name": "charts"},
            "includeCRDs": false,
            "valuesFiles": ["values-prod.yaml"],
            "valuesFrom": [
                {"kind": "ConfigMap", "name": "shop-settings"},
                {"kind": "Secret", "name": "shop-tuning"},
                {"kind": "Secret", "name": "not-created-yet", "optional": true}
            ]
        }}),
    )
    .await;
    let synchronizer = Synchronizer::start(world, ns.name()).await;

    // 1.4.2 (the newest in 1.4.x), with the repository's and the cluster's values.
    let applied = wait_applied(&ns, "shop", &seed).await;
    let inputs = applied.last_applied_inputs.clone().unwrap_or_default();
    assert!(
        inputs.starts_with(&format!("{} 1.4.2 (sha256:", first.chart)),
        "{inputs}"
    );
    assert!(inputs.contains("; values sha256:"), "{inputs}");
    assert_eq!(web_version(&ns).await.as_deref(), Some("1.4.2"));
    let web = ns.api::<Deployment>().get("shop-shop-web").await.unwrap();
    assert_eq!(web.spec.replicas, Some(2));
    assert_eq!(settings(&ns, "SHOP_CURRENCY").await.as_deref(), Some("CHF"));
    assert_eq!(settings(&ns, "SHOP_PAGE_SIZE").await.as_deref(), Some("48"));

    // The pricing team edits its ConfigMap: rendered again at the next interval, no commit.
    ns.api::<ConfigMap>()
        .patch(
            "shop-settings",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"values.yaml": "settings:\n  currency: GBP\n"}})),
        )
        .await
        .unwrap();
    wait_settings(&ns, "SHOP_CURRENCY", "GBP").await;
    let status = wait_status(&ns, "shop", "the new values recorded", |s| {
        s.last_applied_inputs.as_deref() != Some(inputs.as_str()) && s.is("Ready=True")
    })
    .await;
    assert!(status.applied(&seed), "still the seed revision");

    // 1.4.3 is published: the next interval takes it; 2.0.0 stays out of range.
    world
        .push_chart(Path::new(CHART), "1.4.3", &charts, true)
        .await;
    sluice_e2e::wait_until("the web on chart 1.4.3", DEADLINE, || async {
        match web_version(&ns).await {
            Some(v) if v == "1.4.3" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let status = wait_status(&ns, "shop", "1.4.3 recorded", |s| {
        s.last_applied_inputs
            .as_deref()
            .is_some_and(|i| i.contains(" 1.4.3 ("))
            && s.is("Ready=True")
    })
    .await;
    assert_eq!(settings(&ns, "SHOP_CURRENCY").await.as_deref(), Some("GBP"));
    let recorded = status.last_applied_inputs.unwrap();

    // The registry's password is rotated and the Secret is not: RenderFailed naming the chart,
    // nothing deleted, no credential in the status.
    ns.api::<Secret>()
        .patch(
            "charts",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"password": "rotated-but-not-here"}})),
        )
        .await
        .unwrap();
    let refused = wait_refused(&ns, "shop", "RenderFailed").await;
    let (_, _, message) = condition(&refused, "Ready").unwrap();
    assert!(message.contains(&first.chart), "{message}");
    let whole = serde_json::to_string(&refused).unwrap();
    assert!(!whole.contains("rotated-but-not-here"), "{whole}");
    assert!(!whole.contains(password), "{whole}");
    assert_eq!(
        refused.last_applied_inputs.as_deref(),
        Some(recorded.as_str())
    );
    assert_eq!(web_version(&ns).await.as_deref(), Some("1.4.3"));

    // Fixed: Ready again on the same inputs.
    ns.api::<Secret>()
        .patch(
            "charts",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"password": password}})),
        )
        .await
        .unwrap();
    wait_status(&ns, "shop", "Ready again", |s| s.is("Ready=True")).await;

    // A range nothing published satisfies: RenderFailed naming the chart and the range.
    patch_spec(&ns, "shop", json!({"helm": {"version": "9.x"}})).await;
    let refused = wait_status(&ns, "shop", "the range refused", |s| {
        s.is("Ready=False RenderFailed")
            && condition(s, "Ready").is_some_and(|(_, _, m)| m.contains("9.x"))
    })
    .await;
    let (_, _, message) = condition(&refused, "Ready").unwrap();
    assert!(message.contains(&first.chart), "{message}");
    assert_eq!(
        web_version(&ns).await.as_deref(),
        Some("1.4.3"),
        "nothing deleted"
    );
    synchronizer.stop().await;
}

/// The same chart from an HTTP chart repository (an `index.yaml` and packages behind HTTPS and a
/// login, as a ChartMuseum or a static bucket serves them): the range is resolved from the index,
/// and a newer package in it rolls out at the next interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chart_from_an_http_repository_follows_its_range() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-helm-http").await;
    world.push_image(&["demo/web:1.4.2"]).await;

    let charts = unique_name("charts");
    let first = world
        .push_chart_http(Path::new(CHART), "1.4.2", &charts)
        .await;
    let repository = first.chart.strip_suffix("/shop").unwrap().to_owned();
    let repo = unique_name("sync-helm-http");
    let tree = sluice_e2e::files_dir(&[(
        "envs/qa/values-qa.yaml",
        "# QA: one of everything.\nweb: {replicas: 1}\n",
    )]);
    let seed = world.git_seed(&repo, Some(tree.path())).await.unwrap();
    git_secret(&ns, world, "git").await;
    let (user, password) = world.git_credentials();
    let ca = std::fs::read_to_string(world.ca_file()).unwrap();
    create::<Secret>(
        &ns,
        json!({"metadata": {"name": "chart-repo"},
               "stringData": {"username": user, "password": password, "ca.crt": ca}}),
    )
    .await;
    create_git_sync(&ns, "shop", &world.git_http_url(&repo), "envs/qa", "git").await;
    patch_spec(
        &ns,
        "shop",
        json!({"helm": {
            "repoURL": repository,
            "chart": "shop",
            "version": "~1.4",
            "chartSecretRef": {"name": "chart-repo"},
            "includeCRDs": false,
            "valuesFiles": ["values-qa.yaml"]
        }}),
    )
    .await;
    let synchronizer = Synchronizer::start(world, ns.name()).await;

    let applied = wait_applied(&ns, "shop", &seed).await;
    let inputs = applied.last_applied_inputs.unwrap_or_default();
    assert!(
        inputs.starts_with(&format!("shop from {repository} 1.4.2 (sha256:")),
        "{inputs}"
    );
    assert_eq!(web_version(&ns).await.as_deref(), Some("1.4.2"));

    world
        .push_chart_http(Path::new(CHART), "1.4.3", &charts)
        .await;
    sluice_e2e::wait_until("the web on chart 1.4.3", DEADLINE, || async {
        match web_version(&ns).await {
            Some(v) if v == "1.4.3" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    synchronizer.stop().await;
}
