//! Registry webhooks (distribution notifications, Docker Hub, Harbor, Quay, GitHub packages,
//! generic HMAC): verified payload -> which repositories to scan now; and the forges'
//! pull-request webhooks (Gitea, GitHub, GitLab): verified payload -> which `ImageUpdate`s read
//! their pull request now ([`pull_request`]).
//!
//! # Endpoint
//!
//! `POST /webhook/{provider}` on the daemon's HTTP server; `provider` is one of `distribution`,
//! `dockerhub`, `harbor`, `quay`, `github`, `gitea`, `gitlab`, `generic`. Each has one secret,
//! given as `--webhook-secret-file PROVIDER=PATH` (repeatable); a provider without a secret
//! answers 404. Every delivery is verified before its body is parsed: a missing or bad secret is
//! 401 and triggers nothing.
//!
//! | provider | verification | what triggers |
//! | --- | --- | --- |
//! | `distribution` | `Authorization: Bearer <secret>` (the registry's `notifications.endpoints[].headers`); the content type, when given, must be the envelope's (`events.v1+json`, distribution 3's `events.v2+json`) or `application/json` | `action: push` events whose target has a `tag` |
//! | `dockerhub` | `?token=<secret>` in the webhook URL: Docker Hub cannot sign | every payload (`push_data.tag`) |
//! | `harbor` | `Authorization: <secret>` (Harbor's "Auth Header"; `Bearer <secret>` too) | `type: PUSH_ARTIFACT`, one event per tagged resource |
//! | `quay` | `?token=<secret>` in the webhook URL: Quay cannot sign | a repository push, one event per `updated_tags` entry |
//! | `github` | `X-Hub-Signature-256: sha256=<hex>` HMAC-SHA256 of the body | `X-GitHub-Event: package`, a published container version with a tag (host `ghcr.io`); `X-GitHub-Event: pull_request` closed (merged or not) or reopened |
//! | `gitea` | `X-Gitea-Signature: <hex>` HMAC-SHA256 of the body | `X-Gitea-Event: pull_request` closed (merged or not) or reopened |
//! | `gitlab` | `X-Gitlab-Token` equals the secret | `X-Gitlab-Event: Merge Request Hook`, action `close`, `merge` or `reopen` |
//! | `generic` | `X-Signature-256: sha256=<hex>` HMAC-SHA256 of the body | every payload |
//!
//! The generic payload is JSON: `{"image": "registry.example/team/app", "tag": "1.4.2",
//! "digest": "sha256:…"}`. `image` is a repository without tag, named as in `docker pull` (so
//! `nginx` is `docker.io/library/nginx`); `tag` and `digest` are optional (without them the event
//! just asks for a scan).
//!
//! A registry event ([`Delivered::Image`]) makes every `ImageRepository` watching that
//! repository scan at once; a pull-request event ([`Delivered::PullRequest`]) makes every
//! `ImageUpdate` whose `git.url` is that repository, `git.pushBranch` its head and `git.branch`
//! its base run a round at once (it reads the pull request: a close without merge rejects what
//! it proposed).
//!
//! Pulls, deletions, pings, other events of a forge (pushes, issues, pull requests opened,
//! edited or synchronized…) and manifest pushes without a tag (the children of a multi-arch
//! index: the index push carries the tag) are ignored with 204. The `?token=` of Docker Hub and
//! Quay is logged by nobody: the router logs the provider and the outcome only (keep it out of
//! access logs of any proxy in front, too).

mod image;
mod parse;
pub mod pull_request;

pub use image::{ImageKey, matches, normalize_image};
pub use parse::{
    ENVELOPE_MEDIA_TYPE, parse_distribution, parse_dockerhub, parse_generic, parse_github_package,
    parse_harbor, parse_quay,
};
pub use pull_request::{
    PullRequestEvent, parse_gitea_pull_request, parse_github_pull_request,
    parse_gitlab_merge_request,
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
    "gitea",
    "gitlab",
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

/// What a verified delivery asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Delivered {
    /// A push to a registry repository: the `ImageRepository`s watching it scan now.
    Image(RegistryEvent),
    /// A pull request closed, merged or reopened: the `ImageUpdate`s proposing from its head
    /// branch read it now.
    PullRequest(PullRequestEvent),
}

impl Delivered {
    /// The registry event, if this is one.
    pub fn image(&self) -> Option<&RegistryEvent> {
        match self {
            Delivered::Image(e) => Some(e),
            Delivered::PullRequest(_) => None,
        }
    }

    /// The pull-request event, if this is one.
    pub fn pull_request(&self) -> Option<&PullRequestEvent> {
        match self {
            Delivered::PullRequest(e) => Some(e),
            Delivered::Image(_) => None,
        }
    }
}

impl From<RegistryEvent> for Delivered {
    fn from(event: RegistryEvent) -> Self {
        Delivered::Image(event)
    }
}

impl From<PullRequestEvent> for Delivered {
    fn from(event: PullRequestEvent) -> Self {
        Delivered::PullRequest(event)
    }
}

/// Verifies and parses one delivery. `Ok(vec![])` is a delivery to ignore.
pub fn receive(secrets: &Secrets, delivery: &Delivery<'_>) -> Result<Vec<Delivered>, WebhookError> {
    let provider = delivery.provider;
    let secret = PROVIDERS
        .contains(&provider)
        .then(|| secrets.get(provider))
        .flatten()
        .ok_or_else(|| WebhookError::UnknownProvider(provider.to_string()))?;
    let images = |events: Vec<RegistryEvent>| events.into_iter().map(Delivered::Image).collect();
    let pull_request =
        |event: Option<PullRequestEvent>| event.into_iter().map(Delivered::PullRequest).collect();
    let mut delivered: Vec<Delivered> = match provider {
        "distribution" => images(parse_distribution(secret, delivery)?),
        "dockerhub" => images(parse_dockerhub(secret, delivery)?),
        "harbor" => images(parse_harbor(secret, delivery)?),
        "quay" => images(parse_quay(secret, delivery)?),
        // One secret, two events: each parser verifies before it reads anything.
        "github" => match delivery.header("x-github-event").map(str::trim) {
            Some("pull_request") => pull_request(parse_github_pull_request(secret, delivery)?),
            _ => images(parse_github_package(secret, delivery)?),
        },
        "gitea" => pull_request(parse_gitea_pull_request(secret, delivery)?),
        "gitlab" => pull_request(parse_gitlab_merge_request(secret, delivery)?),
        _ => images(parse_generic(secret, delivery)?),
    };
    // One envelope may name the same push twice (a registry's retry); keep the first.
    let mut seen = std::collections::HashSet::new();
    delivered.retain(|e| seen.insert(e.clone()));
    Ok(delivered)
}

/// The router for `POST /webhook/{provider}`: verified events go into `tx`. Merge it into the
/// daemon's HTTP server.
pub fn router(secrets: Secrets, tx: mpsc::Sender<Delivered>) -> Router {
    webhook::router(
        PATH_PREFIX,
        move |d: &Delivery<'_>| receive(&secrets, d),
        tx,
    )
}

#[cfg(test)]
mod tests;
