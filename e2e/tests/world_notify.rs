//! Both world registries notify a push: a listener on SLUICE_REGISTRY_NOTIFY_URL (where Sluice's
//! webhook will listen) receives a distribution event envelope naming the pushed repository and
//! tag, with the world's bearer token. This is the only test that binds that port.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use serde_json::Value;
use sluice_e2e::{World, unique_name};
use tokio::sync::mpsc;

const ENVELOPE_MEDIA_TYPE: &str = "application/vnd.docker.distribution.events.v1+json";

/// One POST the listener received.
#[derive(Debug)]
struct Notification {
    content_type: Option<String>,
    authorization: Option<String>,
    envelope: Value,
}

/// `(host:port, path)` of an `http://host:port/path` URL.
fn split_url(url: &str) -> (String, String) {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("the notify URL {url} is not plain http"));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    (authority.to_string(), format!("/{path}"))
}

async fn receive(
    State(tx): State<mpsc::UnboundedSender<Notification>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &axum::http::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let envelope = serde_json::from_slice(&body).unwrap_or_else(|e| {
        Value::String(format!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&body)
        ))
    });
    let _ = tx.send(Notification {
        content_type: text(header::CONTENT_TYPE),
        authorization: text(header::AUTHORIZATION),
        envelope,
    });
    StatusCode::OK
}

/// The push event of `repository:tag` in an envelope, if it has one.
fn push_event<'a>(envelope: &'a Value, repository: &str, tag: &str) -> Option<&'a Value> {
    envelope["events"].as_array()?.iter().find(|e| {
        e["action"] == "push"
            && e["target"]["repository"] == repository
            && e["target"]["tag"] == tag
    })
}

/// Waits for the notification of `repository:tag`, skipping the others (other tests push too,
/// and the registries re-send what they queued while nobody listened).
async fn notification_of(
    rx: &mut mpsc::UnboundedReceiver<Notification>,
    repository: &str,
    tag: &str,
) -> Notification {
    let deadline = Duration::from_secs(30);
    let mut others = 0;
    let found = tokio::time::timeout(deadline, async {
        loop {
            let n = rx.recv().await.expect("the listener runs");
            if push_event(&n.envelope, repository, tag).is_some() {
                return n;
            }
            others += 1;
        }
    })
    .await;
    found.unwrap_or_else(|_| {
        panic!("no push notification of {repository}:{tag} within {deadline:?} ({others} other notifications came)")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_registries_notify_a_push_with_the_bearer_token() {
    let world = World::get();
    let (addr, path) = split_url(world.registry_notify_url());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let app = Router::new().route(&path, post(receive)).with_state(tx);
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap_or_else(|e| {
        panic!("cannot listen on {addr}, the registries' notify address: {e} (is a Sluice daemon or e2e/demo holding it?)")
    });
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let repo = format!("e2e/{}/app", unique_name("notify"));
    let bearer = format!("Bearer {}", world.registry_notify_token());
    for (registry, pushed) in [
        (
            world.registry(),
            world.push_image(&[&format!("{repo}:1.4.2")]).await,
        ),
        (
            world.registry_tls(),
            world.push_image_tls(&[&format!("{repo}:1.4.3")]).await,
        ),
    ] {
        let tag = &pushed[0].tag;
        let n = notification_of(&mut rx, &repo, tag).await;
        assert_eq!(
            n.content_type.as_deref(),
            Some(ENVELOPE_MEDIA_TYPE),
            "from {registry}"
        );
        assert_eq!(
            n.authorization.as_deref(),
            Some(bearer.as_str()),
            "from {registry}: the world's bearer token"
        );
        let event = push_event(&n.envelope, &repo, tag).expect("the push event");
        assert_eq!(
            event["target"]["digest"],
            pushed[0].digest.as_str(),
            "from {registry}: the pushed manifest"
        );
        assert!(
            event["target"]["mediaType"]
                .as_str()
                .is_some_and(|m| m.contains("manifest")),
            "from {registry}: a manifest push, got {event}"
        );
        // The event says which registry it comes from.
        assert_eq!(
            event["request"]["host"], registry,
            "from {registry}: {event}"
        );
    }

    server.abort();
}
