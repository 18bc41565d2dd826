//! A team's namespace of ten small services (a ConfigMap, a Deployment and a Service each), the
//! size at which the synchronizer reads a kind with one list instead of object by object:
//! - the release is applied and goes Healthy (list items carry no kind of their own);
//! - the next commit breaks one service's image and retires another: the sync is Degraded
//!   naming the broken Deployment and its pod's CrashLoopBackOff; the retired Deployment and
//!   Service are pruned, its ConfigMap marked `sluice.dev/prune: disabled` is kept.

mod sync_support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use sluice_e2e::{TestNamespace, World, unique_name, wait_until};
use sync_support::*;

const SERVICES: usize = 10;

/// One service's file, as teams write them: comments, flow maps, a stray `---` at the end.
fn service_file(n: usize, image: &str) -> String {
    let keep = if n == 9 {
        "\n  annotations:\n    sluice.dev/prune: disabled   # the team still reads it by hand"
    } else {
        ""
    };
    format!(
        r#"# svc-{n:02}: settings, workload and its Service.
apiVersion: v1
kind: ConfigMap
metadata:
  name: svc-{n:02}-config{keep}
data: {{LOG_LEVEL: info, PORT: "8080"}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: svc-{n:02}
  labels: {{app: svc-{n:02}}}
spec:
  replicas: 1
  progressDeadlineSeconds: 600
  selector:
    matchLabels: {{app: svc-{n:02}}}
  template:
    metadata:
      labels: {{app: svc-{n:02}}}
    spec:
      containers:
      - name: app
        image: "{image}"
        envFrom: [{{configMapRef: {{name: svc-{n:02}-config}}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: svc-{n:02}}}
spec:
  selector: {{app: svc-{n:02}}}
  ports: [{{port: 80, targetPort: 8080}}]
---
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_services_go_healthy_then_one_breaks_and_one_is_retired() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-fleet").await;
    world
        .push_image(&["demo/app:1.4.2", "demo/app:1.4.13"])
        .await;
    let good = format!("{}/demo/app:1.4.2", world.registry());
    let crashing = format!("{}/demo/app:1.4.13", world.registry());
    assert!(world.crash_pattern().is_match(&crashing));

    let repo = unique_name("sync-fleet");
    let files: Vec<(String, String)> = (0..SERVICES)
        .map(|n| (format!("fleet/svc-{n:02}.yaml"), service_file(n, &good)))
        .collect();
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let dir = tree(&borrowed);
    let seed = world.git_seed(&repo, Some(dir.path())).await.unwrap();
    git_secret(&ns, world, "git").await;
    create_git_sync(&ns, "fleet", &world.git_http_url(&repo), "fleet", "git").await;
    let synchronizer = Synchronizer::start(world, ns.name()).await;

    // The release: thirty objects applied, then Healthy.
    let applied = wait_applied(&ns, "fleet", &seed).await;
    assert_eq!(applied.inventory.len(), 3 * SERVICES);
    let (_, reason, message) = wait_health(&ns, "fleet", "the fleet to be Healthy", |s, _, _| {
        s == "True"
    })
    .await;
    assert_eq!(reason, "Healthy", "{message}");
    assert!(!message.contains("no kind"), "{message}");
    let healthy = status(&ns, "fleet").await.unwrap();
    assert_eq!(healthy.health.as_deref(), Some("Healthy"));
    assert!(
        healthy.history[0].healthy_at.is_some(),
        "{:?}",
        healthy.history
    );

    // svc-03 gets an image that crash-loops; svc-09 leaves the repository.
    std::fs::write(
        dir.path().join("fleet/svc-03.yaml"),
        service_file(3, &crashing),
    )
    .unwrap();
    std::fs::remove_file(dir.path().join("fleet/svc-09.yaml")).unwrap();
    let broken = commit_dir(world, &repo, dir.path(), "svc-03 1.4.13; retire svc-09").await;
    let applied = wait_applied(&ns, "fleet", &broken).await;
    assert_eq!(applied.inventory.len(), 3 * (SERVICES - 1));
    let (_, _, message) = wait_health(&ns, "fleet", "svc-03 to be Degraded", |s, reason, _| {
        s == "False" && reason == "Degraded"
    })
    .await;
    assert!(
        message.contains("svc-03"),
        "names the Deployment: {message}"
    );
    assert!(message.contains("CrashLoopBackOff"), "{message}");

    wait_until(
        "the retired Deployment and Service to be pruned",
        Duration::from_secs(30),
        || async {
            let deployment = ns.api::<Deployment>().get_opt("svc-09").await;
            let service = ns.api::<Service>().get_opt("svc-09").await;
            match (deployment, service) {
                (Ok(None), Ok(None)) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    let kept = ns
        .api::<ConfigMap>()
        .get_opt("svc-09-config")
        .await
        .unwrap();
    assert!(kept.is_some(), "the prune opt-out is honoured");
    assert!(
        ns.api::<Deployment>()
            .get_opt("svc-08")
            .await
            .unwrap()
            .is_some(),
        "the others stay"
    );

    synchronizer.stop().await;
}
