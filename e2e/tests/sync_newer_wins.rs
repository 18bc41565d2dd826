//! A newer commit is never blocked by the health wait on an older one (Argo CD #11494,
//! kustomize-controller #701): a crash-looping rollout is being waited for with a long health
//! timeout when the fixing commit lands; the fix is applied at the next poll, the crash-looping
//! revision's history entry says it was superseded, and the sync turns Healthy.

mod sync_support;

use std::time::Instant;

use deploy_synchronizer::resource::GitSyncStatus;
use k8s_openapi::api::apps::v1::Deployment;
use serde_json::json;
use sluice_e2e::{TestNamespace, World, unique_name};
use sync_support::*;

const DEPLOYMENT: &str = r#"# The checkout service.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout
spec:
  replicas: 1
  progressDeadlineSeconds: 600   # long: the wait on this rollout would last
  selector:
    matchLabels: {app: checkout}
  template:
    metadata:
      labels: {app: checkout}
    spec:
      containers:
        - name: checkout
          image: "{image}"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixing_commit_supersedes_a_rollout_still_being_waited_for() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-newer").await;
    world
        .push_image(&["demo/checkout:3.1.13", "demo/checkout:3.1.14"])
        .await;
    let image = |tag: &str| format!("{}/demo/checkout:{tag}", world.registry());

    let repo = unique_name("sync-newer");
    let bad = tree(&[(
        "checkout/deployment.yaml",
        &DEPLOYMENT.replace("{image}", &image("3.1.13")),
    )]);
    let seed = world.git_seed(&repo, Some(bad.path())).await.unwrap();
    git_secret(&ns, world, "git").await;
    create_git_sync(
        &ns,
        "checkout",
        &world.git_http_url(&repo),
        "checkout",
        "git",
    )
    .await;
    // A health timeout far longer than the test: only a newer revision can end this wait.
    patch_spec(&ns, "checkout", json!({"healthTimeout": "30m"})).await;
    let synchronizer = Synchronizer::start(world, ns.name()).await;

    // The crash-looping revision is applied and its health is being waited for.
    let waiting_on_seed = |s: &GitSyncStatus| {
        s.history.first().is_some_and(|e| {
            e.revision == seed
                && e.applied_at.is_some()
                && e.healthy_at.is_none()
                && e.failed_at.is_none()
        })
    };
    wait_status(&ns, "checkout", "the rollout to be Degraded", |s| {
        s.is("Healthy=False Degraded") && waiting_on_seed(s)
    })
    .await;

    // The fix lands while that wait runs.
    let good = tree(&[(
        "checkout/deployment.yaml",
        &DEPLOYMENT.replace("{image}", &image("3.1.14")),
    )]);
    let fix = commit_dir(
        world,
        &repo,
        good.path(),
        "checkout: back to a working build",
    )
    .await;
    let committed = Instant::now();
    let applied = wait_applied(&ns, "checkout", &fix).await;
    eprintln!("fix applied {:?} after the commit", committed.elapsed());
    let live = ns.api::<Deployment>().get("checkout").await.unwrap();
    let running = live.spec.template.spec.unwrap().containers[0]
        .image
        .clone()
        .unwrap();
    assert_eq!(running, image("3.1.14"));

    let superseded = applied
        .history
        .iter()
        .find(|e| e.revision == seed)
        .expect("the crash-looping revision in history");
    assert!(
        superseded
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("Superseded") && r.contains(&fix[..7])),
        "{superseded:?}"
    );
    assert!(superseded.healthy_at.is_none(), "{superseded:?}");

    let healthy = wait_status(&ns, "checkout", "the fix to be Healthy", |s| {
        s.is("Healthy=True")
    })
    .await;
    assert_eq!(healthy.history[0].revision, fix);
    assert!(
        healthy.history[0].healthy_at.is_some(),
        "{:?}",
        healthy.history[0]
    );

    synchronizer.stop().await;
}
