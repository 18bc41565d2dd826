//! Health after apply: a Deployment whose image crash-loops makes the sync Degraded with the
//! pod's reason while the health wait runs, and HealthTimeout once healthTimeout has passed, with
//! the revision's history entry marked failed.

mod sync_support;

use serde_json::json;
use sluice_e2e::{TestNamespace, World, unique_name};
use sync_support::*;

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: app
          image: "{image}"   # a tag ending in 13 crash-loops in the local world
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_looping_rollout_is_degraded_then_times_out() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-health").await;
    let image = format!("{}/demo/app:1.4.13", world.registry());
    assert!(world.crash_pattern().is_match(&image));
    world.push_image(&["demo/app:1.4.13"]).await;

    let repo = unique_name("sync-health");
    let deployment = DEPLOYMENT.replace("{image}", &image);
    let files = tree(&[("web/deployment.yaml", &deployment)]);
    let seed = world.git_seed(&repo, Some(files.path())).await.unwrap();
    git_secret(&ns, world, "git").await;
    create_git_sync(&ns, "web", &world.git_http_url(&repo), "web", "git").await;
    patch_spec(&ns, "web", json!({"healthTimeout": "20s"})).await;
    let synchronizer = Synchronizer::start(world, ns.name()).await;

    let seen = wait_status(&ns, "web", "the sync to be Degraded", |s| {
        s.is("Healthy=False Degraded")
    })
    .await;
    let message = seen.message("Healthy");
    assert_eq!(seen.last_applied_revision.as_deref(), Some(seed.as_str()));
    assert_eq!(seen.health.as_deref(), Some("Degraded"));
    assert!(message.contains("CrashLoopBackOff"), "{message}");
    assert!(
        message.contains("Deployment"),
        "names the object: {message}"
    );

    let timed_out = wait_status(&ns, "web", "the health timeout", |s| {
        s.is("Healthy=False HealthTimeout")
    })
    .await;
    let entry = &timed_out.history[0];
    assert_eq!(entry.revision, seed);
    assert!(entry.failed_at.is_some(), "{entry:?}");
    assert!(entry.healthy_at.is_none(), "{entry:?}");
    assert!(
        entry
            .reason
            .as_deref()
            .unwrap_or("")
            .starts_with("HealthTimeout"),
        "{entry:?}"
    );
    // Ready stays True: the revision was applied; it is its health that failed.
    assert_eq!(condition(&timed_out, "Ready").unwrap().0, "True");

    synchronizer.stop().await;
}
