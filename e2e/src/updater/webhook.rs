//! The Config Updater's webhook receiver on an ephemeral port (the world's notify address
//! belongs to `webhook_registry.rs`), and distribution notifications posted to it; other
//! providers (the forge's `gitea` pull-request webhooks) when given a secret.

use config_updater::webhook::{self, Delivered};
use serde_json::json;
use sluice_shared::webhook::{Secret, Secrets};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::http::post;
use crate::unique_name;

/// The webhook router serving on 127.0.0.1:<ephemeral>, with a distribution bearer token (and
/// the secrets of other providers, see [`Receiver::start_with`]).
pub struct Receiver {
    pub addr: String,
    token: String,
    server: JoinHandle<Result<(), std::io::Error>>,
}

impl Receiver {
    /// Serves the router with `token`; returns it and the events it verified, for the
    /// controllers' `Options::events`.
    pub async fn start(token: &str) -> (Receiver, mpsc::Receiver<Delivered>) {
        Self::start_with(token, &[]).await
    }

    /// As [`start`](Self::start), also serving each `(provider, secret)` of `others` (such as
    /// `("gitea", secret)`: the forge's signed pull-request webhooks at `/webhook/gitea`).
    pub async fn start_with(
        token: &str,
        others: &[(&str, &str)],
    ) -> (Receiver, mpsc::Receiver<Delivered>) {
        let (events_tx, events_rx) = mpsc::channel(64);
        let secrets = others.iter().fold(
            Secrets::new().with("distribution", Secret::new(token)),
            |s, (provider, secret)| s.with(provider, Secret::new(secret)),
        );
        let app = webhook::router(secrets, events_tx);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let receiver = Receiver {
            addr,
            token: token.to_owned(),
            server,
        };
        (receiver, events_rx)
    }

    /// Posts a distribution notification of `repository:tag` pushed to `registry`, with the
    /// bearer token; returns the HTTP status.
    pub async fn notify(&self, registry: &str, repository: &str, tag: &str, digest: &str) -> u16 {
        let body = envelope(registry, repository, tag, digest);
        let bearer = format!("Bearer {}", self.token);
        post(
            &self.addr,
            "/webhook/distribution",
            &[
                ("Authorization", bearer.as_str()),
                ("Content-Type", webhook::ENVELOPE_MEDIA_TYPE),
            ],
            &body,
        )
        .await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A distribution envelope with one tagged push, as the world's registries send it.
pub fn envelope(registry: &str, repository: &str, tag: &str, digest: &str) -> String {
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
