//! User story: production pins the shop chart to an exact version in Git (a version changes by
//! commit, reviewed like any other), and the Config Updater proposes each new chart version as it
//! does an image tag: an ImageRepository over the chart's OCI repository, a semver ImagePolicy,
//! and a marker on each `version:` that pins it — the environment's GitSync (`spec.helm.version`)
//! and an umbrella chart's dependency in its `Chart.yaml`. The bump commit changes exactly those
//! bytes; the synchronizer, whose root GitSync applies the environment's GitSyncs, then rolls the
//! new chart out, in both: the shop pulled at its new version, and the storefront umbrella chart
//! rendered with its dependency fetched from the registry (`helm dependency build`), not vendored.
//!
//! Against the real world: `helm push` to the world's registry, both daemons' controllers
//! in-process, the git server, kube-apiserver and kwok.

mod update_support;

use std::path::Path;

use k8s_openapi::api::apps::v1::Deployment;
use serde_json::json;
use sluice_e2e::sync::{self, Synchronizer};
use sluice_e2e::{TestNamespace, unique_name, wait_until};
use update_support::*;

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/charts/shop");
const SHOP_FILE: &str = "clusters/prod/shop.yaml";
const UMBRELLA_FILE: &str = "charts/storefront/Chart.yaml";

/// The production GitSync of the shop, as the platform team keeps it in Git.
fn shop_sync(url: &str, ns: &str, charts: &str, version: &str) -> String {
    format!(
        r#"# The shop in production: the chart at a pinned version, bumped by the Config Updater.
apiVersion: sluice.dev/v1alpha1
kind: GitSync
metadata:
  name: shop
spec:
  source:
    url: {url}
    ref: {{branch: main}}
    path: envs/prod          # the environment's values
    interval: 2s
    secretRef: {{name: git}}
  targetNamespace: {ns}
  render: Helm
  helm:
    repoURL: oci://{charts}
    chart: shop
    version: "{version}"   # {{"$imagepolicy": "{ns}:shop-chart:tag"}}
    plainHTTP: true
    includeCRDs: false
    valuesFiles: [values-prod.yaml]
"#
    )
}

/// The GitSync of the storefront umbrella chart (its dependency fetched at render time).
fn storefront_sync(url: &str, ns: &str) -> String {
    format!(
        r#"# The storefront: an umbrella chart over the shop, its dependency not vendored.
apiVersion: sluice.dev/v1alpha1
kind: GitSync
metadata: {{name: storefront}}
spec:
  source: {{url: "{url}", ref: {{branch: main}}, path: charts/storefront, interval: 2s, secretRef: {{name: git}}}}
  targetNamespace: {ns}
  helm: {{plainHTTP: true, includeCRDs: false}}
"#
    )
}

/// An umbrella chart that takes the shop as a dependency, pinned the same way.
fn umbrella(charts: &str, version: &str, ns: &str) -> String {
    format!(
        r#"apiVersion: v2
name: storefront
version: 0.3.0
dependencies:
  - name: shop
    repository: "oci://{charts}"
    version: {version} # {{"$imagepolicy": "{ns}:shop-chart:tag"}}
"#
    )
}

async fn web_version(ns: &TestNamespace, name: &str) -> Option<String> {
    let web = ns.api::<Deployment>().get_opt(name).await.unwrap()?;
    web.metadata
        .labels?
        .get("app.kubernetes.io/version")
        .cloned()
}

/// Waits until Deployment `name` runs chart version `want`.
async fn wait_web_version(ns: &TestNamespace, name: &str, want: &str) {
    wait_until(&format!("{name} on chart {want}"), DEADLINE, || async {
        match web_version(ns, name).await {
            Some(v) if v == want => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_chart_version_is_bumped_in_git_and_rolled_out() {
    let mut u = Updater::idle("update-chart").await;
    let world = u.world;
    sync::install_crd(&u.client).await;
    let ns = u.ns().to_owned();
    world.push_image(&["demo/web:1.4.2"]).await;
    let path = unique_name("charts");
    let charts = format!("{}/{path}", world.registry());
    world
        .push_chart(Path::new(CHART), "1.4.2", &path, false)
        .await;

    let repo_name = unique_name("update-chart-config");
    let url = world.git_http_url(&repo_name);
    let shop = shop_sync(&url, &ns, &charts, "1.4.2");
    let storefront = umbrella(&charts, "1.4.2", &ns);
    let storefront_gitsync = storefront_sync(&url, &ns);
    let tree = sluice_e2e::files_dir(&[
        (SHOP_FILE, shop.as_str()),
        ("clusters/prod/storefront.yaml", storefront_gitsync.as_str()),
        (UMBRELLA_FILE, storefront.as_str()),
        (
            "charts/storefront/values.yaml",
            "# The shop, as the storefront runs it.\nshop:\n  worker: {enabled: false}\n",
        ),
        (
            "envs/prod/values-prod.yaml",
            "# Production values.\nweb:\n  replicas: 2\n",
        ),
    ]);
    let seed = world.git_seed(&repo_name, Some(tree.path())).await.unwrap();
    u.world_git_secret("git").await;

    // The root GitSync applies the environment's GitSyncs; the shop's renders 1.4.2.
    let synchronizer = Synchronizer::start(world, &ns).await;
    sync::create_git_sync(&u.ns, "prod", &url, "clusters/prod", "git").await;
    sync::wait_applied(&u.ns, "prod", &seed).await;
    wait_web_version(&u.ns, "shop-shop-web", "1.4.2").await;
    // The umbrella chart, its dependency fetched from the registry at render time.
    wait_web_version(&u.ns, "storefront-shop-web", "1.4.2").await;

    // The Config Updater watches the chart's repository like an image's.
    u.create::<config_updater::resource::ImageRepository>(repository(
        "shop-chart",
        &format!("{charts}/shop"),
        "2s",
    ))
    .await;
    u.create::<config_updater::resource::ImagePolicy>(semver_policy("shop-chart", "shop-chart"))
        .await;
    let mut update = image_update("config", &url, Some("2s"));
    update["spec"]["paths"] = json!(["clusters", "charts"]);
    u.create::<config_updater::resource::ImageUpdate>(update)
        .await;
    u.run(None).await;

    // 1.4.3 is published: one commit changes exactly the two pinned versions.
    world
        .push_chart(Path::new(CHART), "1.4.3", &path, false)
        .await;
    let bump = next_commit(world, &repo_name, git2::Oid::from_str(&seed).unwrap()).await;
    assert_eq!(
        file(world, &repo_name, SHOP_FILE),
        shop.replace("version: \"1.4.2\"", "version: \"1.4.3\"")
    );
    assert_eq!(
        file(world, &repo_name, UMBRELLA_FILE),
        storefront.replace("version: 1.4.2 #", "version: 1.4.3 #")
    );
    let message = message(world, &repo_name, bump);
    assert!(
        message
            .lines()
            .any(|l| l.starts_with("Sluice-Change: ") && l.contains("new=1.4.3")),
        "{message}"
    );

    // The root GitSync applies the bumped GitSync; the shop rolls out chart 1.4.3.
    sync::wait_applied(&u.ns, "prod", &bump.to_string()).await;
    wait_web_version(&u.ns, "shop-shop-web", "1.4.3").await;
    wait_web_version(&u.ns, "storefront-shop-web", "1.4.3").await;
    sync::wait_status(&u.ns, "shop", "chart 1.4.3 recorded as applied", |s| {
        s.last_applied_inputs
            .as_deref()
            .is_some_and(|i| i.contains(" 1.4.3 ("))
    })
    .await;

    synchronizer.stop().await;
    u.stop().await;
}
