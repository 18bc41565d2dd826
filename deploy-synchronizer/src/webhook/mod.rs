//! Git push webhooks (GitHub, GitLab, Gitea, generic HMAC): verified payload -> which sources to
//! sync now.
//!
//! # Endpoint
//!
//! `POST /webhook/{provider}` on the daemon's HTTP server, `provider` one of `github`, `gitlab`,
//! `gitea`, `generic`. Each provider has one secret, given as
//! `--webhook-secret-file PROVIDER=PATH` (repeatable); a provider without a secret answers 404.
//! Every delivery is verified before its body is parsed; a missing or bad signature is 401 and
//! triggers nothing.
//!
//! | provider | event header | verification |
//! | --- | --- | --- |
//! | `github` | `X-GitHub-Event: push` (`ping` is ignored) | `X-Hub-Signature-256: sha256=<hex>` HMAC-SHA256 of the body |
//! | `gitlab` | `X-Gitlab-Event: Push Hook` or `Tag Push Hook` | `X-Gitlab-Token` equals the secret |
//! | `gitea` | `X-Gitea-Event: push` | `X-Gitea-Signature: <hex>` HMAC-SHA256 of the body |
//! | `generic` | none | `X-Signature-256: sha256=<hex>` HMAC-SHA256 of the body |
//!
//! The generic payload is JSON:
//!
//! ```json
//! { "url": "https://git.example/org/config.git", "ref": "refs/heads/main", "revision": "9fceb02…" }
//! ```
//!
//! `url` is required (`urls`, a list, may be given instead or as well); `ref` is required, a full
//! ref (`refs/heads/…`, `refs/tags/…`) or a bare branch name; `revision` is optional.
//!
//! Other events of a known provider (GitHub `issues`, Gitea `create`, …) and branch deletions are
//! ignored with 204. A push triggers every GitSync whose source [`matches`] it: the sync fetches
//! the ref itself, so the event's revision is only a hint.

mod matcher;
mod parse;

pub use matcher::matches;
pub use parse::{parse_generic, parse_gitea, parse_github, parse_gitlab};

use sluice_shared::webhook::{self, Delivery, Router, Secrets, WebhookError};
use tokio::sync::mpsc;

/// The providers this receiver serves, as they appear in the URL path and the secret flag.
pub const PROVIDERS: &[&str] = &["github", "gitlab", "gitea", "generic"];

/// The path prefix; the full route is `/webhook/{provider}`.
pub const PATH_PREFIX: &str = "/webhook";

/// A verified push: the repository (as every URL the payload names it by), the ref pushed and
/// the commit it now points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushEvent {
    pub repo_urls: Vec<String>,
    /// A full ref: `refs/heads/main`, `refs/tags/v1`.
    pub reference: String,
    pub revision: Option<String>,
}

/// Verifies and parses one delivery. `Ok(vec![])` is a delivery to ignore (ping, other events,
/// branch deletions).
pub fn receive(secrets: &Secrets, delivery: &Delivery<'_>) -> Result<Vec<PushEvent>, WebhookError> {
    let provider = delivery.provider;
    let secret = PROVIDERS
        .contains(&provider)
        .then(|| secrets.get(provider))
        .flatten()
        .ok_or_else(|| WebhookError::UnknownProvider(provider.to_string()))?;
    let event = match provider {
        "github" => parse_github(secret, delivery)?,
        "gitlab" => parse_gitlab(secret, delivery)?,
        "gitea" => parse_gitea(secret, delivery)?,
        _ => parse_generic(secret, delivery)?,
    };
    Ok(event.into_iter().collect())
}

/// The router for `POST /webhook/{provider}`: verified pushes go into `tx`. Merge it into the
/// daemon's HTTP server.
pub fn router(secrets: Secrets, tx: mpsc::Sender<PushEvent>) -> Router {
    webhook::router(
        PATH_PREFIX,
        move |d: &Delivery<'_>| receive(&secrets, d),
        tx,
    )
}

#[cfg(test)]
mod tests;
