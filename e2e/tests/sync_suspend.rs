//! A suspended GitSync applies and heals nothing: it says so in Ready, a commit made meanwhile stays out
//! of the cluster, and resuming applies it.

mod sync_support;

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::json;
use sluice_e2e::{TestNamespace, World, edit_by_hand, unique_name};
use sync_support::*;

fn config_map(colour: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: theme\ndata:\n  colour: {colour}\n"
    )
}

async fn set_suspend(ns: &TestNamespace, suspend: bool) {
    patch_spec(ns, "theme", json!({"suspend": suspend})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_sync_applies_nothing_until_resumed() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-suspend").await;
    let repo = unique_name("sync-suspend");
    let blue = tree(&[("theme.yaml", &config_map("blue"))]);
    let seed = world.git_seed(&repo, Some(blue.path())).await.unwrap();
    git_secret(&ns, world, "git").await;
    create_git_sync(&ns, "theme", &world.git_http_url(&repo), "", "git").await;
    let synchronizer = Synchronizer::start(world, ns.name()).await;
    wait_status(&ns, "theme", "the seed commit to be applied", |s| {
        s.applied(&seed)
    })
    .await;

    set_suspend(&ns, true).await;
    let suspended = "Ready=False Suspended";
    wait_status_within(&ns, "theme", suspended, Duration::from_secs(30), |s| {
        s.is(suspended)
    })
    .await;
    let green = tree(&[("theme.yaml", &config_map("green"))]);
    let change = commit_dir(world, &repo, green.path(), "theme: green").await;
    // Several poll intervals (2 s) pass: nothing of the new commit may arrive.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let status_now = status(&ns, "theme").await.unwrap();
    assert_eq!(
        status_now.last_applied_revision.as_deref(),
        Some(seed.as_str())
    );
    assert_eq!(
        status_now.last_attempted_revision.as_deref(),
        Some(seed.as_str())
    );
    let cm = ns.api::<ConfigMap>().get("theme").await.unwrap();
    assert_eq!(cm.data.unwrap()["colour"], "blue");

    // Nor does it heal: an edit made while suspended stays.
    edit_by_hand(
        &ns.api::<ConfigMap>(),
        "theme",
        json!({"data": {"colour": "red"}}),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let cm = ns.api::<ConfigMap>().get("theme").await.unwrap();
    assert_eq!(cm.data.unwrap()["colour"], "red", "a suspended sync healed");

    set_suspend(&ns, false).await;
    wait_applied(&ns, "theme", &change).await;
    let cm = ns.api::<ConfigMap>().get("theme").await.unwrap();
    assert_eq!(cm.data.unwrap()["colour"], "green");

    synchronizer.stop().await;
}
