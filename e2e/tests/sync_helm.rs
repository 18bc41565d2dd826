//! User story: a team ships its app as a Helm chart in the config repository
//! (`e2e/tests/charts/shop`: helpers, a conditional worker, a CRD in `crds/`, a migration Job run
//! before each release, an announcement Job after it, a test hook) and a GitSync renders it with
//! `helm template`, as Argo CD does: the production values file is merged over the defaults, the
//! CRD goes in, the test hook stays out, the migration completes before the web is applied, the
//! announcement runs once the release is Healthy and is deleted as its policy says, and neither
//! hook is in the inventory. A values change rolls out; an edit of a rendered object is healed; a component
//! disabled by inline values is pruned; a broken template is `RenderFailed` naming the template,
//! and nothing is applied or deleted; `diff` shows what a values change would do, and only that.
//!
//! Against the real world: `helm` built from Go modules (`e2e/world/build.sh`), the git server,
//! kube-apiserver and kwok.

mod sync_support;

use std::path::Path;

use deploy_synchronizer::diff::exit_code;
use deploy_synchronizer::diffcmd::{self, Target};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use sluice_e2e::{TestNamespace, World, unique_name};
use sync_support::*;

/// The CRD the chart ships in `crds/`.
const DISCOUNTS: &str = "discounts.shop.example.com";

/// The chart, as the tests keep it.
const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/charts/shop");

/// A copy of the chart at `charts/shop` of a fresh directory, with `edit` applied to its files
/// (`(path in the chart, new content)`).
fn repository(edit: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    sluice_e2e::copy_dir(Path::new(CHART), &dir.path().join("charts/shop"));
    for (path, content) in edit {
        std::fs::write(dir.path().join("charts/shop").join(path), content).unwrap();
    }
    dir
}

async fn replicas(ns: &TestNamespace, name: &str) -> Option<i32> {
    let live = ns.api::<Deployment>().get_opt(name).await.unwrap()?;
    live.spec.replicas
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chart_in_the_repository_is_rendered_applied_and_kept_in_step() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-helm").await;
    world.push_image(&["demo/web:1.4.2"]).await;
    // The chart's CRD is cluster-scoped and outlives the test's namespace: one left by an
    // earlier run (owned by its GitSync) would be refused, rightly, as another source's.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let _ = crds.delete(DISCOUNTS, &Default::default()).await;
    sluice_e2e::wait_until("an earlier run's CRD gone", DEADLINE, || async {
        match crds.get_opt(DISCOUNTS).await {
            Ok(None) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    let repo = unique_name("sync-helm");
    let seed_tree = repository(&[]);
    let seed = world.git_seed(&repo, Some(seed_tree.path())).await.unwrap();
    git_secret(&ns, world, "git").await;
    create_git_sync(
        &ns,
        "shop",
        &world.git_http_url(&repo),
        "charts/shop",
        "git",
    )
    .await;
    patch_spec(
        &ns,
        "shop",
        json!({"allowClusterScoped": true, "helm": {"valuesFiles": ["values-prod.yaml"]}}),
    )
    .await;
    let synchronizer = Synchronizer::start(world, ns.name()).await;

    // Rendered as release `shop`: the production values over the defaults, the CRD of crds/,
    // no test hook.
    let applied = wait_applied(&ns, "shop", &seed).await;
    assert_eq!(replicas(&ns, "shop-shop-web").await, Some(2));
    assert_eq!(replicas(&ns, "shop-shop-worker").await, Some(1));
    let settings = ns
        .api::<ConfigMap>()
        .get("shop-shop-settings")
        .await
        .unwrap();
    assert_eq!(settings.data.unwrap()["SHOP_CURRENCY"], "EUR");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    assert!(
        crds.get_opt("discounts.shop.example.com")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        ns.api::<Pod>()
            .get_opt("shop-shop-smoke")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        applied
            .inventory
            .iter()
            .any(|e| e.kind == "CustomResourceDefinition"),
        "{applied:?}"
    );
    wait_status(&ns, "shop", "Healthy", |s| s.is("Healthy=True")).await;

    // The hooks: the migration completed before the web existed and is kept (Helm's default
    // policy re-creates it at the next release); the announcement ran and was deleted.
    let migrate = ns.api::<Job>().get("shop-shop-migrate").await.unwrap();
    let done = migrate
        .status
        .as_ref()
        .and_then(|s| s.completion_time.clone())
        .expect("the migration Job completed");
    let web = ns.api::<Deployment>().get("shop-shop-web").await.unwrap();
    let web_created = web.metadata.creation_timestamp.clone().unwrap();
    assert!(
        done.0 <= web_created.0,
        "migrated at {done:?}, web created at {web_created:?}"
    );
    assert!(
        ns.api::<Job>()
            .get_opt("shop-shop-announce")
            .await
            .unwrap()
            .is_none(),
        "the announcement is deleted once it succeeded"
    );
    assert!(
        !applied.inventory.iter().any(|e| e.kind == "Job"),
        "hooks are not in the inventory: {applied:?}"
    );
    let first_run = migrate.metadata.uid.clone();

    // A values change rolls out.
    let three = repository(&[(
        "values-prod.yaml",
        "# Production: three web replicas.\nweb:\n  replicas: 3\n",
    )]);
    let scaled = commit_dir(world, &repo, three.path(), "shop: three web replicas").await;
    wait_applied(&ns, "shop", &scaled).await;
    assert_eq!(replicas(&ns, "shop-shop-web").await, Some(3));
    let migrate = ns.api::<Job>().get("shop-shop-migrate").await.unwrap();
    assert_ne!(
        migrate.metadata.uid, first_run,
        "an upgrade runs the migration again"
    );

    // Someone edits a rendered object by hand: healed back to what the chart renders.
    ns.api::<ConfigMap>()
        .patch(
            "shop-shop-settings",
            &PatchParams {
                field_manager: Some("kubectl-edit".into()),
                ..PatchParams::default()
            },
            &Patch::Merge(json!({"data": {"SHOP_CURRENCY": "USD"}})),
        )
        .await
        .unwrap();
    sluice_e2e::wait_until("the edit healed", DEADLINE, || async {
        let live = ns.api::<ConfigMap>().get("shop-shop-settings").await;
        match live.map(|m| m.data.unwrap_or_default()["SHOP_CURRENCY"].clone()) {
            Ok(currency) if currency == "EUR" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // The worker disabled by inline values: pruned.
    patch_spec(
        &ns,
        "shop",
        json!({"helm": {"values": {"worker": {"enabled": false}}}}),
    )
    .await;
    sluice_e2e::wait_until("the worker pruned", DEADLINE, || async {
        match replicas(&ns, "shop-shop-worker").await {
            None => Ok(()),
            Some(n) => Err(format!("still there with {n} replicas")),
        }
    })
    .await;

    // A broken template: RenderFailed naming the template; nothing applied, nothing deleted.
    let broken = std::fs::read_to_string(Path::new(CHART).join("templates/web.yaml"))
        .unwrap()
        .replace(
            "{{ .Values.web.replicas }}",
            "{{ .Values.web.replicas | nosuchfunction }}",
        );
    let bad_tree = repository(&[
        (
            "values-prod.yaml",
            "# Production: four web replicas.\nweb:\n  replicas: 4\n",
        ),
        ("templates/web.yaml", &broken),
    ]);
    let bad = commit_dir(world, &repo, bad_tree.path(), "shop: a typo").await;
    let refused = wait_refused(&ns, "shop", "RenderFailed").await;
    let (_, _, message) = condition(&refused, "Ready").unwrap();
    assert!(message.contains("templates/web.yaml"), "{message}");
    assert!(message.contains("nosuchfunction"), "{message}");
    assert_eq!(
        refused.last_attempted_revision.as_deref(),
        Some(bad.as_str())
    );
    assert_eq!(
        refused.last_applied_revision.as_deref(),
        Some(scaled.as_str())
    );
    assert_eq!(replicas(&ns, "shop-shop-web").await, Some(3));

    // With the synchronizer stopped, the fixed commit is only a diff: the web's replicas, and
    // nothing else of the chart.
    synchronizer.stop().await;
    let fixed = repository(&[(
        "values-prod.yaml",
        "# Production: four web replicas.\nweb:\n  replicas: 4\n",
    )]);
    commit_dir(world, &repo, fixed.path(), "shop: four web replicas").await;
    let config = kube_config(world).await;
    let cache = tempfile::tempdir().unwrap();
    let target = Target::GitSync {
        namespace: ns.name().to_owned(),
        name: "shop".to_owned(),
        cache_dir: cache.path().to_owned(),
    };
    let outcome = diffcmd::run(&client, &config, &target).await;
    assert_eq!(exit_code(&outcome), 1, "{outcome:?}");
    let report = outcome.unwrap();
    let text = report.render();
    let changed: Vec<&str> = text
        .lines()
        .filter(|l| {
            (l.starts_with('-') || l.starts_with('+'))
                && !l.starts_with("---")
                && !l.starts_with("+++")
        })
        .collect();
    assert_eq!(report.changed().count(), 1, "{}", report.summary());
    assert_eq!(changed.len(), 2, "{text}");
    assert!(
        changed[0].contains("replicas: 3") && changed[1].contains("replicas: 4"),
        "{text}"
    );
    assert_eq!(
        replicas(&ns, "shop-shop-web").await,
        Some(3),
        "a diff writes nothing"
    );
    let _ = crds.delete(DISCOUNTS, &Default::default()).await;
}
