//! Registry webhooks (distribution notifications, Docker Hub, Harbor, Quay, GitHub packages,
//! generic HMAC): verified payload -> which repositories to scan now.
//!
//! # Endpoint
//!
//! `POST /webhook/{provider}` on the daemon's HTTP server; `provider` is one of `distribution`,
//! `dockerhub`, `harbor`, `quay`, `github`, `generic`. Each has one secret, given as
//! `--webhook-secret-file PROVIDER=PATH` (repeatable); a provider without a secret answers 404.
//! Every delivery is verified before its body is parsed: a missing or bad secret is 401 and
//! triggers nothing.
//!
//! | provider | verification | what triggers |
//! | --- | --- | --- |
//! | `distribution` | `Authorization: Bearer <secret>` (the registry's `notifications.endpoints[].headers`); the content type, when given, must be the envelope's (`events.v1+json`, distribution 3's `events.v2+json`) or `application/json` | `action: push` events whose target has a `tag` |
//! | `dockerhub` | `?token=<secret>` in the webhook URL: Docker Hub cannot sign | every payload (`push_data.tag`) |
//! | `harbor` | `Authorization: <secret>` (Harbor's "Auth Header"; `Bearer <secret>` too) | `type: PUSH_ARTIFACT`, one event per tagged resource |
//! | `quay` | `?token=<secret>` in the webhook URL: Quay cannot sign | a repository push, one event per `updated_tags` entry |
//! | `github` | `X-Hub-Signature-256: sha256=<hex>` HMAC-SHA256 of the body | `X-GitHub-Event: package`, a published container version with a tag (host `ghcr.io`) |
//! | `generic` | `X-Signature-256: sha256=<hex>` HMAC-SHA256 of the body | every payload |
//!
//! The generic payload is JSON: `{"image": "registry.example/team/app", "tag": "1.4.2",
//! "digest": "sha256:…"}`. `image` is a repository without tag, named as in `docker pull` (so
//! `nginx` is `docker.io/library/nginx`); `tag` and `digest` are optional (without them the event
//! just asks for a scan).
//!
//! Pulls, deletions, pings, other GitHub events and manifest pushes without a tag (the children of
//! a multi-arch index: the index push carries the tag) are ignored with 204. The `?token=` of
//! Docker Hub and Quay is logged by nobody: the router logs the provider and the outcome only
//! (keep it out of access logs of any proxy in front, too).

mod image;
mod parse;

pub use image::{ImageKey, matches, normalize_image};
pub use parse::{
    ENVELOPE_MEDIA_TYPE, parse_distribution, parse_dockerhub, parse_generic, parse_github_package,
    parse_harbor, parse_quay,
};

use sluice_shared::webhook::{self, Delivery, Router, Secrets, WebhookError};
use tokio::sync::mpsc;

/// The providers this receiver serves, as they appear in the URL path and the secret flag.
pub const PROVIDERS: &[&str] = &[
    "distribution",
    "dockerhub",
    "harbor",
    "quay",
    "github",
    "generic",
];

/// The path prefix; the full route is `/webhook/{provider}` (the local world's registries notify
/// `/webhook/distribution`).
pub const PATH_PREFIX: &str = "/webhook";

/// A verified push to a registry repository.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegistryEvent {
    /// `host[:port]` of the registry as the event names it (`docker.io`, `ghcr.io`,
    /// `127.0.0.1:15000`); `None` when the payload does not say.
    pub registry_host: Option<String>,
    /// The repository path in that registry (`library/nginx`, `team/app`).
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// Verifies and parses one delivery. `Ok(vec![])` is a delivery to ignore.
pub fn receive(
    secrets: &Secrets,
    delivery: &Delivery<'_>,
) -> Result<Vec<RegistryEvent>, WebhookError> {
    let provider = delivery.provider;
    let secret = PROVIDERS
        .contains(&provider)
        .then(|| secrets.get(provider))
        .flatten()
        .ok_or_else(|| WebhookError::UnknownProvider(provider.to_string()))?;
    let mut events = match provider {
        "distribution" => parse_distribution(secret, delivery)?,
        "dockerhub" => parse_dockerhub(secret, delivery)?,
        "harbor" => parse_harbor(secret, delivery)?,
        "quay" => parse_quay(secret, delivery)?,
        "github" => parse_github_package(secret, delivery)?,
        _ => parse_generic(secret, delivery)?,
    };
    // One envelope may name the same push twice (a registry's retry); keep the first.
    let mut seen = std::collections::HashSet::new();
    events.retain(|e| seen.insert(e.clone()));
    Ok(events)
}

/// The router for `POST /webhook/{provider}`: verified events go into `tx`. Merge it into the
/// daemon's HTTP server.
pub fn router(secrets: Secrets, tx: mpsc::Sender<RegistryEvent>) -> Router {
    webhook::router(
        PATH_PREFIX,
        move |d: &Delivery<'_>| receive(&secrets, d),
        tx,
    )
}

#[cfg(test)]
mod tests;
