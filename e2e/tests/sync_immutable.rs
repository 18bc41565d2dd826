//! A commit that changes an immutable field (a Deployment's selector) is refused by the dry-run
//! with the fix named, and nothing is written; once the GitSync allows re-creating, the object is
//! deleted and applied again.

mod sync_support;

use k8s_openapi::api::apps::v1::Deployment;
use serde_json::json;
use sluice_e2e::{TestNamespace, World, unique_name};
use sync_support::*;

fn deployment(image: &str, app: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  replicas: 1
  selector:
    matchLabels: {{app: {app}}}   # immutable once created
  template:
    metadata:
      labels: {{app: {app}}}
    spec:
      containers:
        - {{name: worker, image: "{image}"}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_immutable_change_is_refused_then_recreated_when_allowed() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-immutable").await;
    let image = format!("{}/demo/app:1.4.2", world.registry());
    world.push_image(&["demo/app:1.4.2"]).await;

    let repo = unique_name("sync-immutable");
    let v1 = tree(&[("worker.yaml", &deployment(&image, "worker"))]);
    let seed = world.git_seed(&repo, Some(v1.path())).await.unwrap();
    git_secret(&ns, world, "git").await;
    create_git_sync(&ns, "worker", &world.git_http_url(&repo), "", "git").await;
    let synchronizer = Synchronizer::start(world, ns.name()).await;
    wait_status(&ns, "worker", "the seed commit to be applied", |s| {
        s.applied(&seed)
    })
    .await;
    let first_uid = ns
        .api::<Deployment>()
        .get("worker")
        .await
        .unwrap()
        .metadata
        .uid;

    let v2 = tree(&[("worker.yaml", &deployment(&image, "worker-v2"))]);
    let change = commit_dir(world, &repo, v2.path(), "worker: new selector").await;
    let refused = wait_status(&ns, "worker", "the immutable change to be refused", |s| {
        s.is("Ready=False ValidationFailed") && s.attempted(&change)
    })
    .await;
    let message = refused.message("Ready");
    assert!(message.contains("field is immutable"), "{message}");
    assert!(
        message.contains("recreateOnImmutableChange"),
        "names the fix: {message}"
    );
    assert!(message.contains("(from worker.yaml:1)"), "{message}");
    let unchanged = ns.api::<Deployment>().get("worker").await.unwrap();
    assert_eq!(unchanged.metadata.uid, first_uid, "nothing was written");

    patch_spec(&ns, "worker", json!({"recreateOnImmutableChange": true})).await;
    let applied = wait_status(&ns, "worker", "the Deployment to be re-created", |s| {
        s.applied(&change)
    })
    .await;
    let (_, _, message) = condition(&applied, "Ready").unwrap();
    assert!(message.contains("1 re-created"), "{message}");
    let recreated = ns.api::<Deployment>().get("worker").await.unwrap();
    assert_ne!(recreated.metadata.uid, first_uid);
    let labels = recreated.spec.selector.match_labels.unwrap();
    assert_eq!(labels["app"], "worker-v2");

    synchronizer.stop().await;
}
