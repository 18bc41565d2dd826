//! Secrets never reach logs, events or status — checked on the daemons as an operator runs them,
//! at debug level, through a story that handles every kind of secret they touch:
//! - the synchronizer applies a Secret from Git, heals an edit of it, refuses two Kustomizations
//!   whose kustomize errors quote secret values, and fails on a wrong git password;
//! - the updater scans a registry with basic auth from a dockerconfigjson Secret, pushes a bump
//!   with git credentials, and fails on a wrong registry password.
//!
//! Each secret value (and its base64 form) must appear nowhere in the logs, in the namespace's
//! events or in the resources' status.

mod sync_support;

use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use sluice_e2e::daemon::Daemon;
use sluice_e2e::{TestNamespace, World, edit_by_hand, unique_name, wait_until};
use sync_support::*;

const API_KEY: &str = "sk-live-4f9a8b7c6d5e";
const EDITED_KEY: &str = "sk-edited-0a1b2c3d";
const GENERATOR_KEY: &str = "whsec-9c8d7e6f5a4b";
const TYPO_KEY: &str = "whsec-typo-1a2b3c4d";
const WRONG_GIT_PASSWORD: &str = "wrong-Pa55-9z8y7x";
const WRONG_REGISTRY_PASSWORD: &str = "bad-Registry-Pa55-6w5v";

const SECRET_MANIFEST: &str = r#"# The payment provider's key. (In real life: sealed or external; here it shows what leaks.)
apiVersion: v1
kind: Secret
metadata:
  name: payments
type: Opaque
stringData:
  api-key: "{key}"
"#;

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Every form of `secrets` that must not appear.
fn forms(secrets: &[&str]) -> Vec<String> {
    secrets
        .iter()
        .flat_map(|s| [s.to_string(), b64(s)])
        .collect()
}

fn assert_clean(what: &str, text: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "{what} contains a secret ({} characters, starting {:?})",
            secret.len(),
            &secret[..4]
        );
    }
}

/// The namespace's events and the status of every resource of `kinds`, as one text.
async fn events_and_status(ns: &TestNamespace, kinds: &[&str]) -> String {
    let mut text = String::new();
    let events = ns.api::<Event>().list(&Default::default()).await.unwrap();
    for event in events.items {
        text.push_str(&format!("{:?} {:?}\n", event.reason, event.note));
    }
    for kind in kinds {
        let output = tokio::process::Command::new("kubectl")
            .args(["get", kind, "-n", ns.name(), "-o", "json"])
            .env("KUBECONFIG", World::get().kubeconfig())
            .env("PATH", World::get().var("PATH").unwrap_or("/usr/bin:/bin"))
            .output()
            .await
            .expect("kubectl");
        let list: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        for item in list["items"].as_array().into_iter().flatten() {
            text.push_str(&item["status"].to_string());
        }
    }
    text
}

/// Waits until GitSync `name` has attempted `commit` and refused it as RenderFailed; returns
/// the Ready condition's message.
async fn wait_render_failed(ns: &TestNamespace, name: &str, commit: &str) -> String {
    let what = format!("{name} to refuse {commit} as RenderFailed");
    let refused = wait_status(ns, name, &what, |s| {
        s.is("Ready=False RenderFailed") && s.attempted(commit)
    })
    .await;
    refused.message("Ready").to_owned()
}

async fn set_git_password(ns: &TestNamespace, name: &str, password: &str) {
    ns.api::<Secret>()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"password": password}})),
        )
        .await
        .expect("patching the git Secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_synchronizer_logs_no_secret() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "leak-sync").await;
    let repo = unique_name("leak-sync");
    let files = tree(&[(
        "payments/secret.yaml",
        &SECRET_MANIFEST.replace("{key}", API_KEY),
    )]);
    let seed = world.git_seed(&repo, Some(files.path())).await.unwrap();
    git_secret(&ns, world, "git").await;
    create_git_sync(
        &ns,
        "payments",
        &world.git_http_url(&repo),
        "payments",
        "git",
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let port = sluice_e2e::git_support::closed_port().to_string();
    let daemon = Daemon::start(
        world,
        "deploy-synchronizer",
        &[
            "--log-format",
            "json",
            "--log-level",
            "debug",
            "run",
            "--watch-namespace",
            ns.name(),
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
        &dir.path().join("synchronizer.log"),
    );
    wait_applied(&ns, "payments", &seed).await;

    // Someone edits the Secret: healed back from Git.
    edit_by_hand(
        &ns.api::<Secret>(),
        "payments",
        json!({"stringData": {"api-key": EDITED_KEY}}),
    )
    .await;
    wait_until("the Secret healed", Duration::from_secs(20), || async {
        let secret = ns
            .api::<Secret>()
            .get("payments")
            .await
            .map_err(|e| e.to_string())?;
        let key = secret
            .data
            .unwrap_or_default()
            .get("api-key")
            .map(|v| v.0.clone());
        if key.as_deref() == Some(API_KEY.as_bytes()) {
            Ok(())
        } else {
            Err("not healed yet".to_owned())
        }
    })
    .await;

    // kustomize fails on a value and quotes it: a generator literal without `=` (kustomize
    // prints every literal beside it, values and all), then a replacement into a Secret's value
    // (kustomize prints the node). Each is refused as RenderFailed, naming what failed, without
    // the value.
    let generator = tree(&[
        (
            "payments/secret.yaml",
            &SECRET_MANIFEST.replace("{key}", API_KEY),
        ),
        (
            "payments/kustomization.yaml",
            &format!(
                "resources: [secret.yaml]\n\
                 secretGenerator:\n\
                 - name: payments-webhook\n  \
                   literals:\n  \
                   - signing-key={GENERATOR_KEY}\n  \
                   - {TYPO_KEY}   # the key= was forgotten\n"
            ),
        ),
    ]);
    let commit = commit_dir(world, &repo, generator.path(), "payments: webhook key").await;
    let refused = wait_render_failed(&ns, "payments", &commit).await;
    assert!(refused.contains("literal sources"), "{refused}");
    let replacement = tree(&[
        (
            "payments/secret.yaml",
            &SECRET_MANIFEST.replace("{key}", API_KEY),
        ),
        (
            "payments/kustomization.yaml",
            "resources: [secret.yaml]\n\
             replacements:\n\
             - source: {kind: Secret, name: payments, fieldPath: metadata.name}\n  \
               targets:\n  \
               - select: {kind: Secret, name: payments}\n    \
                 fieldPaths: [stringData.api-key.nested]\n",
        ),
    ]);
    let commit = commit_dir(world, &repo, replacement.path(), "payments: replacement").await;
    let refused = wait_render_failed(&ns, "payments", &commit).await;
    assert!(refused.contains("node contents"), "{refused}");

    // A wrong git password: the sync fails, saying so without the password.
    set_git_password(&ns, "git", WRONG_GIT_PASSWORD).await;
    let next = tree(&[(
        "payments/secret.yaml",
        &SECRET_MANIFEST
            .replace("{key}", API_KEY)
            .replace("# The", "# Still the"),
    )]);
    commit_dir(world, &repo, next.path(), "payments: comment").await;
    wait_refused(&ns, "payments", "GitFailed").await;

    let log = daemon.stop().await;
    assert!(
        log.contains("\"level\":\"DEBUG\""),
        "no debug logs: {}",
        &log[..log.len().min(2000)]
    );
    assert!(
        log.contains("Healed") || log.contains("re-applied"),
        "the heal is not in the log"
    );
    let (_, git_password) = world.git_credentials();
    let secrets = forms(&[
        API_KEY,
        EDITED_KEY,
        GENERATOR_KEY,
        TYPO_KEY,
        WRONG_GIT_PASSWORD,
        git_password,
    ]);
    assert_clean("the synchronizer's log", &log, &secrets);
    assert_clean(
        "events and status",
        &events_and_status(&ns, &["gitsyncs"]).await,
        &secrets,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_updater_logs_no_credential() {
    let world = World::get();
    let client = world.kube_client().await;
    sluice_e2e::updater::install_crds(&client).await;
    let ns = TestNamespace::create(&client, "leak-update").await;
    let path = format!("{}/web", unique_name("leak"));
    world.push_image_tls(&[&format!("{path}:1.0.0")]).await;
    let image = format!("{}/{path}", world.registry_tls());
    let repo = unique_name("leak-update");
    let deployment = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: {image}:1.0.0 # {{\"$imagepolicy\": \"{}:web\"}}\n",
        ns.name()
    );
    let files = tree(&[("apps/web.yaml", &deployment)]);
    world.git_seed(&repo, Some(files.path())).await.unwrap();

    let (user, password) = world.registry_credentials();
    let (git_user, git_password) = world.git_credentials();
    let dockerconfig = |password: &str| {
        json!({"auths": {world.registry_tls(): {"auth": b64(&format!("{user}:{password}"))}}})
            .to_string()
    };
    let secrets: Api<Secret> = ns.api();
    for (name, type_, data) in [
        (
            "regcred",
            "kubernetes.io/dockerconfigjson",
            json!({".dockerconfigjson": dockerconfig(password)}),
        ),
        (
            "registry-ca",
            "Opaque",
            json!({"ca.crt": String::from_utf8(world.ca_pem()).unwrap()}),
        ),
        (
            "git",
            "kubernetes.io/basic-auth",
            json!({"username": git_user, "password": git_password}),
        ),
    ] {
        let secret: Secret = serde_json::from_value(
            json!({"metadata": {"name": name}, "type": type_, "stringData": data}),
        )
        .unwrap();
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
    }
    let resources = [
        json!({"apiVersion": "sluice.dev/v1alpha1", "kind": "ImageRepository",
               "metadata": {"name": "web", "namespace": ns.name()},
               "spec": {"image": image, "secretRef": {"name": "regcred"},
                        "certSecretRef": {"name": "registry-ca"}, "interval": "2s"}}),
        json!({"apiVersion": "sluice.dev/v1alpha1", "kind": "ImagePolicy",
               "metadata": {"name": "web", "namespace": ns.name()},
               "spec": {"imageRepositoryRef": {"name": "web"},
                        "policy": {"semver": {"range": ">=1.0.0"}}}}),
        json!({"apiVersion": "sluice.dev/v1alpha1", "kind": "ImageUpdate",
               "metadata": {"name": "config", "namespace": ns.name()},
               "spec": {"git": {"url": world.git_http_url(&repo), "branch": "main",
                                "secretRef": {"name": "git"},
                                "commit": {"authorName": "Sluice", "authorEmail": "sluice@sluice.dev"}},
                        "paths": ["apps"], "batchDelay": "0s", "interval": "1h"}}),
    ];
    for resource in resources {
        let ar = kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            "sluice.dev",
            "v1alpha1",
            resource["kind"].as_str().unwrap(),
        ));
        let api: Api<kube::api::DynamicObject> =
            Api::namespaced_with(client.clone(), ns.name(), &ar);
        let object: kube::api::DynamicObject = serde_json::from_value(resource).unwrap();
        api.create(&PostParams::default(), &object).await.unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    let port = sluice_e2e::git_support::closed_port().to_string();
    let daemon = Daemon::start(
        world,
        "config-updater",
        &[
            "--log-format",
            "json",
            "--log-level",
            "debug",
            "run",
            "--watch-namespace",
            ns.name(),
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
            "--work-dir",
            dir.path().join("work").to_str().unwrap(),
        ],
        &dir.path().join("updater.log"),
    );

    // A new tag: scanned with the registry credentials, bumped with the git credentials.
    world.push_image_tls(&[&format!("{path}:1.0.1")]).await;
    wait_until("the bump commit", Duration::from_secs(60), || async {
        let content = git_in(world, &repo, &["show", "refs/heads/main:apps/web.yaml"]);
        content
            .contains(":1.0.1 #")
            .then_some(())
            .ok_or_else(|| "not bumped yet".to_owned())
    })
    .await;

    // A wrong registry password: Unauthorized, without the password.
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "regcred"}, "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": dockerconfig(WRONG_REGISTRY_PASSWORD)}
    }))
    .unwrap();
    secrets
        .replace("regcred", &PostParams::default(), &secret)
        .await
        .unwrap();
    wait_until(
        "the repository Unauthorized",
        Duration::from_secs(60),
        || async {
            let text = events_and_status(&ns, &["imagerepositories"]).await;
            text.contains("Unauthorized")
                .then_some(())
                .ok_or_else(|| "not refused yet".to_owned())
        },
    )
    .await;

    let log = daemon.stop().await;
    assert!(log.contains("\"level\":\"DEBUG\""), "no debug logs");
    let secrets = forms(&[
        password,
        WRONG_REGISTRY_PASSWORD,
        git_password,
        &format!("{user}:{password}"),
        &format!("{user}:{WRONG_REGISTRY_PASSWORD}"),
    ]);
    assert_clean("the updater's log", &log, &secrets);
    assert_clean(
        "events and status",
        &events_and_status(&ns, &["imagerepositories", "imagepolicies", "imageupdates"]).await,
        &secrets,
    );
}
