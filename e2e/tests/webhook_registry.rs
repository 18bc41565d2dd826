//! The Config Updater's registry webhook against the world's real registries: its router, bound
//! on SLUICE_REGISTRY_NOTIFY_URL (`/webhook/distribution`), turns both registries' push
//! notifications into verified `RegistryEvent`s naming the pushed repository, tag, manifest
//! digest and registry; a POST with a wrong or missing bearer token gets 401 and yields nothing,
//! and one in another content type gets 400.
//!
//! This is the only test that binds that port (it replaced the raw listener of world_notify.rs,
//! keeping its assertions: the bearer token and content type are now checked by the receiver).

use std::time::Duration;

use config_updater::webhook::{self, Delivered, ENVELOPE_MEDIA_TYPE, RegistryEvent};
use sluice_e2e::http::post;
use sluice_e2e::{World, unique_name};
use sluice_shared::webhook::{Secret, Secrets};
use tokio::sync::mpsc;

/// `(host:port, path)` of an `http://host:port/path` URL.
fn split_url(url: &str) -> (String, String) {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("the notify URL {url} is not plain http"));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    (authority.to_string(), format!("/{path}"))
}

/// Waits for the event of `repository:tag`. Events of other pushes are kept in `seen`: other
/// tests push too, the registries re-send what they queued while nobody listened, and both of
/// this test's pushes may arrive in either order.
async fn event_of(
    rx: &mut mpsc::Receiver<Delivered>,
    seen: &mut Vec<RegistryEvent>,
    repository: &str,
    tag: &str,
) -> RegistryEvent {
    let is_it = |e: &RegistryEvent| e.repository == repository && e.tag.as_deref() == Some(tag);
    if let Some(i) = seen.iter().position(is_it) {
        return seen.remove(i);
    }
    // Generous: a registry drains what it queued while nobody listened (1 s backoff) first.
    let deadline = Duration::from_secs(60);
    let found = tokio::time::timeout(deadline, async {
        loop {
            let Delivered::Image(e) = rx.recv().await.expect("the router runs") else {
                panic!("only distribution is served: a registry event");
            };
            if is_it(&e) {
                return e;
            }
            seen.push(e);
        }
    })
    .await;
    found.unwrap_or_else(|_| {
        panic!(
            "no verified push event of {repository}:{tag} within {deadline:?} ({} other events came)",
            seen.len()
        )
    })
}

/// A distribution envelope with one tagged push, as the world's registries send it.
fn forged_envelope(registry: &str, repository: &str, tag: &str) -> String {
    serde_json::json!({"events": [{
        "id": "forged", "timestamp": "2026-11-22T06:00:00Z", "action": "push",
        "target": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 400,
            "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "length": 400, "repository": repository, "tag": tag,
            "url": format!("http://{registry}/v2/{repository}/manifests/{tag}")
        },
        "request": {"id": "r", "addr": "127.0.0.1:1", "host": registry, "method": "PUT", "useragent": "forger"},
        "actor": {}, "source": {"addr": "forger:1", "instanceID": "i"}
    }]})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_pushes_come_out_verified_and_forgeries_do_not() {
    let world = World::get();
    let (addr, path) = split_url(world.registry_notify_url());
    assert_eq!(
        path,
        format!("{}/distribution", webhook::PATH_PREFIX),
        "the world notifies the path the Config Updater serves"
    );
    let secrets = Secrets::new().with("distribution", Secret::new(world.registry_notify_token()));
    let (tx, mut rx) = mpsc::channel(1024);
    let app = webhook::router(secrets, tx);
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap_or_else(|e| {
        panic!("cannot listen on {addr}, the registries' notify address: {e} (is a Sluice daemon or e2e/demo holding it?)")
    });
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let repo = format!("e2e/{}/app", unique_name("webhook"));
    let mut seen = Vec::new();
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
        let event = event_of(&mut rx, &mut seen, &repo, tag).await;
        assert_eq!(
            event,
            RegistryEvent {
                // The event says which registry it comes from.
                registry_host: Some(registry.to_string()),
                repository: repo.clone(),
                tag: Some(tag.clone()),
                // The pushed manifest.
                digest: Some(pushed[0].digest.clone()),
            },
            "from {registry}"
        );
        assert!(
            webhook::matches(&pushed[0].repository, &event),
            "{event:?} is a push to the watched {}",
            pushed[0].repository
        );
        let other_registry = if registry == world.registry() {
            world.registry_tls()
        } else {
            world.registry()
        };
        assert!(!webhook::matches(
            &format!("{other_registry}/{repo}"),
            &event
        ));
    }

    // Forgeries: a wrong token, no token, and the right token in another content type.
    let forged_repo = format!("e2e/{}/forged", unique_name("webhook"));
    let body = forged_envelope(world.registry(), &forged_repo, "9.9.9");
    let right = format!("Bearer {}", world.registry_notify_token());
    let ct = ("Content-Type", ENVELOPE_MEDIA_TYPE);
    let wrong = [("Authorization", "Bearer not-the-token"), ct];
    assert_eq!(
        post(&addr, &path, &wrong, &body).await,
        401,
        "a wrong bearer token"
    );
    assert_eq!(post(&addr, &path, &[ct], &body).await, 401, "no token");
    let text = [
        ("Authorization", right.as_str()),
        ("Content-Type", "text/plain"),
    ];
    assert_eq!(
        post(&addr, &path, &text, &body).await,
        400,
        "not an envelope"
    );
    // Nothing of them came out; (events of other tests' pushes may).
    let quiet = tokio::time::timeout(Duration::from_millis(700), async {
        while let Some(e) = rx.recv().await {
            assert!(
                e.image().is_none_or(|e| e.repository != forged_repo),
                "a refused delivery triggered {e:?}"
            );
        }
    })
    .await;
    assert!(quiet.is_err(), "the router still runs");
    // The same envelope with the token is accepted: the refusals were the token's and type's.
    let ok = [("Authorization", right.as_str()), ct];
    assert_eq!(post(&addr, &path, &ok, &body).await, 202);
    event_of(&mut rx, &mut seen, &forged_repo, "9.9.9").await;

    server.abort();
}
