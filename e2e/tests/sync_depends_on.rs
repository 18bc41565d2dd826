//! User story: a platform team splits its repository into sources that must go in order. The
//! `platform` GitSync installs a CRD and the operator that serves it; the `shop` GitSync holds a
//! custom resource of that CRD and `dependsOn` the platform. Created together, the shop waits —
//! `Ready=False`, reason `DependencyNotReady`, naming the platform — and applies once the platform
//! is applied and Healthy, with no failed attempt in between. Two GitSyncs that depend on each
//! other are refused as a cycle.
//!
//! Against the real world: the git server, kube-apiserver (CRDs established for real) and kwok.

mod sync_support;

use serde_json::json;
use sluice_e2e::{TestNamespace, World, unique_name};
use sync_support::*;

const CRD: &str = r#"# The Discount kind, served by the pricing operator.
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.pricing.example.com
spec:
  group: pricing.example.com
  names: {kind: {kind}, plural: {plural}, singular: {singular}}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {type: object, properties: {percent: {type: integer}}}
"#;

const OPERATOR: &str = r#"# The pricing operator.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: pricing-operator
spec:
  replicas: 1
  selector:
    matchLabels: {app: pricing-operator}
  template:
    metadata:
      labels: {app: pricing-operator}
    spec:
      containers:
        - name: operator
          image: {image}
"#;

const DISCOUNT: &str = r#"# Black Friday: 20 % off.
apiVersion: pricing.example.com/v1
kind: {kind}
metadata:
  name: black-friday
spec:
  percent: 20
"#;

fn spec(url: &str, path: &str, ns: &str, depends_on: serde_json::Value) -> serde_json::Value {
    json!({
        "source": {"url": url, "ref": {"branch": "main"}, "path": path, "interval": "1h",
                   "secretRef": {"name": "git"}},
        "targetNamespace": ns,
        "allowClusterScoped": true,
        "healthTimeout": "2m",
        "dependsOn": depends_on,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_waits_for_its_platform_to_be_healthy_and_a_cycle_is_refused() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-depends").await;
    world.push_image(&["demo/pricing:1.0.0"]).await;
    // A kind of this run's own: the CRD is cluster-scoped and outlives the namespace.
    let suffix = unique_name("d").replace('-', "");
    let (kind, plural) = (format!("Discount{suffix}"), format!("discounts{suffix}"));
    let fill = |text: &str| {
        text.replace("{kind}", &kind)
            .replace("{plural}", &plural)
            .replace("{singular}", &format!("discount{suffix}"))
            .replace(
                "{image}",
                &format!("{}/demo/pricing:1.0.0", world.registry()),
            )
    };
    let files = tree(&[
        ("platform/crd.yaml", &fill(CRD)),
        ("platform/operator.yaml", &fill(OPERATOR)),
        ("shop/discount.yaml", &fill(DISCOUNT)),
    ]);
    let repo = unique_name("sync-depends");
    let seed = world.git_seed(&repo, Some(files.path())).await.unwrap();
    let url = world.git_http_url(&repo);
    git_secret(&ns, world, "git").await;
    // The shop first, so it would fail on the unknown kind if it did not wait.
    create_git_sync_spec(
        &ns,
        "shop",
        spec(&url, "shop", ns.name(), json!([{"name": "platform"}])),
    )
    .await;
    create_git_sync_spec(
        &ns,
        "platform",
        spec(&url, "platform", ns.name(), json!([])),
    )
    .await;
    let synchronizer = Synchronizer::start(world, ns.name()).await;

    let waiting = wait_status(&ns, "shop", "Ready=False DependencyNotReady", |s| {
        s.is("Ready=False DependencyNotReady")
    })
    .await;
    let (_, _, message) = condition(&waiting, "Ready").unwrap();
    assert!(
        message.contains(&format!("GitSync {}/platform", ns.name())),
        "{message}"
    );

    let platform = wait_applied(&ns, "platform", &seed).await;
    let shop = wait_applied(&ns, "shop", &seed).await;
    assert!(platform.inventory.len() == 2, "{platform:?}");
    // Never a failed attempt: the shop's only history entry is the applied revision.
    assert!(
        shop.history.iter().all(|h| h.failed_at.is_none()),
        "{:?}",
        shop.history
    );
    assert_eq!(shop.history.len(), 1, "{:?}", shop.history);

    // A cycle: refused, naming the chain.
    create_git_sync_spec(
        &ns,
        "a",
        spec(&url, "shop", ns.name(), json!([{"name": "b"}])),
    )
    .await;
    create_git_sync_spec(
        &ns,
        "b",
        spec(&url, "shop", ns.name(), json!([{"name": "a"}])),
    )
    .await;
    let refused = wait_refused(&ns, "a", "DependencyCycle").await;
    let (_, _, message) = condition(&refused, "Ready").unwrap();
    let ns_name = ns.name();
    assert!(
        message.contains(&format!("{ns_name}/a → {ns_name}/b → {ns_name}/a")),
        "{message}"
    );
    synchronizer.stop().await;
}
