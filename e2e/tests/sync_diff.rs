//! `deploy-synchronizer diff --path DIR` against the real world: objects applied with server-side
//! apply as `sluice` and the same objects on disk diff empty (server defaults do not show up); a
//! changed image shows as that one line; a changed Secret value is masked; an invalid YAML file
//! is an error (exit 2) naming the file.

use std::path::Path;

use base64::Engine as _;
use deploy_synchronizer::diff::{DiffReport, exit_code};
use deploy_synchronizer::diffcmd::{self, Error, Target};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;
use sluice_e2e::{FIELD_MANAGER, TestNamespace, World};

const CONFIG_MAP: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  greeting: hello
"#;

fn deployment(image: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
        - name: web
          image: "{image}"
"#
    )
}

fn secret(value: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(value);
    format!(
        r#"apiVersion: v1
kind: Secret
metadata:
  name: credentials
type: Opaque
data:
  password: {encoded}
"#
    )
}

fn parse(yaml: &str) -> Value {
    serde_saphyr::from_str(yaml).expect("test YAML parses")
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("writing a manifest");
    }
}

async fn config(world: &World) -> kube::Config {
    let kubeconfig = Kubeconfig::read_from(world.kubeconfig()).expect("the world's kubeconfig");
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("the world's kube config")
}

async fn diff(
    client: &kube::Client,
    config: &kube::Config,
    dir: &Path,
    ns: &TestNamespace,
) -> Result<DiffReport, Error> {
    let target = Target::Path {
        dir: dir.to_owned(),
        target_namespace: Some(ns.name().to_owned()),
    };
    diffcmd::run(client, config, &target).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_of_a_local_directory_shows_only_what_an_apply_would_change() {
    let world = World::get();
    let client = world.kube_client().await;
    let config = config(world).await;
    let ns = TestNamespace::create(&client, "sync-diff").await;
    let apply = PatchParams::apply(FIELD_MANAGER).force();
    let old_image = "registry.example/demo/web:1.0.0";
    let new_image = "registry.example/demo/web:1.1.0";

    // Live: applied server-side as `sluice`, as a sync would.
    let config_maps = kube::Api::<ConfigMap>::namespaced(client.clone(), ns.name());
    config_maps
        .patch("settings", &apply, &Patch::Apply(parse(CONFIG_MAP)))
        .await
        .expect("applying the ConfigMap");
    let deployments = kube::Api::<Deployment>::namespaced(client.clone(), ns.name());
    deployments
        .patch("web", &apply, &Patch::Apply(parse(&deployment(old_image))))
        .await
        .expect("applying the Deployment");

    // The same objects on disk: nothing to change, server defaults included.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("config.yaml", CONFIG_MAP),
            ("web.yaml", &deployment(old_image)),
        ],
    );
    let outcome = diff(&client, &config, dir.path(), &ns).await;
    let report = outcome.as_ref().expect("the diff of unchanged objects");
    assert_eq!(
        exit_code(&outcome),
        0,
        "unchanged objects must not diff:\n{}",
        report.render()
    );
    assert_eq!(report.render(), "");
    assert_eq!(report.objects.len(), 2, "{}", report.summary());

    // A new image: exit 1, and the only changed lines are the image.
    write(dir.path(), &[("web.yaml", &deployment(new_image))]);
    let outcome = diff(&client, &config, dir.path(), &ns).await;
    assert_eq!(exit_code(&outcome), 1);
    let text = outcome.unwrap().render();
    let changed: Vec<&str> = text
        .lines()
        .filter(|line| {
            (line.starts_with('-') || line.starts_with('+'))
                && !line.starts_with("---")
                && !line.starts_with("+++")
        })
        .collect();
    assert_eq!(changed.len(), 2, "only the image line changes:\n{text}");
    assert!(
        changed[0].starts_with('-') && changed[0].contains(old_image),
        "{text}"
    );
    assert!(
        changed[1].starts_with('+') && changed[1].contains(new_image),
        "{text}"
    );
    assert!(text.contains("Deployment"), "{text}");

    // A Secret whose value differs: a diff, with neither value shown in any form.
    let secrets = kube::Api::<Secret>::namespaced(client.clone(), ns.name());
    secrets
        .patch(
            "credentials",
            &apply,
            &Patch::Apply(parse(&secret("old-plaintext-s3cret"))),
        )
        .await
        .expect("applying the Secret");
    let secret_dir = tempfile::tempdir().unwrap();
    write(
        secret_dir.path(),
        &[("secret.yaml", &secret("new-plaintext-s3cret"))],
    );
    let outcome = diff(&client, &config, secret_dir.path(), &ns).await;
    assert_eq!(exit_code(&outcome), 1);
    let text = outcome.unwrap().render();
    assert!(text.contains("Secret"), "{text}");
    for value in ["old-plaintext-s3cret", "new-plaintext-s3cret"] {
        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        assert!(!text.contains(value), "{value} leaked:\n{text}");
        assert!(
            !text.contains(&encoded),
            "{value} leaked as base64:\n{text}"
        );
    }

    // An invalid YAML file: an error (exit 2) that names the file.
    let broken_dir = tempfile::tempdir().unwrap();
    write(
        broken_dir.path(),
        &[
            ("config.yaml", CONFIG_MAP),
            (
                "broken.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [unclosed\n",
            ),
        ],
    );
    let outcome = diff(&client, &config, broken_dir.path(), &ns).await;
    assert_eq!(exit_code(&outcome), 2);
    let message = sluice_shared::exit::describe(&outcome.unwrap_err());
    assert!(message.contains("broken.yaml"), "{message}");
}
