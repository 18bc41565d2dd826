//! A commit reaches the cluster: a GitSync over HTTP with a basic-auth Secret applies the config
//! repo's three objects, reports the revision, the inventory and health; the next commit changes
//! the ConfigMap and removes the Service, which is pruned.

mod sync_support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::events::v1::Event;
use sluice_e2e::{TestNamespace, World, unique_name, wait_until};
use sync_support::*;

const CONFIG_MAP: &str = r#"# Settings the web app reads at start.
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  labels: {app.kubernetes.io/name: web}   # flow style, as people write it
data:
  log-level: info
  greeting: "hello from git"
  motd: |
    Welcome.
    Deployed by Sluice.
"#;

const CONFIG_MAP_V2: &str = r#"# Settings the web app reads at start.
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  labels: {app.kubernetes.io/name: web}
data:
  log-level: debug      # turned up to chase a bug
  greeting: "hello from git"
  motd: |
    Welcome.
    Deployed by Sluice.
"#;

const DEPLOYMENT: &str = r#"---
# The web app itself.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app.kubernetes.io/name: web
spec:
  replicas: 2
  progressDeadlineSeconds: 60
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
            - {name: http, containerPort: 8080}
          envFrom:
            - configMapRef: {name: web-config}
"#;

const SERVICE: &str = r#"
---
apiVersion: v1
kind: Service
metadata:
  name:   web
spec:
  selector:
    app.kubernetes.io/name: web
  ports:
  - name: http
    port: 80
    targetPort: http
---
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_is_applied_and_the_next_one_updates_and_prunes() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-apply").await;
    let image = format!("{}/demo/app:1.4.2", world.registry());
    world.push_image(&["demo/app:1.4.2"]).await;

    let repo = unique_name("sync-apply");
    let deployment = DEPLOYMENT.replace("{image}", &image);
    let seed_files = tree(&[
        ("README.md", "The web app's config.\n"),
        ("apps/web/configmap.yaml", CONFIG_MAP),
        ("apps/web/deployment.yaml", &deployment),
        ("apps/web/service.yaml", SERVICE),
    ]);
    let seed = world
        .git_seed(&repo, Some(seed_files.path()))
        .await
        .expect("the seed commit");
    git_secret(&ns, world, "git-credentials").await;
    create_git_sync(
        &ns,
        "web",
        &world.git_http_url(&repo),
        "apps/web",
        "git-credentials",
    )
    .await;
    let synchronizer = Synchronizer::start(world, ns.name()).await;

    // (a) The seed commit is applied: three objects, Ready, then Healthy once the pods are up.
    let applied = wait_applied(&ns, "web", &seed).await;
    assert_eq!(
        applied.last_attempted_revision.as_deref(),
        Some(seed.as_str())
    );
    let mut inventory: Vec<_> = applied
        .inventory
        .iter()
        .map(|e| {
            (
                e.group.as_str(),
                e.kind.as_str(),
                e.namespace.as_str(),
                e.name.as_str(),
            )
        })
        .collect();
    inventory.sort();
    assert_eq!(
        inventory,
        [
            ("", "ConfigMap", ns.name(), "web-config"),
            ("", "Service", ns.name(), "web"),
            ("apps", "Deployment", ns.name(), "web"),
        ]
    );
    assert_eq!(applied.history[0].revision, seed);
    assert_eq!(applied.history[0].subject, format!("seed {repo}"));

    let cm = ns.api::<ConfigMap>().get("web-config").await.unwrap();
    assert_eq!(cm.data.as_ref().unwrap()["log-level"], "info");
    let annotations = cm.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations.get("sluice.dev/owner").map(String::as_str),
        Some(format!("{}/web", ns.name()).as_str())
    );
    let managers: Vec<_> = cm
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(managers.contains(&"sluice".to_owned()), "{managers:?}");
    ns.api::<Deployment>()
        .get("web")
        .await
        .expect("the Deployment");
    ns.api::<Service>().get("web").await.expect("the Service");

    let healthy = wait_status(&ns, "web", "the sync to be Healthy", |s| {
        s.health.as_deref() == Some("Healthy") && s.is("Healthy=True")
    })
    .await;
    assert!(
        healthy.history[0].healthy_at.is_some(),
        "{:?}",
        healthy.history
    );

    // (b) The next commit changes the ConfigMap and removes the Service.
    let next_files = tree(&[
        ("README.md", "The web app's config.\n"),
        ("apps/web/configmap.yaml", CONFIG_MAP_V2),
        ("apps/web/deployment.yaml", &deployment),
    ]);
    let next = commit_dir(
        world,
        &repo,
        next_files.path(),
        "web: debug logging, no Service",
    )
    .await;
    let updated = wait_status(&ns, "web", "the second commit to be applied", |s| {
        s.applied(&next)
    })
    .await;
    let kinds: Vec<_> = updated.inventory.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(updated.inventory.len(), 2, "{kinds:?}");
    assert!(!kinds.contains(&"Service"), "{kinds:?}");
    let cm = ns.api::<ConfigMap>().get("web-config").await.unwrap();
    assert_eq!(cm.data.as_ref().unwrap()["log-level"], "debug");
    let service = ns.api::<Service>().get_opt("web").await.unwrap();
    assert!(
        service.is_none_or(|s| s.metadata.deletion_timestamp.is_some()),
        "the Service is pruned"
    );
    assert_eq!(updated.history[0].revision, next);
    assert_eq!(updated.history[1].revision, seed);

    // Each sync and the prune left an Event on the GitSync.
    let events: kube::Api<Event> = ns.api();
    let reasons = wait_until(
        "the sync and prune events",
        Duration::from_secs(30),
        || async {
            let list = events
                .list(&Default::default())
                .await
                .map_err(|e| e.to_string())?;
            let about_web: Vec<(String, String)> = list
                .items
                .iter()
                .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("web"))
                .filter(|e| e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("GitSync"))
                .map(|e| {
                    (
                        e.reason.clone().unwrap_or_default(),
                        e.note.clone().unwrap_or_default(),
                    )
                })
                .collect();
            let has = |reason: &str| about_web.iter().any(|(r, _)| r == reason);
            if has("Synced") && has("Pruned") && has("Healthy") {
                Ok(about_web)
            } else {
                Err(format!("{about_web:?}"))
            }
        },
    )
    .await;
    let pruned = reasons.iter().find(|(r, _)| r == "Pruned").unwrap();
    assert!(
        pruned
            .1
            .contains(&format!("core/Service/{}/web", ns.name())),
        "{pruned:?}"
    );

    synchronizer.stop().await;
}
