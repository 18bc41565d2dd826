//! User story: a chart's release goes bad, as any revision can. A values change that moves the
//! web to a crash-looping image is applied, is not Healthy within `healthTimeout`, and Sluice
//! proposes the revert on its own branch, as it does for plain YAML. A release whose migration
//! hook fails stops before anything else of it is applied: `ApplyFailed` names the hook, and the
//! web keeps running the last good release.
//!
//! Against the real world: `helm` built from Go modules, the git server, kube-apiserver, the
//! Job controller and kwok (whose crash-pattern images crash-loop, Job pods of others complete).

mod sync_support;

use std::path::Path;

use k8s_openapi::api::apps::v1::Deployment;
use serde_json::json;
use sluice_e2e::{TestNamespace, World, unique_name};
use sync_support::*;

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/charts/shop");

/// The chart at `charts/shop` of a fresh directory, with `values-prod.yaml` as given.
fn repository(values_prod: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    sluice_e2e::copy_dir(Path::new(CHART), &dir.path().join("charts/shop"));
    std::fs::write(dir.path().join("charts/shop/values-prod.yaml"), values_prod).unwrap();
    dir
}

async fn web_image(ns: &TestNamespace) -> String {
    let web = ns.api::<Deployment>().get("shop-shop-web").await.unwrap();
    web.spec.template.spec.unwrap().containers[0]
        .image
        .clone()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_chart_release_is_rolled_back_or_stopped_by_its_hook() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-helm-rollback").await;
    world
        .push_image(&["demo/web:1.4.2", "demo/web:1.4.13"])
        .await;
    let good_image = format!("{}/demo/web:1.4.2", world.registry());

    let repo = unique_name("sync-helm-rollback");
    let seed_tree = repository("# Production.\nweb:\n  replicas: 2\n");
    let seed = world.git_seed(&repo, Some(seed_tree.path())).await.unwrap();
    git_secret(&ns, world, "git").await;
    create_git_sync(
        &ns,
        "shop",
        &world.git_http_url(&repo),
        "charts/shop",
        "git",
    )
    .await;
    patch_spec(
        &ns,
        "shop",
        json!({"healthTimeout": "8s", "rollback": {"enabled": true},
               "helm": {"valuesFiles": ["values-prod.yaml"], "includeCRDs": false}}),
    )
    .await;
    let synchronizer = Synchronizer::start(world, ns.name()).await;
    wait_applied(&ns, "shop", &seed).await;
    wait_status(&ns, "shop", "Healthy", |s| s.is("Healthy=True")).await;

    // The web moves to a crash-looping image (the migration keeps a good one): applied, not
    // Healthy within 8 s, and the revert is proposed on its own branch.
    let bad_tree = repository(&format!(
        "# Production.\nweb:\n  replicas: 2\nimage:\n  tag: \"1.4.13\"\nmigrations:\n  image: {good_image}\n"
    ));
    let bad = commit_dir(world, &repo, bad_tree.path(), "shop: web 1.4.13").await;
    let seen = wait_status(&ns, "shop", "a rollback proposal", |s| {
        let entry = s.history.iter().find(|e| e.revision == bad);
        entry.is_some_and(|e| e.rollback_branch.is_some())
    })
    .await;
    let entry = seen.history.iter().find(|e| e.revision == bad).unwrap();
    assert_eq!(
        entry.rollback_branch.as_deref(),
        Some(format!("sluice/rollback/{}", &bad[..7]).as_str())
    );
    assert!(web_image(&ns).await.ends_with(":1.4.13"));

    // The fix goes back to the good image, and then a release whose migration crash-loops: the
    // hook does not finish within healthTimeout, ApplyFailed names it, and nothing else of that
    // release is applied.
    let fixed = commit_dir(world, &repo, seed_tree.path(), "shop: back to 1.4.2").await;
    wait_applied(&ns, "shop", &fixed).await;
    let broken_migration = repository(&format!(
        "# Production.\nweb:\n  replicas: 3\nmigrations:\n  image: {}/demo/web:1.4.13\n",
        world.registry()
    ));
    let stopped = commit_dir(
        world,
        &repo,
        broken_migration.path(),
        "shop: three replicas, new migration",
    )
    .await;
    let refused = wait_status(&ns, "shop", "the hook to stop the release", |s| {
        s.attempted(&stopped) && s.is("Ready=False ApplyFailed")
    })
    .await;
    let (_, _, message) = condition(&refused, "Ready").unwrap();
    assert!(message.contains("shop-shop-migrate"), "{message}");
    assert!(message.contains("did not finish within 8s"), "{message}");
    let web = ns.api::<Deployment>().get("shop-shop-web").await.unwrap();
    assert_eq!(web.spec.replicas, Some(2), "nothing after the hook applied");
    assert_eq!(web_image(&ns).await, good_image);
    assert!(refused.applied(&fixed));
    synchronizer.stop().await;
}
