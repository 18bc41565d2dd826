//! The monitoring shipped in `manifests/monitoring/` (alert rules, the Grafana dashboard) names
//! only metrics the daemons export: both daemons' controllers run on the world with their
//! registries built as the daemons build them, do their work once (a GitSync applied, Healthy and
//! healed; an ImageRepository scanned), and every `sluice_…` series the rules and the dashboard
//! query is then in what they expose.

mod update_support;

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use regex::Regex;
use serde_json::json;
use sluice_e2e::sync::{self, Synchronizer};
use sluice_e2e::{unique_name, wait_until};
use update_support::*;

const MONITORING: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../manifests/monitoring");

const APP: &str = "# The storefront's settings and workload.\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {currency: EUR}\n";

/// Every series name `registry` exposes, with the suffixes Prometheus sees (`_total` of a
/// counter, `_bucket`/`_sum`/`_count` of a histogram, `_info` of an info).
fn series(registry: &Registry) -> BTreeSet<String> {
    let mut text = String::new();
    encode(&mut text, registry).unwrap();
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (name, kind) = rest.split_once(' ').unwrap();
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            "info" => &["_info"],
            _ => &[""],
        };
        for suffix in suffixes {
            names.insert(format!("{name}{suffix}"));
        }
    }
    names
}

/// Both daemons, each once through its work; what they expose.
async fn exported() -> BTreeSet<String> {
    let mut u = Updater::idle("monitoring").await;
    let world = u.world;
    sync::install_crd(&u.client).await;

    // The synchronizer: a GitSync applied, Healthy, and an edit healed.
    let mut synchronizer_registry = sluice_shared::serve::registry("deploy-synchronizer", "test");
    let metrics = deploy_synchronizer::controller::Metrics::register(&mut synchronizer_registry);
    let repo = unique_name("monitoring");
    let tree = sluice_e2e::files_dir(&[("app/settings.yaml", APP)]);
    let seed = world.git_seed(&repo, Some(tree.path())).await.unwrap();
    sync::git_secret(&u.ns, world, "git").await;
    sync::create_git_sync(
        &u.ns,
        "storefront",
        &world.git_http_url(&repo),
        "app",
        "git",
    )
    .await;
    let synchronizer =
        Synchronizer::start_with(sync::kube_config(world).await, u.ns(), metrics, None);
    sync::wait_applied(&u.ns, "storefront", &seed).await;
    sync::wait_status(&u.ns, "storefront", "Healthy", |s| s.is("Healthy=True")).await;
    u.api::<ConfigMap>()
        .patch(
            "settings",
            &PatchParams {
                field_manager: Some("kubectl-edit".into()),
                ..PatchParams::default()
            },
            &Patch::Merge(json!({"data": {"currency": "USD"}})),
        )
        .await
        .unwrap();
    wait_until("the edit healed", Duration::from_secs(30), || async {
        let map = u
            .api::<ConfigMap>()
            .get("settings")
            .await
            .map_err(|e| e.to_string())?;
        match map.data.unwrap_or_default()["currency"].as_str() {
            "EUR" => Ok(()),
            other => Err(other.to_owned()),
        }
    })
    .await;

    // The updater: an ImageRepository scanned.
    let mut updater_registry = sluice_shared::serve::registry("config-updater", "test");
    u.metrics = config_updater::controller::Metrics::register(&mut updater_registry);
    let (_, image) = push_web(world, "monitoring", &["1.0.0"]).await;
    u.create::<config_updater::resource::ImageRepository>(repository("web", &image, "1h"))
        .await;
    u.run(None).await;
    u.wait_ready::<config_updater::resource::ImageRepository>("web", "True", "Scanned")
        .await;

    let mut names = series(&synchronizer_registry);
    names.extend(series(&updater_registry));
    synchronizer.stop().await;
    u.stop().await;
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_alerts_and_the_dashboard_query_is_exported() {
    let exported = exported().await;
    assert!(exported.contains("sluice_reconcile_total"), "{exported:?}");
    let series = Regex::new(r"\bsluice_[a-z_]+\b").unwrap();
    for file in ["rules.yaml", "grafana-dashboard.json"] {
        let text = std::fs::read_to_string(format!("{MONITORING}/{file}")).unwrap();
        let named: BTreeSet<&str> = series.find_iter(&text).map(|m| m.as_str()).collect();
        assert!(!named.is_empty(), "{file} names no metric");
        let missing: Vec<&&str> = named
            .iter()
            .filter(|name| !exported.contains(**name))
            .collect();
        assert!(
            missing.is_empty(),
            "{file} queries metrics no daemon exports: {missing:?}; exported: {exported:?}"
        );
    }
}

#[test]
fn the_dashboard_is_grafana_json_and_the_rules_are_a_prometheus_rule() {
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{MONITORING}/grafana-dashboard.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(dashboard["uid"], "sluice");
    assert!(dashboard["panels"].as_array().unwrap().len() >= 8);
    let rules: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(format!("{MONITORING}/rules.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(rules["kind"], "PrometheusRule");
    let alerts: Vec<&str> = rules["spec"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["alert"].as_str())
        .collect();
    for wanted in [
        "SluiceDaemonDown",
        "SluiceSyncFailing",
        "SluiceGitSyncDegraded",
        "SluiceDriftFought",
        "SluiceRegistryRateLimited",
    ] {
        assert!(alerts.contains(&wanted), "{alerts:?}");
    }
}
