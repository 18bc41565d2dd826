//! The Config Updater's whole loop against the real world: a registry push becomes a bump commit
//! on the git server. The three controllers run in-process for the test's namespace; the second
//! bump is triggered by a distribution notification posted to the in-process webhook router
//! (bound on an ephemeral port: the world's notify address belongs to webhook_registry.rs).

use std::time::Duration;

use config_updater::controller::{self, Options};
use config_updater::resource::{ImagePolicy, ImageRepository, ImageUpdate};
use config_updater::webhook;
use git2::{Oid, Repository};
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::json;
use sluice_e2e::{
    TestNamespace, World, apply_yaml, install_crypto_provider, unique_name, wait_until,
};
use sluice_shared::webhook::{Secret, Secrets};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

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

const TOKEN: &str = "update-loop-token";
const DEADLINE: Duration = Duration::from_secs(60);

async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (name, yaml) in CRDS {
        apply_yaml(&api, yaml).await;
        wait_until(
            &format!("the CRD {name} to be Established"),
            DEADLINE,
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

fn deployment(image: &str, ns: &str) -> String {
    format!(
        "---\n# The web app.\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: web   # the app\n          image: {image}:1.4.2 # {{\"$imagepolicy\": \"{ns}:web\"}}\n          ports: [ {{containerPort: 8080}} ]\n"
    )
}

/// A distribution envelope with one tagged push, as the world's registries send it.
fn envelope(registry: &str, repository: &str, tag: &str, digest: &str) -> String {
    json!({"events": [{
        "id": unique_name("event"), "timestamp": "2026-11-22T06:00:00Z", "action": "push",
        "target": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 400,
            "digest": digest, "length": 400, "repository": repository, "tag": tag,
            "url": format!("http://{registry}/v2/{repository}/manifests/{tag}")
        },
        "request": {"id": "r", "addr": "127.0.0.1:1", "host": registry, "method": "PUT", "useragent": "e2e"},
        "actor": {}, "source": {"addr": "e2e:1", "instanceID": "i"}
    }]})
    .to_string()
}

/// POSTs `body` over plain HTTP/1.1; returns the status code.
async fn post(addr: &str, path: &str, headers: &[(&str, &str)], body: &str) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .parse()
        .unwrap_or(0)
}

/// The tip of main on the server, its message, and the deployment there.
fn main_on_server(world: &World, name: &str) -> (Oid, String, String) {
    let (tip, content) = world.git_file_on_server(name, "apps/web/deployment.yaml");
    let bare = Repository::open_bare(world.git_bare_repo(name)).unwrap();
    let message = bare
        .find_commit(tip)
        .unwrap()
        .message()
        .unwrap_or_default()
        .to_owned();
    (tip, message, content)
}

async fn policy_tag(api: &Api<ImagePolicy>) -> Result<String, String> {
    let p = api.get("web").await.map_err(|e| e.to_string())?;
    p.status
        .as_ref()
        .and_then(|s| s.latest_ref.as_ref())
        .map(|r| r.tag.clone())
        .ok_or_else(|| format!("no latestRef yet: {:?}", p.status))
}

/// Waits for a commit on main other than `after` and checks it changes exactly the tag bytes.
async fn bump_commit(world: &World, name: &str, after: Oid, before: &str, tag: &str) -> Oid {
    let (commit, message, content) =
        wait_until(&format!("a bump to {tag} on main"), DEADLINE, || async {
            let seen = main_on_server(world, name);
            if seen.0 != after {
                Ok(seen)
            } else {
                Err(format!("main is still {after}"))
            }
        })
        .await;
    let bare = Repository::open_bare(world.git_bare_repo(name)).unwrap();
    assert_eq!(
        bare.find_commit(commit).unwrap().parent_id(0).unwrap(),
        after,
        "one commit on top"
    );
    let old_tag = before
        .split("/web:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    let expected = before.replacen(&format!("/web:{old_tag} "), &format!("/web:{tag} "), 1);
    assert_eq!(content, expected, "only the tag bytes change");
    assert!(
        message
            .lines()
            .any(|l| l.starts_with("Sluice-Change: ") && l.contains(&format!("new={tag}"))),
        "a Sluice-Change trailer names the bump:\n{message}"
    );
    commit
}

async fn last_push(api: &Api<ImageUpdate>, commit: Oid) {
    wait_until("ImageUpdate status.lastPushCommit", DEADLINE, || async {
        let u = api.get("config").await.map_err(|e| e.to_string())?;
        let last = u.status.as_ref().and_then(|s| s.last_push_commit.clone());
        if last.as_deref() == Some(commit.to_string().as_str()) {
            Ok(())
        } else {
            Err(format!("{:?}", u.status))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_push_becomes_a_pushed_bump_commit() {
    install_crypto_provider();
    let world = World::get();
    let client = world.kube_client().await;
    install_crds(&client).await;
    let ns = TestNamespace::create(&client, "update-loop").await;

    let path = format!("{}/web", unique_name("loop"));
    let image = format!("{}/{path}", world.registry());
    world
        .push_image(&[&format!("{path}:1.4.2"), &format!("{path}:1.4.3")])
        .await;

    let repo_name = unique_name("loop-config");
    let seed_dir = tempfile::tempdir().unwrap();
    let original = deployment(&image, ns.name());
    std::fs::create_dir_all(seed_dir.path().join("apps/web")).unwrap();
    std::fs::write(seed_dir.path().join("apps/web/deployment.yaml"), &original).unwrap();
    std::fs::write(seed_dir.path().join("README.md"), "The config repo.\n").unwrap();
    let seed = world
        .git_seed(&repo_name, Some(seed_dir.path()))
        .await
        .expect("the seed commit");
    let seed = Oid::from_str(&seed).unwrap();

    let (user, password) = world.git_credentials();
    let secret: KubeSecret = serde_json::from_value(json!({
        "metadata": {"name": "git"},
        "type": "kubernetes.io/basic-auth",
        "stringData": {"username": user, "password": password}
    }))
    .unwrap();
    ns.api::<KubeSecret>()
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let pp = PostParams::default();
    let repository: ImageRepository = serde_json::from_value(json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "ImageRepository",
        "metadata": {"name": "web"},
        // A long interval: the second bump must come through the webhook.
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

    // The webhook router on an ephemeral port, feeding the controllers.
    let (events_tx, events_rx) = mpsc::channel(64);
    let app = webhook::router(
        Secrets::new().with("distribution", Secret::new(TOKEN)),
        events_tx,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let work = tempfile::tempdir().unwrap();
    let options = Options {
        namespace: Some(ns.name().to_owned()),
        work_dir: work.path().to_owned(),
        instance: Some(format!("e2e-{}", ns.name())),
        events: Some(events_rx),
        ..Options::default()
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let controllers = tokio::spawn(controller::run(client.clone(), options, async move {
        let _ = stopped.await;
    }));

    let policies = ns.api::<ImagePolicy>();
    let tag = wait_until("ImagePolicy latestRef 1.4.3", DEADLINE, || {
        policy_tag(&policies)
    })
    .await;
    assert_eq!(tag, "1.4.3");
    let first = bump_commit(world, &repo_name, seed, &original, "1.4.3").await;
    let updates = ns.api::<ImageUpdate>();
    last_push(&updates, first).await;

    // A new tag, announced by the registry's notification: scanned at once, bumped again.
    let pushed = world.push_image(&[&format!("{path}:1.4.4")]).await;
    let body = envelope(world.registry(), &path, "1.4.4", &pushed[0].digest);
    let bearer = format!("Bearer {TOKEN}");
    let status = post(
        &addr,
        "/webhook/distribution",
        &[
            ("Authorization", &bearer),
            ("Content-Type", webhook::ENVELOPE_MEDIA_TYPE),
        ],
        &body,
    )
    .await;
    assert!(
        (200..300).contains(&status),
        "the notification is accepted: {status}"
    );
    let (_, _, after_first) = main_on_server(world, &repo_name);
    let second = bump_commit(world, &repo_name, first, &after_first, "1.4.4").await;
    last_push(&updates, second).await;
    assert_eq!(policy_tag(&policies).await.unwrap(), "1.4.4");

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), controllers)
        .await
        .expect("the controllers stop within 30 s")
        .expect("the controllers end cleanly");
    server.abort();
}
