//! `config-updater scan --once --dry-run` against the real world: the report shows the bump the
//! next write-back would make, as a unified diff, and nothing reaches the git server.

use std::time::Duration;

use config_updater::dryrun;
use config_updater::resource::{ImagePolicy, ImageRepository, ImageUpdate};
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::json;
use sluice_e2e::{
    TestNamespace, World, apply_yaml, install_crypto_provider, unique_name, wait_until,
};

const CRDS: &[(&str, &str)] = &[
    (
        "imagerepositories.sluice.dev",
        include_str!("../../manifests/crds/imagerepositories.sluice.dev.yaml"),
    ),
    (
        "imagepolicies.sluice.dev",
        include_str!("../../manifests/crds/imagepolicies.sluice.dev.yaml"),
    ),
    (
        "imageupdates.sluice.dev",
        include_str!("../../manifests/crds/imageupdates.sluice.dev.yaml"),
    ),
];

async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (name, yaml) in CRDS {
        apply_yaml(&api, yaml).await;
        wait_until(
            &format!("the CRD {name} to be Established"),
            Duration::from_secs(60),
            || async {
                let crd = api.get(name).await.map_err(|e| e.to_string())?;
                let established = crd
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                if established {
                    Ok(())
                } else {
                    Err("not Established yet".to_owned())
                }
            },
        )
        .await;
    }
}

fn marked_line(image: &str, tag: &str, ns: &str) -> String {
    format!("          image: {image}:{tag} # {{\"$imagepolicy\": \"{ns}:web\"}}")
}

fn deployment(image: &str, tag: &str, ns: &str) -> String {
    format!(
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n{}\n",
        marked_line(image, tag, ns)
    )
}

/// A namespace with the three resources over a config repository seeded at `seeded_tag`.
async fn setup(
    world: &World,
    client: &Client,
    label: &str,
    seeded_tag: &str,
) -> (TestNamespace, String, String) {
    let ns = TestNamespace::create(client, label).await;
    let path = format!("{}/web", unique_name("dry"));
    let image = format!("{}/{path}", world.registry());
    world
        .push_image(&[&format!("{path}:1.4.2"), &format!("{path}:1.4.3")])
        .await;
    let repo_name = unique_name("dry-config");
    let seed_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(seed_dir.path().join("apps/web")).unwrap();
    std::fs::write(
        seed_dir.path().join("apps/web/deployment.yaml"),
        deployment(&image, seeded_tag, ns.name()),
    )
    .unwrap();
    world
        .git_seed(&repo_name, Some(seed_dir.path()))
        .await
        .expect("the seed commit");

    let (user, password) = world.git_credentials();
    let secret: KubeSecret = serde_json::from_value(json!({
        "metadata": {"name": "git"},
        "type": "kubernetes.io/basic-auth",
        "stringData": {"username": user, "password": password}
    }))
    .unwrap();
    let pp = PostParams::default();
    ns.api::<KubeSecret>().create(&pp, &secret).await.unwrap();
    let repository: ImageRepository = serde_json::from_value(json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "ImageRepository",
        "metadata": {"name": "web"},
        "spec": {"image": image, "insecure": true, "interval": "1h"}
    }))
    .unwrap();
    ns.api::<ImageRepository>()
        .create(&pp, &repository)
        .await
        .unwrap();
    let policy: ImagePolicy = serde_json::from_value(json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "ImagePolicy",
        "metadata": {"name": "web"},
        "spec": {"imageRepositoryRef": {"name": "web"}, "policy": {"semver": {"range": ">=1.0.0 <2.0.0"}}}
    }))
    .unwrap();
    ns.api::<ImagePolicy>().create(&pp, &policy).await.unwrap();
    let update: ImageUpdate = serde_json::from_value(json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "ImageUpdate",
        "metadata": {"name": "config"},
        "spec": {
            "git": {"url": world.git_http_url(&repo_name), "branch": "main", "secretRef": {"name": "git"}},
            "paths": ["apps"]
        }
    }))
    .unwrap();
    ns.api::<ImageUpdate>().create(&pp, &update).await.unwrap();
    (ns, repo_name, image)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_shows_the_bump_as_a_diff_and_commits_nothing() {
    install_crypto_provider();
    let world = World::get();
    let client = world.kube_client().await;
    install_crds(&client).await;
    let (ns, repo_name, image) = setup(world, &client, "update-dry-run", "1.4.2").await;
    let (before, content_before) = world.git_file_on_server(&repo_name, "apps/web/deployment.yaml");

    let report = dryrun::run(client.clone(), Some(ns.name())).await.unwrap();
    let text = report.render();
    assert_eq!(report.updates.len(), 1, "{text}");
    let u = &report.updates[0];
    assert!(u.errors.is_empty(), "{text}");
    assert!(u.problems.is_empty(), "{text}");
    assert_eq!(u.changes.len(), 1, "{text}");
    let change = &u.changes[0];
    assert_eq!(
        (
            change.file.as_str(),
            change.old.as_str(),
            change.new.as_str()
        ),
        ("apps/web/deployment.yaml", "1.4.2", "1.4.3"),
        "{text}"
    );
    assert_eq!(u.diffs.len(), 1, "{text}");
    let diff = &u.diffs[0].diff;
    assert!(
        diff.starts_with("--- a/apps/web/deployment.yaml\n+++ b/apps/web/deployment.yaml\n"),
        "{diff}"
    );
    let removed: Vec<&str> = diff
        .lines()
        .filter(|l| l.starts_with('-') && !l.starts_with("---"))
        .collect();
    let added: Vec<&str> = diff
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .collect();
    assert_eq!(
        removed,
        [format!("-{}", marked_line(&image, "1.4.2", ns.name()))],
        "{diff}"
    );
    assert_eq!(
        added,
        [format!("+{}", marked_line(&image, "1.4.3", ns.name()))],
        "{diff}"
    );
    assert!(
        text.contains(&format!("apps/web/deployment.yaml: {image} 1.4.2 → 1.4.3")),
        "{text}"
    );
    assert_eq!(report.exit_code(), 1, "{text}");
    let (_, password) = world.git_credentials();
    assert!(!text.contains(password), "no credential in the report");

    let (after, content_after) = world.git_file_on_server(&repo_name, "apps/web/deployment.yaml");
    assert_eq!(
        after, before,
        "main is unchanged: nothing committed or pushed"
    );
    assert_eq!(content_after, content_before);
    let update = ns.api::<ImageUpdate>().get("config").await.unwrap();
    assert!(
        update.status.is_none(),
        "no status written: {:?}",
        update.status
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_on_the_newest_tag_changes_nothing() {
    install_crypto_provider();
    let world = World::get();
    let client = world.kube_client().await;
    install_crds(&client).await;
    let (ns, _repo_name, _image) = setup(world, &client, "update-dry-run-none", "1.4.3").await;

    let report = dryrun::run(client.clone(), Some(ns.name())).await.unwrap();
    let text = report.render();
    assert_eq!(report.updates.len(), 1, "{text}");
    assert!(report.updates[0].changes.is_empty(), "{text}");
    assert!(report.updates[0].diffs.is_empty(), "{text}");
    assert_eq!(report.exit_code(), 0, "{text}");
}
