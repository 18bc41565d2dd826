//! The Config Updater installed for one namespace: the chart with
//! `configUpdater.watchNamespace` grants it Roles in that namespace instead of its ClusterRole,
//! so it reads no Secret elsewhere (asked of the API server: `kubectl auth can-i --as`). Run
//! with exactly that account's token, it scans, chooses and bumps in its namespace as usual.

mod update_support;

use serde_json::Value;
use sluice_e2e::installed::{kubectl, manifests_dir};
use sluice_e2e::{TestNamespace, World};
use update_support::*;

/// Whether `user` may `verb` `resource` in `namespace` (`None`: in every namespace).
fn can(world: &World, user: &str, verb: &str, resource: &str, namespace: Option<&str>) -> bool {
    let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
    let mut args = vec!["auth", "can-i", verb, resource, "--as", user];
    match namespace {
        Some(ns) => args.extend(["-n", ns]),
        None => args.push("--all-namespaces"),
    }
    let flag = format!("--subresource={subresource}");
    if !subresource.is_empty() {
        args.push(&flag);
    }
    let out = kubectl(world, &args);
    String::from_utf8_lossy(&out.stdout).trim() == "yes"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespaced_updater_bumps_in_its_namespace_and_reads_no_secret_elsewhere() {
    let mut u = Updater::idle("ns-updater").await;
    let world = u.world;
    let home = TestNamespace::create(&u.client, "updater-home").await;
    let elsewhere = TestNamespace::create(&u.client, "updater-elsewhere").await;

    // The chart's updater objects for a namespaced install: its account in `home`, its Roles.
    let chart = manifests_dir().join("chart");
    let watch = format!("configUpdater.watchNamespace={}", u.ns());
    let out = std::process::Command::new("helm")
        .args([
            "template",
            "sluice",
            chart.to_str().unwrap(),
            "--namespace",
            home.name(),
        ])
        .args(["--set", &watch])
        .env("PATH", world.var("PATH").unwrap_or("/usr/bin:/bin"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rendered: Vec<Value> =
        serde_saphyr::from_multiple(&String::from_utf8(out.stdout).unwrap()).unwrap();
    let updater: Vec<&Value> = rendered
        .iter()
        .filter(|o| o["metadata"]["labels"]["app.kubernetes.io/name"] == "config-updater")
        .filter(|o| {
            let kind = o["kind"].as_str().unwrap_or("");
            assert!(
                !kind.starts_with("Cluster"),
                "no cluster-wide grant in a namespaced install: {o}"
            );
            ["ServiceAccount", "Role", "RoleBinding"].contains(&kind)
        })
        .collect();
    assert_eq!(
        updater.len(),
        5,
        "account, its Roles and bindings: {updater:?}"
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    let stream: Vec<String> = updater.iter().map(|o| o.to_string()).collect();
    std::fs::write(file.path(), stream.join("\n")).unwrap();
    let out = kubectl(world, &["apply", "-f", file.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let me = format!("system:serviceaccount:{}:config-updater", home.name());
    let watched = Some(u.ns());
    assert!(can(world, &me, "get", "secrets", watched));
    assert!(can(world, &me, "watch", "imageupdates.sluice.dev", watched));
    assert!(can(
        world,
        &me,
        "patch",
        "imagepolicies.sluice.dev/status",
        watched
    ));
    assert!(can(
        world,
        &me,
        "update",
        "leases.coordination.k8s.io",
        Some(home.name())
    ));
    assert!(!can(world, &me, "get", "secrets", Some(elsewhere.name())));
    assert!(!can(world, &me, "list", "secrets", None));
    assert!(!can(world, &me, "watch", "imageupdates.sluice.dev", None));
    assert!(!can(world, &me, "create", "deployments.apps", watched));

    // Run on exactly that account: a newer tag is bumped.
    let (_, image) = push_web(world, "ns-updater", &["1.0.0", "1.0.1"]).await;
    let (repo, seed) = u.seed_web("ns-updater", &image, "1.0.0").await;
    u.world_git_secret("git").await;
    u.create_web(&image, &repo, Some("1h")).await;
    let config = world
        .service_account_config_in(home.name(), "config-updater")
        .await;
    u.run_as(kube::Client::try_from(config).unwrap(), None);
    assert_eq!(u.wait_policy_tag("web").await, "1.0.1");
    let pushed = u.wait_last_push("config").await;
    assert_ne!(pushed, seed.to_string());
    u.stop().await;
}
