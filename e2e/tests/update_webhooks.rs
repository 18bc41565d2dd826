//! User story: an operator's registry is Harbor, Quay, GitHub's container registry, or anything
//! that can send a signed JSON; its push notification makes the Config Updater scan at once and
//! commit the bump, and a forged or unsigned notification does nothing.
//!
//! Against the real world: real images are pushed to the world's plain registry under the
//! repository each payload names; the payloads (each provider's own shape, as in
//! `config-updater/src/webhook/testdata/`) are POSTed to the updater's webhook receiver running
//! in-process on an ephemeral port with a secret for every provider; the three controllers run
//! in-process with a one-hour scan interval, so only a webhook can trigger the scan that leads to
//! the bump commit on the world's git server.
//!
//! Docker Hub's payload always names `docker.io` (Docker Hub notifies for itself only) and this
//! world has no Docker Hub, so for Docker Hub the test proves verification (401s) and what the
//! verified payload asks the controllers to scan, not a commit.

mod update_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use config_updater::resource::{ImagePolicy, ImageRepository, ImageUpdate};
use config_updater::webhook::{self, Delivered, RegistryEvent};
use serde_json::json;
use sluice_e2e::http::post;
use sluice_e2e::unique_name;
use sluice_e2e::updater::webhook::envelope;
use sluice_shared::webhook::{Secret, Secrets, sign_hmac_sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use update_support::{
    Updater, deployment, file, image_update, message, next_commit, parent, repository, seed,
    semver_policy, stays, tip, trailers,
};

const HARBOR: &str = "harbor-auth-header-3f9a";
const QUAY: &str = "quay-url-token-77c1";
const GITHUB: &str = "github-hook-secret-0b2e";
const GENERIC: &str = "generic-hmac-key-5d48";
const DOCKERHUB: &str = "dockerhub-url-token-e61f";
const DISTRIBUTION: &str = "distribution-bearer-a4c0";

/// The providers whose pushes reach a commit here (Docker Hub is the exception, see above).
const PROVIDERS: &[&str] = &["harbor", "quay", "github", "generic"];

/// The receiver with a secret for every provider, on 127.0.0.1:<ephemeral>; every verified event
/// is recorded before it goes on to the controllers, so a refused delivery is seen to trigger
/// nothing.
struct Hooks {
    addr: String,
    seen: Arc<Mutex<Vec<RegistryEvent>>>,
    server: JoinHandle<Result<(), std::io::Error>>,
    tap: JoinHandle<()>,
}

impl Hooks {
    async fn start() -> (Hooks, mpsc::Receiver<Delivered>) {
        let secrets = Secrets::new()
            .with("distribution", Secret::new(DISTRIBUTION))
            .with("dockerhub", Secret::new(DOCKERHUB))
            .with("harbor", Secret::new(HARBOR))
            .with("quay", Secret::new(QUAY))
            .with("github", Secret::new(GITHUB))
            .with("generic", Secret::new(GENERIC));
        let (verified_tx, mut verified_rx) = mpsc::channel::<Delivered>(64);
        let (to_controllers, events) = mpsc::channel(64);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let tap = tokio::spawn(async move {
            while let Some(event) = verified_rx.recv().await {
                if let Some(image) = event.image() {
                    record.lock().unwrap().push(image.clone());
                }
                let _ = to_controllers.send(event).await;
            }
        });
        let app = webhook::router(secrets, verified_tx);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let hooks = Hooks {
            addr,
            seen,
            server,
            tap,
        };
        (hooks, events)
    }

    fn seen(&self) -> Vec<RegistryEvent> {
        self.seen.lock().unwrap().clone()
    }

    async fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> u16 {
        post(&self.addr, path, headers, body).await
    }
}

impl Drop for Hooks {
    fn drop(&mut self) {
        self.server.abort();
        self.tap.abort();
    }
}

/// One provider's delivery: where it goes, its body, and its headers with the right
/// verification, none, or a wrong one.
struct Delivery {
    body: String,
    /// The path with the right secret (the token providers carry it in the query).
    path: String,
    path_without: String,
    path_wrong: String,
    headers: Vec<(&'static str, String)>,
    headers_without: Vec<(&'static str, String)>,
    headers_wrong: Vec<(&'static str, String)>,
}

impl Delivery {
    fn by_header(
        provider: &str,
        body: String,
        name: &'static str,
        right: String,
        wrong: String,
        extra: &[(&'static str, &str)],
    ) -> Delivery {
        let path = format!("/webhook/{provider}");
        let base: Vec<(&'static str, String)> =
            std::iter::once(("Content-Type", "application/json".to_owned()))
                .chain(extra.iter().map(|(k, v)| (*k, (*v).to_owned())))
                .collect();
        let with = |v: String| {
            let mut h = base.clone();
            h.push((name, v));
            h
        };
        Delivery {
            body,
            path: path.clone(),
            path_without: path.clone(),
            path_wrong: path,
            headers: with(right),
            headers_without: base.clone(),
            headers_wrong: with(wrong),
        }
    }

    fn by_query(provider: &str, body: String, token: &str) -> Delivery {
        let headers = vec![("Content-Type", "application/json".to_owned())];
        Delivery {
            body,
            path: format!("/webhook/{provider}?token={token}"),
            path_without: format!("/webhook/{provider}"),
            path_wrong: format!("/webhook/{provider}?token=not-{token}"),
            headers: headers.clone(),
            headers_without: headers.clone(),
            headers_wrong: headers,
        }
    }
}

fn pairs<'a>(h: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    h.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Harbor's `PUSH_ARTIFACT`: `Authorization: <secret>` (its "Auth Header").
fn harbor(registry: &str, path: &str, tag: &str, digest: &str) -> Delivery {
    let (namespace, name) = path.split_once('/').unwrap();
    let body = json!({
        "type": "PUSH_ARTIFACT", "occur_at": 1763791331, "operator": "robot$ci",
        "event_data": {
            "resources": [{"digest": digest, "tag": tag, "resource_url": format!("{registry}/{path}:{tag}")}],
            "repository": {"date_created": 1717494799, "name": name, "namespace": namespace,
                           "repo_full_name": path, "repo_type": "private"}
        }
    })
    .to_string();
    Delivery::by_header(
        "harbor",
        body,
        "Authorization",
        HARBOR.to_owned(),
        format!("{HARBOR}-forged"),
        &[],
    )
}

/// Quay's repository push: `?token=<secret>` in the URL (Quay cannot sign).
fn quay(registry: &str, path: &str, tag: &str) -> Delivery {
    let (namespace, name) = path.split_once('/').unwrap();
    let body = json!({
        "name": name, "repository": path, "namespace": namespace,
        "docker_url": format!("{registry}/{path}"),
        "homepage": format!("https://{registry}/repository/{path}"),
        "updated_tags": [tag]
    })
    .to_string();
    Delivery::by_query("quay", body, QUAY)
}

/// GitHub's `package` event, `X-Hub-Signature-256`. The package's namespace and name are
/// mixed-case as GitHub shows them; the registry path is their lowercase (as on GHCR). The
/// registry's URL is the world's (as a GitHub Enterprise Server names its own).
fn github(registry: &str, path: &str, tag: &str, digest: &str) -> Delivery {
    let (namespace, name) = path.split_once('/').unwrap();
    let (namespace, name) = (namespace.to_ascii_uppercase(), name.to_ascii_uppercase());
    let body = json!({
        "action": "published",
        "package": {
            "id": 4417851, "name": name, "namespace": namespace, "description": "",
            "ecosystem": "CONTAINER", "package_type": "CONTAINER",
            "owner": {"login": namespace, "id": 21031067, "type": "Organization"},
            "package_version": {
                "id": 302983711, "version": digest, "name": digest,
                "container_metadata": {
                    "tag": {"name": tag, "digest": digest},
                    "manifest": {"digest": digest, "media_type": "application/vnd.oci.image.manifest.v1+json"}
                },
                "package_url": format!("{registry}/{path}:{tag}")
            },
            "registry": {"name": "GitHub CONTAINER registry", "type": "CONTAINER",
                         "url": format!("http://{registry}/{namespace}"), "vendor": "GitHub Inc"}
        },
        "repository": {"id": 186853002, "name": "app", "full_name": format!("{namespace}/app")},
        "sender": {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"}
    })
    .to_string();
    let right = sign_hmac_sha256(GITHUB.as_bytes(), body.as_bytes());
    let wrong = sign_hmac_sha256(b"not-the-secret", body.as_bytes());
    Delivery::by_header(
        "github",
        body,
        "X-Hub-Signature-256",
        right,
        wrong,
        &[
            ("X-GitHub-Event", "package"),
            ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ],
    )
}

/// The generic payload, `X-Signature-256: sha256=<HMAC-SHA256 of the body>`.
fn generic(registry: &str, path: &str, tag: &str, digest: &str) -> Delivery {
    let body =
        json!({"image": format!("{registry}/{path}"), "tag": tag, "digest": digest}).to_string();
    let right = sign_hmac_sha256(GENERIC.as_bytes(), body.as_bytes());
    // Signed with the right key, but over another body: a replay with an edited payload.
    let wrong = sign_hmac_sha256(GENERIC.as_bytes(), format!("{body} ").as_bytes());
    Delivery::by_header("generic", body, "X-Signature-256", right, wrong, &[])
}

/// Docker Hub's push: `?token=<secret>` in the URL (Docker Hub cannot sign).
fn dockerhub(repo_name: &str, tag: &str) -> Delivery {
    let (namespace, name) = repo_name.split_once('/').unwrap();
    let body = json!({
        "callback_url": format!("https://registry.hub.docker.com/u/{repo_name}/hook/2141b5bi5i5b02bec211i4eeih0242eg11000a/"),
        "push_data": {"pushed_at": 1763791331, "pusher": "examplebot", "tag": tag},
        "repository": {"comment_count": 0, "date_created": 1717494799, "is_private": true,
                       "name": name, "namespace": namespace, "owner": namespace,
                       "repo_name": repo_name,
                       "repo_url": format!("https://registry.hub.docker.com/u/{repo_name}/"),
                       "status": "Active"}
    })
    .to_string();
    Delivery::by_query("dockerhub", body, DOCKERHUB)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_registrys_verified_push_triggers_the_bump_and_forged_ones_nothing() {
    let mut u = Updater::idle("update-webhooks").await;
    let (hooks, events) = Hooks::start().await;
    u.run(Some(events)).await;
    let world = u.world;
    let ns = u.ns().to_owned();
    let registry = world.registry();

    // One repository per provider in the world's registry, at 1.0.0; a marked Deployment each.
    let base = unique_name("hooks");
    let path = |p: &str| format!("{base}/{p}-app");
    let refs: Vec<String> = PROVIDERS
        .iter()
        .map(|p| format!("{}:1.0.0", path(p)))
        .collect();
    world
        .push_image(&refs.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    let files: Vec<(String, String)> = PROVIDERS
        .iter()
        .map(|p| {
            let image = format!("{registry}/{}", path(p));
            (
                format!("apps/{p}/deployment.yaml"),
                deployment(p, &image, "1.0.0", &ns, p),
            )
        })
        .collect();
    let mut seeded: Vec<(&str, String)> =
        files.iter().map(|(f, t)| (f.as_str(), t.clone())).collect();
    seeded.push(("README.md", "The config repo.\n".into()));
    let (repo, seeded_at) = seed(world, "hooks-config", &seeded).await;
    u.world_git_secret("git").await;
    for p in PROVIDERS {
        // A one-hour interval: after the first scan, only a webhook scans again.
        let image = format!("{registry}/{}", path(p));
        u.create::<ImageRepository>(repository(p, &image, "1h"))
            .await;
        u.create::<ImagePolicy>(semver_policy(p, p)).await;
    }
    u.create::<ImageUpdate>(image_update("config", &world.git_http_url(&repo), None))
        .await;
    for p in PROVIDERS {
        assert_eq!(u.wait_policy_tag(p).await, "1.0.0");
    }

    // 1.0.1 lands in every repository; the registry itself notifies nobody here.
    let refs: Vec<String> = PROVIDERS
        .iter()
        .map(|p| format!("{}:1.0.1", path(p)))
        .collect();
    let pushed = world
        .push_image(&refs.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    let digest = |p: &str| {
        pushed
            .iter()
            .find(|i| i.repository.ends_with(&format!("/{}", path(p))))
            .unwrap()
            .digest
            .clone()
    };
    let deliveries: Vec<(&str, Delivery)> = PROVIDERS
        .iter()
        .map(|p| {
            let d = match *p {
                "harbor" => harbor(registry, &path(p), "1.0.1", &digest(p)),
                "quay" => quay(registry, &path(p), "1.0.1"),
                "github" => github(registry, &path(p), "1.0.1", &digest(p)),
                _ => generic(registry, &path(p), "1.0.1", &digest(p)),
            };
            (*p, d)
        })
        .collect();
    let hub = dockerhub(&format!("{base}/hub-app"), "1.0.1");
    // The registry's own notification (its success is update_loop's story).
    let notification = Delivery::by_header(
        "distribution",
        envelope(registry, &path("harbor"), "1.0.1", &digest("harbor")),
        "Authorization",
        format!("Bearer {DISTRIBUTION}"),
        format!("Bearer {DISTRIBUTION}-forged"),
        &[],
    );

    // Unsigned and forged deliveries: 401, nothing verified, nothing scanned, nothing committed.
    let others = [("dockerhub", hub), ("distribution", notification)];
    for (p, d) in deliveries.iter().chain(others.iter()) {
        let status = hooks
            .post(&d.path_without, &pairs(&d.headers_without), &d.body)
            .await;
        assert_eq!(status, 401, "{p} without its secret");
        let status = hooks
            .post(&d.path_wrong, &pairs(&d.headers_wrong), &d.body)
            .await;
        assert_eq!(status, 401, "{p} with a wrong secret");
    }
    assert_eq!(hooks.seen(), vec![], "a refused delivery reaches nobody");
    stays(world, &repo, seeded_at, Duration::from_secs(4)).await;
    for p in PROVIDERS {
        assert_eq!(u.wait_policy_tag(p).await, "1.0.0", "{p} was not rescanned");
    }

    // Each verified delivery: accepted, its repository scanned at once, the bump committed.
    let mut at = seeded_at;
    for (p, d) in &deliveries {
        let status = hooks.post(&d.path, &pairs(&d.headers), &d.body).await;
        assert_eq!(status, 202, "{p}'s verified push is accepted");
        let commit = next_commit(world, &repo, at).await;
        assert_eq!(parent(world, &repo, commit), at, "one commit for {p}");
        let found = trailers(&message(world, &repo, commit));
        assert_eq!(found.len(), 1, "{p}: {found:?}");
        assert!(
            found[0].contains(&format!("policy={ns}/{p}"))
                && found[0].contains("old=1.0.0 new=1.0.1"),
            "{p}: {found:?}"
        );
        // This provider's file and those of the providers before it moved; the others wait
        // for their own webhook.
        let done: Vec<String> = deliveries
            .iter()
            .map(|(x, _)| format!("apps/{x}/deployment.yaml"))
            .take(1 + PROVIDERS.iter().position(|x| x == p).unwrap())
            .collect();
        for (f, text) in &files {
            let expected = if done.contains(f) {
                text.replace(":1.0.0 #", ":1.0.1 #")
            } else {
                text.clone()
            };
            assert_eq!(file(world, &repo, f), expected, "{f} after {p}'s webhook");
        }
        at = commit;
    }
    let expected: Vec<(Option<String>, String, Option<String>)> = PROVIDERS
        .iter()
        .map(|p| (Some(registry.to_owned()), path(p), Some("1.0.1".to_owned())))
        .collect();
    let seen: Vec<(Option<String>, String, Option<String>)> = hooks
        .seen()
        .into_iter()
        .map(|e| (e.registry_host, e.repository, e.tag))
        .collect();
    assert_eq!(
        seen, expected,
        "one verified event per delivery, naming the pushed repository"
    );

    // Docker Hub: verified, it names docker.io/<repo_name>, which no repository here watches:
    // nothing is scanned and nothing committed.
    let hub = dockerhub(&format!("{base}/hub-app"), "1.0.1");
    let status = hooks.post(&hub.path, &pairs(&hub.headers), &hub.body).await;
    assert_eq!(status, 202, "Docker Hub's verified push is accepted");
    let last = hooks.seen().last().cloned().unwrap();
    assert_eq!(
        last,
        RegistryEvent {
            registry_host: Some("docker.io".into()),
            repository: format!("{base}/hub-app"),
            tag: Some("1.0.1".into()),
            digest: None
        }
    );
    assert!(webhook::matches(
        &format!("docker.io/{base}/hub-app"),
        &last
    ));
    assert!(!webhook::matches(
        &format!("{registry}/{base}/hub-app"),
        &last
    ));
    stays(world, &repo, at, Duration::from_secs(2)).await;
    assert_eq!(tip(world, &repo), at);

    u.stop().await;
}
