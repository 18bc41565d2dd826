//! The guards a platform team relies on, one commit after another on one GitSync:
//! - prune deletes what left Git, but keeps an object marked `sluice.dev/prune: disabled`;
//! - an empty render does not prune everything unless `allowEmpty` says so;
//! - an object in a namespace the sync may not write to, or a cluster-scoped one it may not
//!   apply, is refused before any write, naming the file;
//! - the server-side dry-run refuses a bad field before any write, naming file and object;
//! - an object another GitSync owns is a conflict, not a takeover;
//! - a Kustomize overlay (name prefix, labels, a generated ConfigMap) renders and applies.

mod sync_support;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use serde_json::json;
use sluice_e2e::{TestNamespace, World, unique_name};
use sync_support::*;

fn config_map(name: &str, extra_metadata: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n{extra_metadata}data:\n  owner: platform-team\n"
    )
}

const KEEP_ME: &str = r#"# Kept when it leaves Git: the database team took it over.
apiVersion: v1
kind: ConfigMap
metadata:
  name: keep-me
  annotations:
    sluice.dev/prune: disabled
data: {schema: "v7"}
"#;

const BAD_FIELD: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  replica: 2            # a typo: the field is `replicas`
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers: [{name: api, image: "registry.invalid/api:1"}]
"#;

const KUSTOMIZATION: &str = r#"# The shop overlay.
namePrefix: shop-
labels:
  - pairs: {app.kubernetes.io/part-of: shop}
resources:
  - settings.yaml
configMapGenerator:
  - name: flags
    literals: [checkout=on]
"#;

async fn names(ns: &TestNamespace) -> Vec<String> {
    let mut names: Vec<String> = ns
        .api::<ConfigMap>()
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|cm| cm.name_any())
        .filter(|n| n != "kube-root-ca.crt")
        .collect();
    names.sort();
    names
}

fn message_of(status: &deploy_synchronizer::resource::GitSyncStatus) -> String {
    condition(status, "Ready")
        .map(|(_, _, m)| m)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_scope_and_validation_guards_hold() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-guards").await;
    let repo = unique_name("sync-guards");
    let seed_files = tree(&[
        ("settings.yaml", &config_map("settings", "")),
        ("keep-me.yaml", KEEP_ME),
    ]);
    let seed = world
        .git_seed(&repo, Some(seed_files.path()))
        .await
        .unwrap();
    git_secret(&ns, world, "git").await;
    create_git_sync(&ns, "web", &world.git_http_url(&repo), "", "git").await;
    let synchronizer = Synchronizer::start(world, ns.name()).await;
    wait_applied(&ns, "web", &seed).await;
    assert_eq!(names(&ns).await, ["keep-me", "settings"]);

    // Both leave Git: `settings` is pruned, `keep-me` stays and leaves the inventory.
    let next = tree(&[("extra.yaml", &config_map("extra", ""))]);
    let rev = commit_dir(world, &repo, next.path(), "move settings out").await;
    let status = wait_applied(&ns, "web", &rev).await;
    assert_eq!(names(&ns).await, ["extra", "keep-me"]);
    assert_eq!(status.inventory.len(), 1, "{:?}", status.inventory);

    // An empty render is refused: nothing is pruned.
    let empty = tree(&[("README.md", "Nothing here yet.\n")]);
    let rev = commit_dir(world, &repo, empty.path(), "oops: wrong directory").await;
    let status = wait_refused(&ns, "web", "PlanRefused").await;
    assert_eq!(
        status.last_attempted_revision.as_deref(),
        Some(rev.as_str())
    );
    assert!(
        message_of(&status).contains("allowEmpty"),
        "{}",
        message_of(&status)
    );
    assert_eq!(names(&ns).await, ["extra", "keep-me"]);
    // Said explicitly, it prunes.
    patch_spec(&ns, "web", json!({"allowEmpty": true})).await;
    wait_applied(&ns, "web", &rev).await;
    assert_eq!(names(&ns).await, ["keep-me"]);
    patch_spec(&ns, "web", json!({"allowEmpty": false})).await;

    // Another namespace, and a cluster-scoped object: refused before any write.
    let outside = tree(&[
        ("settings.yaml", &config_map("settings", "")),
        (
            "elsewhere.yaml",
            &config_map("elsewhere", "  namespace: kube-public\n"),
        ),
        (
            "cluster/role.yaml",
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: shop-reader\nrules: []\n",
        ),
    ]);
    commit_dir(world, &repo, outside.path(), "reach out").await;
    let status = wait_refused(&ns, "web", "PlanRefused").await;
    let message = message_of(&status);
    assert!(
        message.contains("kube-public") && message.contains("elsewhere.yaml"),
        "{message}"
    );
    assert!(
        message.contains("cluster-scoped") && message.contains("cluster/role.yaml"),
        "{message}"
    );
    assert_eq!(names(&ns).await, ["keep-me"], "something was written");

    // A field the apiserver rejects: the dry-run refuses it, and the good ConfigMap beside it
    // is not written either.
    let bad = tree(&[
        ("settings.yaml", &config_map("settings", "")),
        ("api/deployment.yaml", BAD_FIELD),
    ]);
    commit_dir(world, &repo, bad.path(), "api: two replicas").await;
    let status = wait_refused(&ns, "web", "ValidationFailed").await;
    let message = message_of(&status);
    assert!(
        message.contains("api/deployment.yaml")
            && message.contains("Deployment")
            && message.contains("replica"),
        "{message}"
    );
    assert!(message.contains("nothing was written"), "{message}");
    assert_eq!(names(&ns).await, ["keep-me"], "something was written");

    // Another GitSync claiming `settings`, once `web` applied it, is refused.
    let fixed = tree(&[("settings.yaml", &config_map("settings", ""))]);
    let rev = commit_dir(world, &repo, fixed.path(), "api: later").await;
    wait_applied(&ns, "web", &rev).await;
    let other_repo = unique_name("sync-guards-other");
    let other_files = tree(&[("settings.yaml", &config_map("settings", ""))]);
    world
        .git_seed(&other_repo, Some(other_files.path()))
        .await
        .unwrap();
    create_git_sync(&ns, "intruder", &world.git_http_url(&other_repo), "", "git").await;
    let status = wait_refused(&ns, "intruder", "PlanRefused").await;
    let message = message_of(&status);
    assert!(
        message.contains(&format!("belongs to GitSync {}/web", ns.name())),
        "{message}"
    );
    let settings = ns.api::<ConfigMap>().get("settings").await.unwrap();
    assert_eq!(
        settings
            .annotations()
            .get("sluice.dev/owner")
            .map(String::as_str),
        Some(format!("{}/web", ns.name()).as_str())
    );

    ns.api::<deploy_synchronizer::resource::GitSync>()
        .delete("intruder", &Default::default())
        .await
        .unwrap();

    // A Kustomize overlay renders and applies (as `kubectl kustomize` would build it).
    let overlay = tree(&[
        ("kustomization.yaml", KUSTOMIZATION),
        ("settings.yaml", &config_map("settings", "")),
    ]);
    let rev = commit_dir(world, &repo, overlay.path(), "kustomize the shop").await;
    wait_applied(&ns, "web", &rev).await;
    let names = names(&ns).await;
    assert!(names.contains(&"shop-settings".to_owned()), "{names:?}");
    assert!(
        names.iter().any(|n| n.starts_with("shop-flags-")),
        "no generated ConfigMap: {names:?}"
    );
    // `settings` left the render: pruned.
    assert!(!names.contains(&"settings".to_owned()), "{names:?}");
    let generated = ns.api::<ConfigMap>().get("shop-settings").await.unwrap();
    assert_eq!(
        generated
            .labels()
            .get("app.kubernetes.io/part-of")
            .map(String::as_str),
        Some("shop")
    );

    synchronizer.stop().await;
}
