//! Signed bumps through the controllers: an `ImageUpdate` whose `commit.signingKeyRef` names a
//! Secret with an OpenSSH key (`identity`) pushes a bump commit that the real
//! `git verify-commit` accepts; one whose Secret holds an encrypted key without its passphrase
//! pushes nothing and says why in its Ready condition, without the key in any condition or
//! event.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use config_updater::controller::{self, Options};
use config_updater::resource::{ImagePolicy, ImageRepository, ImageUpdate};
use git2::Oid;
use k8s_openapi::api::core::v1::{Event, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use sluice_e2e::{
    TestNamespace, World, apply_yaml, install_crypto_provider, unique_name, wait_until,
};
use tokio::sync::oneshot;

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

const DEADLINE: Duration = Duration::from_secs(90);
const EMAIL: &str = "images@sluice.dev";

async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (name, yaml) in CRDS {
        apply_yaml(&api, yaml).await;
        wait_until(&format!("the CRD {name} Established"), DEADLINE, || async {
            let crd = api.get(name).await.map_err(|e| e.to_string())?;
            let established = crd
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            established.then_some(()).ok_or("not yet".to_owned())
        })
        .await;
    }
}

/// A key made with the real `ssh-keygen`: (private key text, public key line).
fn keygen(dir: &Path, name: &str, passphrase: &str) -> (String, String) {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-C",
            "sluice-e2e",
            "-N",
            passphrase,
            "-f",
        ])
        .arg(&path)
        .output()
        .expect("ssh-keygen runs");
    assert!(out.status.success(), "ssh-keygen: {out:?}");
    (
        std::fs::read_to_string(&path).unwrap(),
        std::fs::read_to_string(path.with_extension("pub")).unwrap(),
    )
}

fn git(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .args(args)
        .output()
        .expect("git runs")
}

async fn seed(world: &World, image: &str, ns: &str) -> (String, Oid) {
    let name = unique_name("signed-config");
    let dir = tempfile::tempdir().unwrap();
    let deployment = format!(
        "---\n# The web app.\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n\
         spec:\n  template:\n    spec:\n      containers:\n        - name: web\n          \
         image: {image}:1.4.2 # {{\"$imagepolicy\": \"{ns}:web\"}}\n"
    );
    std::fs::create_dir_all(dir.path().join("apps/web")).unwrap();
    std::fs::write(dir.path().join("apps/web/deployment.yaml"), deployment).unwrap();
    let seed = world
        .git_seed(&name, Some(dir.path()))
        .await
        .expect("the seed commit");
    (name, Oid::from_str(&seed).unwrap())
}

async fn secret(ns: &TestNamespace, name: &str, data: serde_json::Value) {
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": name}, "stringData": data
    }))
    .unwrap();
    ns.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signing_key_secret_makes_signed_bumps_and_a_locked_key_is_reported() {
    install_crypto_provider();
    let world = World::get();
    let client = world.kube_client().await;
    install_crds(&client).await;
    let ns = TestNamespace::create(&client, "update-signed").await;
    let path = format!("{}/web", unique_name("signed"));
    let image = format!("{}/{path}", world.registry());
    world
        .push_image(&[&format!("{path}:1.4.2"), &format!("{path}:1.4.3")])
        .await;
    let (signed_repo, _) = seed(world, &image, ns.name()).await;
    let (locked_repo, locked_seed) = seed(world, &image, ns.name()).await;

    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keygen(keys.path(), "signing", "");
    let (locked_key, _) = keygen(keys.path(), "locked", "its passphrase");
    let (user, password) = world.git_credentials();
    secret(&ns, "git", json!({"username": user, "password": password})).await;
    secret(&ns, "signing", json!({"identity": key})).await;
    secret(&ns, "locked", json!({"identity": locked_key})).await;

    let pp = PostParams::default();
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
        "spec": {"imageRepositoryRef": {"name": "web"}, "policy": {"semver": {"range": ">=1.0.0"}}}
    }))
    .unwrap();
    ns.api::<ImagePolicy>().create(&pp, &policy).await.unwrap();
    for (name, repo, key_secret) in [
        ("signed", &signed_repo, "signing"),
        ("locked", &locked_repo, "locked"),
    ] {
        let update: ImageUpdate = serde_json::from_value(json!({
            "apiVersion": "sluice.dev/v1alpha1", "kind": "ImageUpdate",
            "metadata": {"name": name},
            "spec": {
                "git": {
                    "url": world.git_http_url(repo), "branch": "main", "secretRef": {"name": "git"},
                    "commit": {"authorName": "Sluice Images", "authorEmail": EMAIL,
                               "signingKeyRef": {"name": key_secret}}
                },
                "paths": ["apps"]
            }
        }))
        .unwrap();
        ns.api::<ImageUpdate>().create(&pp, &update).await.unwrap();
    }

    let work = tempfile::tempdir().unwrap();
    let options = Options {
        namespace: Some(ns.name().to_owned()),
        work_dir: work.path().to_owned(),
        instance: Some(format!("e2e-{}", ns.name())),
        ..Options::default()
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let controllers = tokio::spawn(controller::run(client.clone(), options, async move {
        let _ = stopped.await;
    }));

    // The signed one: lastPushCommit is main's tip on the server, and git verifies it.
    let updates = ns.api::<ImageUpdate>();
    let commit = wait_until("the signed ImageUpdate to push", DEADLINE, || async {
        let u = updates.get("signed").await.map_err(|e| e.to_string())?;
        u.status
            .as_ref()
            .and_then(|s| s.last_push_commit.clone())
            .ok_or_else(|| format!("{:?}", u.status))
    })
    .await;
    assert_eq!(world.git_main_on_server(&signed_repo).to_string(), commit);
    let clones = tempfile::tempdir().unwrap();
    let bare = world.git_bare_repo(&signed_repo).display().to_string();
    let out = git(clones.path(), &["clone", "--quiet", &bare, "config"]);
    assert!(out.status.success(), "git clone: {out:?}");
    let clone = clones.path().join("config");
    let allowed = clone.join(".git/allowed_signers");
    std::fs::write(&allowed, format!("{EMAIL} {public}")).unwrap();
    let out = git(
        &clone,
        &[
            "-c",
            "gpg.format=ssh",
            "-c",
            &format!("gpg.ssh.allowedSignersFile={}", allowed.display()),
            "verify-commit",
            &commit,
        ],
    );
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "git verify-commit: {said}");
    assert!(
        said.contains(&format!("Good \"git\" signature for {EMAIL}")),
        "{said}"
    );

    // The locked one: Ready=False naming the Secret and why; nothing pushed.
    let message = wait_until("the locked ImageUpdate to say why", DEADLINE, || async {
        let u = updates.get("locked").await.map_err(|e| e.to_string())?;
        let ready = u
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready").cloned());
        match ready {
            Some(c) if c.status == "False" && c.message.contains("encrypted") => {
                assert_eq!(c.reason, "GitSecret", "{c:?}");
                Ok(c.message)
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert!(
        message.contains("locked") && message.contains("signingKeyRef"),
        "{message}"
    );
    assert_eq!(world.git_main_on_server(&locked_repo), locked_seed);

    // No key material in any condition or event of the namespace.
    let events = ns
        .api::<Event>()
        .list(&ListParams::default())
        .await
        .unwrap();
    let mut shown = serde_json::to_string(&events.items).unwrap();
    for u in updates.list(&ListParams::default()).await.unwrap().items {
        shown.push_str(&serde_json::to_string(&u.status).unwrap());
    }
    for line in key.lines().chain(locked_key.lines()) {
        if !line.starts_with("-----") {
            assert!(!shown.contains(line), "key material shown: {shown}");
        }
    }

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), controllers)
        .await
        .expect("the controllers stop within 30 s")
        .expect("the controllers end cleanly");
}
