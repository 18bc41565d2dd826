//! Deployments in the world roll out for real (controller-manager, scheduler, kwok kubelets): a
//! good image becomes Available, an image matching the world's crash pattern crash-loops and
//! never does. Sluice's health checks and rollbacks rely on both.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use sluice_e2e::{TestNamespace, World, unique_name, wait_until};

/// A small web app, as a Sluice deploy repo would hold it. `{image}` is filled per test.
const WEB_DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app.kubernetes.io/name: web
spec:
  replicas: 2
  # A rollout that makes no progress is reported stuck soon, not after the default 10 min.
  progressDeadlineSeconds: 30
  selector:
    matchLabels:
      app.kubernetes.io/name: web
  template:
    metadata:
      labels:
        app.kubernetes.io/name: web
    spec:
      containers:
        - name: app
          image: "{image}"
          ports:
            - name: http
              containerPort: 8080
"#;

fn deployment_yaml(image: &str) -> String {
    WEB_DEPLOYMENT.replace("{image}", image)
}

fn condition<'a>(d: &'a Deployment, type_: &str) -> Option<(&'a str, Option<&'a str>)> {
    let c = d
        .status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_.as_deref() == Some(type_))?;
    Some((c.status.as_deref()?, c.reason.as_deref()))
}

fn describe(d: &Deployment) -> String {
    let s = d.status.clone().unwrap_or_default();
    format!(
        "generation {:?} observed {:?}, replicas {:?} ready {:?} available {:?} unavailable {:?}, conditions {:?}",
        d.metadata.generation,
        s.observed_generation,
        s.replicas,
        s.ready_replicas,
        s.available_replicas,
        s.unavailable_replicas,
        s.conditions
            .iter()
            .flatten()
            .map(|c| format!(
                "{}={} ({:?})",
                c.type_.as_deref().unwrap_or("?"),
                c.status.as_deref().unwrap_or("?"),
                c.reason
            ))
            .collect::<Vec<_>>()
    )
}

/// Pushes `app:<tag>` to a repository of this test's own and returns its full reference.
async fn pushed_app(world: &World, tag: &str) -> String {
    let repo = format!("e2e/{}/app:{tag}", unique_name("workloads"));
    let pushed = world.push_image(&[&repo]).await;
    assert_eq!(
        pushed.len(),
        1,
        "push-image reports the tag it pushed: {pushed:?}"
    );
    pushed[0].reference()
}

#[tokio::test]
async fn a_good_image_becomes_available() {
    let world = World::get();
    let image = pushed_app(world, "1.4.2").await;
    assert!(
        !world.crash_pattern().is_match(&image),
        "{image} must not match the crash pattern"
    );
    let ns = TestNamespace::create(&world.kube_client().await, "workloads-good").await;

    let applied: Deployment = ns.apply(&deployment_yaml(&image)).await;
    let generation = applied.metadata.generation.expect("a generation");
    let api = ns.api::<Deployment>();
    let available = wait_until(
        "the deployment to become available",
        Duration::from_secs(90),
        || async {
            let d = api.get("web").await.map_err(|e| e.to_string())?;
            let s = d.status.clone().unwrap_or_default();
            let done = s.observed_generation >= Some(generation)
                && s.available_replicas == Some(2)
                && s.updated_replicas == Some(2)
                && condition(&d, "Available").map(|c| c.0) == Some("True");
            if done { Ok(d) } else { Err(describe(&d)) }
        },
    )
    .await;
    assert_eq!(
        condition(&available, "Progressing"),
        Some(("True", Some("NewReplicaSetAvailable"))),
        "{}",
        describe(&available)
    );

    // Its pods really run the image, on the kwok nodes, Ready.
    let pods = ns
        .api::<Pod>()
        .list(&ListParams::default().labels("app.kubernetes.io/name=web"))
        .await
        .expect("pods");
    let running: Vec<_> = pods
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .collect();
    assert_eq!(running.len(), 2, "two running pods");
    for pod in running {
        let spec = pod.spec.as_ref().expect("spec");
        assert_eq!(spec.containers[0].image.as_deref(), Some(image.as_str()));
        assert!(
            spec.node_name
                .as_deref()
                .is_some_and(|n| n.starts_with("kwok-node-")),
            "scheduled: {:?}",
            spec.node_name
        );
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        assert!(ready, "pod {:?} is Ready", pod.metadata.name);
    }
}

#[tokio::test]
async fn a_crash_pattern_image_crash_loops_and_never_becomes_available() {
    let world = World::get();
    let image = pushed_app(world, "1.4.13").await;
    assert!(
        world.crash_pattern().is_match(&image),
        "{image} must match the crash pattern {}",
        world.crash_pattern()
    );
    let ns = TestNamespace::create(&world.kube_client().await, "workloads-crash").await;

    let _: Deployment = ns.apply(&deployment_yaml(&image)).await;
    let pods = ns.api::<Pod>();
    let selector = ListParams::default().labels("app.kubernetes.io/name=web");
    // Both pods crash-loop: waiting in CrashLoopBackOff, not ready, and restarting again and
    // again (restartCount past its first crash).
    let crashing = wait_until(
        "both pods to crash-loop",
        Duration::from_secs(60),
        || async {
            let list = pods.list(&selector).await.map_err(|e| e.to_string())?;
            let mut seen = Vec::new();
            let mut looping = 0;
            for pod in &list.items {
                let status = pod.status.clone().unwrap_or_default();
                for cs in status.container_statuses.iter().flatten() {
                    let reason = cs
                        .state
                        .as_ref()
                        .and_then(|s| s.waiting.as_ref())
                        .and_then(|w| w.reason.clone());
                    seen.push(format!(
                        "{:?}: {:?} restarts {} ready {}",
                        pod.metadata.name, reason, cs.restart_count, cs.ready
                    ));
                    if reason.as_deref() == Some("CrashLoopBackOff")
                        && cs.restart_count > 1
                        && !cs.ready
                    {
                        looping += 1;
                    }
                }
            }
            if looping == 2 && list.items.len() == 2 {
                Ok(list.items)
            } else {
                Err(seen.join("; "))
            }
        },
    )
    .await;
    for pod in &crashing {
        let status = pod.status.as_ref().expect("status");
        assert_eq!(
            status.phase.as_deref(),
            Some("Running"),
            "a crash-looping pod stays Running"
        );
        let ready = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.status.as_str());
        assert_eq!(
            ready,
            Some("False"),
            "pod {:?} is not Ready",
            pod.metadata.name
        );
        let last = status
            .container_statuses
            .as_ref()
            .and_then(|c| c[0].last_state.as_ref())
            .and_then(|s| s.terminated.as_ref());
        assert_eq!(
            last.map(|t| t.exit_code),
            Some(1),
            "the last run exited with an error"
        );
    }

    // Meanwhile the deployment sees none of them available.
    let deployments = ns.api::<Deployment>();
    let stuck = wait_until(
        "the deployment to report no available replica",
        Duration::from_secs(30),
        || async {
            let d = deployments.get("web").await.map_err(|e| e.to_string())?;
            let s = d.status.clone().unwrap_or_default();
            let unavailable = s.replicas == Some(2)
                && s.available_replicas.unwrap_or(0) == 0
                && s.unavailable_replicas == Some(2)
                && condition(&d, "Available")
                    == Some(("False", Some("MinimumReplicasUnavailable")));
            if unavailable {
                Ok(d)
            } else {
                Err(describe(&d))
            }
        },
    )
    .await;
    assert_eq!(
        stuck
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0),
        0,
        "{}",
        describe(&stuck)
    );

    // And once its progressDeadlineSeconds (30 s) pass, the rollout is reported stuck: the
    // signal a rollback acts on.
    wait_until(
        "the rollout to exceed its progress deadline",
        Duration::from_secs(60),
        || async {
            let d = deployments.get("web").await.map_err(|e| e.to_string())?;
            let exceeded =
                condition(&d, "Progressing") == Some(("False", Some("ProgressDeadlineExceeded")));
            if exceeded { Ok(()) } else { Err(describe(&d)) }
        },
    )
    .await;
}
