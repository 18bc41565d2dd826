//! Health of the kinds beyond Deployments, on the world's real controllers. One GitSync applies a
//! StatefulSet and a DaemonSet (kwok makes their pods Ready), a Job (kwok completes its pod), a
//! PersistentVolumeClaim (no provisioner here: Pending), a `type: LoadBalancer` Service (no load
//! balancer controller: no address), and a small CRD with one custom resource. Step by step the
//! GitSync's Healthy condition names what holds it back:
//! - Progressing, naming the claim and the Service (the workloads and the Job are healthy);
//! - a PersistentVolume made for the claim, the PV controller binds it: only the Service left;
//! - its status patched with an ingress IP, as a cloud controller would: Healthy (event Healthy);
//! - the custom resource's `Ready` condition False: Degraded naming it (event HealthChanged);
//!   True again: Healthy (HealthChanged).
//!
//! Last, `kubectl get gitsync` shows the revision, the health and Ready in its columns.

mod sync_support;

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Service};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use sluice_e2e::{TestNamespace, World, unique_name, wait_until};
use sync_support::*;

const CRD: &str = r#"# Carts, reconciled by the shop's own operator (not running here: the test plays it).
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: carts.{group}
spec:
  group: {group}
  scope: Namespaced
  names: {plural: carts, singular: cart, kind: Cart, listKind: CartList}
  versions:
    - name: v1
      served: true
      storage: true
      subresources:
        status: {}
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
"#;

const CART: &str = r#"apiVersion: {group}/v1
kind: Cart
metadata:
  name: main
spec:
  currency: EUR
  checkout: {timeoutSeconds: 30}
"#;

const STATEFUL_SET: &str = r#"apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
  labels: {app.kubernetes.io/name: db}
spec:
  serviceName: db
  replicas: 2
  selector:
    matchLabels: {app.kubernetes.io/name: db}
  template:
    metadata:
      labels: {app.kubernetes.io/name: db}
    spec:
      containers:
        - name: db
          image: "{registry}/demo/db:16.4.0"
          ports: [{name: pg, containerPort: 5432}]
"#;

const DAEMON_SET: &str = r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: log-shipper
spec:
  selector:
    matchLabels: {app.kubernetes.io/name: log-shipper}
  template:
    metadata:
      labels: {app.kubernetes.io/name: log-shipper}
    spec:
      containers:
        - name: shipper
          image: "{registry}/demo/shipper:3.0.2"
"#;

const JOB: &str = r#"# The schema migration, run once per release.
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
spec:
  backoffLimit: 2
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: "{registry}/demo/migrate:2.4.0"
          args: ["--to", "latest"]
"#;

const CLAIM: &str = r#"# Uploaded product images. No StorageClass: an administrator provides the volume.
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: uploads
spec:
  storageClassName: ""
  accessModes: [ReadWriteOnce]
  resources:
    requests: {storage: 1Gi}
"#;

const LOAD_BALANCER: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: front
spec:
  type: LoadBalancer
  selector: {app.kubernetes.io/name: front}
  ports:
    - {name: http, port: 80, targetPort: 8080}
"#;

/// The notes of the events about GitSync `shop` with `reason`, oldest first.
async fn events(ns: &TestNamespace, reason: &str) -> Vec<(String, String)> {
    let list = ns
        .api::<Event>()
        .list(&Default::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    list.into_iter()
        .filter(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("shop")
                && e.reason.as_deref() == Some(reason)
        })
        .map(|e| (e.type_.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect()
}

async fn wait_event(ns: &TestNamespace, reason: &str, note_has: &str) -> (String, String) {
    wait_until(
        &format!("an event {reason} saying {note_has:?}"),
        Duration::from_secs(30),
        || async {
            let all = events(ns, reason).await;
            all.iter()
                .find(|(_, note)| note.contains(note_has))
                .cloned()
                .ok_or_else(|| format!("{reason} events: {all:?}"))
        },
    )
    .await
}

/// Sets the Cart's `Ready` condition through the status subresource, as its operator would.
async fn set_cart_ready(carts: &Api<DynamicObject>, status: &str, reason: &str, message: &str) {
    let patch = json!({"status": {"conditions": [{
        "type": "Ready", "status": status, "reason": reason, "message": message,
        "lastTransitionTime": "2026-11-22T08:00:00Z"}]}});
    carts
        .patch_status("main", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patching the Cart's status");
}

/// Deletes the test's cluster-scoped objects even when it fails.
struct ClusterCleanup {
    client: Client,
    crd: String,
    volume: String,
}

impl Drop for ClusterCleanup {
    fn drop(&mut self) {
        let (client, crd, volume) = (self.client.clone(), self.crd.clone(), self.volume.clone());
        let cleanup = async move {
            let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
            let _ = crds.delete(&crd, &DeleteParams::default()).await;
            let volumes: Api<PersistentVolume> = Api::all(client);
            let _ = volumes.delete(&volume, &DeleteParams::default()).await;
        };
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            tokio::task::block_in_place(|| handle.block_on(cleanup));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_holds_health_back_until_it_is_ready_and_the_columns_show_it() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-hkinds").await;
    let group = format!("{}.e2e.sluice.dev", unique_name("shop"));
    let volume = format!("uploads-{}", ns.name());
    let _cleanup = ClusterCleanup {
        client: client.clone(),
        crd: format!("carts.{group}"),
        volume: volume.clone(),
    };

    let registry = world.registry();
    let fill = |s: &str| s.replace("{group}", &group).replace("{registry}", registry);
    let files = tree(&[
        ("shop/crd.yaml", &fill(CRD)),
        ("shop/cart.yaml", &fill(CART)),
        ("shop/db.yaml", &fill(STATEFUL_SET)),
        ("shop/log-shipper.yaml", &fill(DAEMON_SET)),
        ("shop/migrate.yaml", &fill(JOB)),
        ("shop/uploads.yaml", CLAIM),
        ("shop/front.yaml", LOAD_BALANCER),
    ]);
    let repo = unique_name("sync-hkinds");
    let seed = world.git_seed(&repo, Some(files.path())).await.unwrap();
    git_secret(&ns, world, "git").await;
    create_git_sync_spec(
        &ns,
        "shop",
        json!({
            "source": {"url": world.git_http_url(&repo), "ref": {"branch": "main"},
                       "path": "shop", "interval": "2s", "secretRef": {"name": "git"}},
            "targetNamespace": ns.name(),
            "allowClusterScoped": true,
            "healthTimeout": "5m"
        }),
    )
    .await;
    let synchronizer = Synchronizer::start(world, ns.name()).await;
    let applied = wait_applied(&ns, "shop", &seed).await;
    assert_eq!(applied.inventory.len(), 7, "{}", describe(&applied));

    // (1) Progressing: only the claim and the load balancer are waiting; the StatefulSet, the
    // DaemonSet, the Job and the Cart (no conditions yet) are healthy.
    let claim = format!("PersistentVolumeClaim {}/uploads: Progressing", ns.name());
    let front = format!("Service {}/front: Progressing", ns.name());
    let (_, reason, message) = wait_health(
        &ns,
        "shop",
        "only the claim and the LB to wait",
        |s, r, m| {
            s == "Unknown"
                && r == "Progressing"
                && m.contains(&claim)
                && m.contains(&front)
                && m.split("; ").count() == 2
        },
    )
    .await;
    println!("(1) {reason}: {message}");
    assert!(message.contains("waiting to be bound"), "{message}");
    assert!(
        message.contains("waiting for a load balancer address"),
        "{message}"
    );
    let job = ns.api::<Job>().get("migrate").await.unwrap();
    let complete = job
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Complete" && c.status == "True");
    assert!(complete, "the Job completed in the world");

    // (2) A volume for the claim, as an administrator provides one: the PV controller binds it.
    let pv: PersistentVolume = serde_json::from_value(json!({
        "metadata": {"name": volume, "labels": {"sluice.dev/e2e": "true"}},
        "spec": {
            "capacity": {"storage": "2Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            "hostPath": {"path": format!("/srv/{volume}")},
            // Reserved for this claim, so no other test's claim takes it.
            "claimRef": {"namespace": ns.name(), "name": "uploads"}
        }
    }))
    .unwrap();
    Api::<PersistentVolume>::all(client.clone())
        .create(&PostParams::default(), &pv)
        .await
        .expect("creating the PersistentVolume");
    let (_, reason, message) = wait_health(&ns, "shop", "only the LB to wait", |s, r, m| {
        s == "Unknown" && r == "Progressing" && m.contains(&front) && !m.contains("uploads")
    })
    .await;
    println!("(2) {reason}: {message}");
    let bound = ns
        .api::<PersistentVolumeClaim>()
        .get("uploads")
        .await
        .unwrap();
    assert_eq!(bound.status.and_then(|s| s.phase).as_deref(), Some("Bound"));

    // (3) An address for the load balancer, as a cloud controller would write it: Healthy.
    let patch = json!({"status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}}});
    ns.api::<Service>()
        .patch_status("front", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patching the Service's status");
    let (_, reason, message) = wait_health(&ns, "shop", "Healthy", |s, r, _| {
        s == "True" && r == "Healthy"
    })
    .await;
    println!("(3) {reason}: {message}");
    assert!(message.contains("7 objects healthy"), "{message}");
    let healthy = status(&ns, "shop").await.unwrap();
    assert_eq!(healthy.health.as_deref(), Some("Healthy"));
    assert!(
        healthy.history[0].healthy_at.is_some(),
        "{}",
        describe(&healthy)
    );
    let (kind, note) = wait_event(&ns, "Healthy", "Healthy").await;
    assert_eq!(kind, "Normal", "{note}");

    // (4) The Cart's operator reports it not Ready: Degraded, naming it and why.
    let resource = ApiResource {
        group: group.clone(),
        version: "v1".into(),
        api_version: format!("{group}/v1"),
        kind: "Cart".into(),
        plural: "carts".into(),
    };
    let carts: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns.name(), &resource);
    set_cart_ready(
        &carts,
        "False",
        "PaymentBackendDown",
        "dial tcp 10.0.0.9:443: connection refused",
    )
    .await;
    let cart = format!("Cart {}/main: Degraded: PaymentBackendDown", ns.name());
    let (_, reason, message) = wait_health(&ns, "shop", "Degraded by the Cart", |s, r, m| {
        s == "False" && r == "Degraded" && m.contains(&cart)
    })
    .await;
    println!("(4) {reason}: {message}");
    assert!(message.contains("connection refused"), "{message}");
    let (kind, note) = wait_event(&ns, "HealthChanged", "Degraded").await;
    assert_eq!(kind, "Warning", "{note}");
    assert!(note.contains("Cart"), "{note}");

    // (5) Ready again: Healthy, and the change is an event too.
    set_cart_ready(&carts, "True", "Reconciled", "checkout is reachable").await;
    let (_, reason, message) = wait_health(&ns, "shop", "Healthy again", |s, r, _| {
        s == "True" && r == "Healthy"
    })
    .await;
    println!("(5) {reason}: {message}");
    let (kind, note) = wait_event(&ns, "HealthChanged", "Healthy").await;
    assert_eq!(kind, "Normal", "{note}");

    // (6) What `kubectl get gitsyncs` shows.
    let out = std::process::Command::new("kubectl")
        .args(["get", "gitsync", "-n", ns.name()])
        .env("KUBECONFIG", world.kubeconfig())
        .output()
        .expect("running the world's kubectl (is the world's env sourced?)");
    assert!(
        out.status.success(),
        "kubectl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    println!("(6) kubectl get gitsync:\n{table}");
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    for column in ["NAME", "REVISION", "HEALTH", "READY"] {
        assert!(header.contains(&column), "{column} not in {header:?}");
    }
    let row: Vec<&str> = lines.next().expect("a row").split_whitespace().collect();
    let cell = |column: &str| row[header.iter().position(|h| *h == column).unwrap()];
    assert_eq!(cell("NAME"), "shop");
    // The commit id, whole or abbreviated.
    let revision = cell("REVISION");
    assert!(
        revision.len() >= 7 && seed.starts_with(revision),
        "REVISION {revision} is not {seed}"
    );
    assert_eq!(cell("HEALTH"), "Healthy");
    assert_eq!(cell("READY"), "True");

    synchronizer.stop().await;
}
