//! Bad input applies nothing and deletes nothing: a commit with invalid YAML leaves the previous
//! revision's objects exactly as they were and says which file and line to fix; the fixing commit
//! is applied.

mod sync_support;

use k8s_openapi::api::core::v1::{ConfigMap, Service};
use sluice_e2e::{TestNamespace, World, unique_name};
use sync_support::*;

fn config_map(level: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: api-config
data:
  log-level: {level}
  # Plain strings; quoted where YAML would read a number.
  port: "8080"
"#
    )
}

const SERVICE: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: api
spec:
  selector: {app: api}
  ports: [{name: http, port: 80, targetPort: 8080}]
"#;

/// A Service whose `ports` list lost its indentation halfway: invalid YAML on line 8.
const BROKEN_SERVICE: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: api
spec:
  selector: {app: api}
  ports:
  - name: http
   port: 80
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_yaml_applies_nothing_and_a_fix_recovers() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-bad").await;

    let repo = unique_name("sync-bad");
    let good = tree(&[
        ("deploy/configmap.yaml", &config_map("info")),
        ("deploy/service.yaml", SERVICE),
    ]);
    let seed = world
        .git_seed(&repo, Some(good.path()))
        .await
        .expect("the seed commit");
    git_secret(&ns, world, "git").await;
    create_git_sync(&ns, "api", &world.git_http_url(&repo), "deploy", "git").await;
    let synchronizer = Synchronizer::start(world, ns.name()).await;
    wait_status(&ns, "api", "the seed commit to be applied", |s| {
        s.applied(&seed)
    })
    .await;
    let service_uid = ns.api::<Service>().get("api").await.unwrap().metadata.uid;

    // A commit that changes the ConfigMap and breaks the Service's YAML: nothing of it applies.
    let broken = tree(&[
        ("deploy/configmap.yaml", &config_map("debug")),
        ("deploy/service.yaml", BROKEN_SERVICE),
    ]);
    let bad = commit_dir(world, &repo, broken.path(), "api: debug logging").await;
    let failed = wait_status(&ns, "api", "the broken commit to be refused", |s| {
        s.attempted(&bad) && s.is("Ready=False")
    })
    .await;
    let (_, reason, message) = condition(&failed, "Ready").unwrap();
    assert_eq!(reason, "RenderFailed", "{message}");
    assert!(
        message.contains("deploy/service.yaml:"),
        "names the file: {message}"
    );
    assert!(message.contains("invalid YAML"), "{message}");
    let line = message
        .split("deploy/service.yaml:")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("a line number after the file: {message}"));
    assert!(
        (7..=9).contains(&line),
        "the line of the bad indentation: {message}"
    );
    assert_eq!(condition(&failed, "Stalled").unwrap().0, "True");
    assert_eq!(failed.last_applied_revision.as_deref(), Some(seed.as_str()));
    assert_eq!(failed.inventory.len(), 2);
    // Nothing applied, nothing deleted.
    let cm = ns.api::<ConfigMap>().get("api-config").await.unwrap();
    assert_eq!(cm.data.as_ref().unwrap()["log-level"], "info");
    let service = ns
        .api::<Service>()
        .get("api")
        .await
        .expect("the Service stays");
    assert_eq!(service.metadata.uid, service_uid);

    // The fixing commit recovers.
    let fixed = tree(&[
        ("deploy/configmap.yaml", &config_map("debug")),
        ("deploy/service.yaml", SERVICE),
    ]);
    let fix = commit_dir(
        world,
        &repo,
        fixed.path(),
        "api: fix the Service's indentation",
    )
    .await;
    let recovered = wait_applied(&ns, "api", &fix).await;
    assert_eq!(condition(&recovered, "Stalled").unwrap().0, "False");
    let cm = ns.api::<ConfigMap>().get("api-config").await.unwrap();
    assert_eq!(cm.data.as_ref().unwrap()["log-level"], "debug");
    let revisions: Vec<_> = recovered
        .history
        .iter()
        .map(|h| h.revision.as_str())
        .collect();
    assert_eq!(revisions, [fix.as_str(), bad.as_str(), seed.as_str()]);
    assert_eq!(recovered.history[1].reason.as_deref(), Some("RenderFailed"));

    synchronizer.stop().await;
}
