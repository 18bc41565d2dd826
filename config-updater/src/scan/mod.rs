//! Registry scanning: complete, paged, rate-limited tag listing with a tag cache.
//!
//! Its API is the items re-exported here (the modules are the crate's own). Pure parts decide;
//! a thin shell talks to registries through oci-client:
//! - `config` (pure): where and how to reach a repository ([`RegistryAccess`], the
//!   `ImageRepository` spec), image names ([`ImageName`]);
//! - `auth` (pure, but for the local docker config it reads): credentials from a
//!   dockerconfigjson Secret ([`credentials_from_dockerconfigjson`]; Debug redacts them);
//! - `pager` (pure): the paging loop over a [`PageSource`], with the cache shortcut;
//! - `tags` (pure): tag grammar, exclusions, fingerprints and the [`TagCache`];
//! - `retry` (pure): error classification, backoff, `Retry-After`, the per-registry
//!   [`RequestBudget`];
//! - `client` (acts: HTTP): [`RegistryClient`], [`list_all_tags`], [`scan`], [`resolve_digest`];
//! - `metrics`: `sluice_registry_requests_total{registry, outcome}`.
//!
//! - `http_pages` (acts: HTTP): tag-list pages by hand (see below);
//!
//! What oci-client 0.18 cannot do, and what is done about it:
//! - `list_tags` hides the response headers: `Retry-After` on a 429, `Link` (is there a next
//!   page?), the `WWW-Authenticate` challenge of the list request itself. So tag lists are one GET
//!   by hand with reqwest (the same reqwest oci-client uses), answering `Basic` and `Bearer`
//!   challenges; a 429's `Retry-After` sets the floor of the next wait, `Link` says whether to page
//!   on, and entries that are not strings are counted as malformed instead of failing the list.
//! - No registry here sends an `ETag` on tag lists, so there is no `If-None-Match`: "unchanged" is
//!   the first page compared with the cached one, which settles it for single-page lists only.
//! - Manifests go through oci-client (`pull_manifest_raw`), whose errors carry no headers either:
//!   a 429 there is retried on the exponential schedule. It does not return the `Content-Type`;
//!   the document's own `mediaType` (then its shape) says whether it is an index.

pub(crate) mod auth;
mod client;
pub(crate) mod config;
mod http_pages;
mod metrics;
mod pager;
mod retry;
pub(crate) mod tags;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use auth::{
    Credentials, credentials_from_dockerconfigjson, credentials_from_local_docker_config,
};
pub use client::{
    ClientOptions, RegistryClient, ResolvedDigest, ScanOutcome, list_all_tags, resolve_digest, scan,
};
pub use config::{DEFAULT_EXCLUSIONS, ImageName, RegistryAccess};
pub use metrics::ScanMetrics;
pub use pager::{PAGE_SIZE, PageSource};
pub use retry::{RequestBudget, RetryPolicy};
pub use tags::{TagCache, TagList};

/// Everything a scan can fail with. Messages say what to fix; none carries a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("image {image:?} is not a repository name: {reason}")]
    InvalidImage { image: String, reason: String },
    #[error("interval {interval:?} is not a duration of at least 1s such as 30s, 5m or 1h30m")]
    InvalidInterval { interval: String },
    #[error("exclusion {pattern:?} is not a valid regex: {reason}")]
    InvalidExclusion { pattern: String, reason: String },
    #[error("Secret {secret:?} cannot be used for registry credentials: {reason}")]
    InvalidSecret { secret: String, reason: String },
    #[error(
        "the CA certificate is not usable: {reason}; give a PEM bundle (-----BEGIN CERTIFICATE-----)"
    )]
    InvalidCa { reason: String },
    #[error(
        "registry {registry} refused the credentials for {repository} (401/403); check the dockerconfigjson Secret"
    )]
    Unauthorized {
        registry: String,
        repository: String,
    },
    #[error(
        "repository {repository} not found on {registry} (404); check the image name and that it was pushed"
    )]
    NotFound {
        registry: String,
        repository: String,
    },
    #[error("registry {registry} is rate limiting (429) after {attempts} attempt(s){}", retry_after_text(.retry_after))]
    RateLimited {
        registry: String,
        retry_after: Option<Duration>,
        attempts: u32,
    },
    #[error("registry {registry} failed with HTTP {status} after {attempts} attempt(s): {message}")]
    Server {
        registry: String,
        status: u16,
        attempts: u32,
        message: String,
    },
    #[error("registry {registry} rejected the request with HTTP {status}: {message}")]
    Rejected {
        registry: String,
        status: u16,
        message: String,
    },
    #[error(
        "registry {registry} is unreachable after {attempts} attempt(s): {reason}; check the address and that it is up"
    )]
    Unreachable {
        registry: String,
        attempts: u32,
        reason: String,
    },
    #[error(
        "TLS with registry {registry} failed: {reason}; set the CA (certSecretRef) or `insecure: true` for plain HTTP"
    )]
    Tls { registry: String, reason: String },
    #[error("registry {registry} sent a malformed response: {reason}")]
    Malformed { registry: String, reason: String },
    #[error(
        "registry {registry} repeated tags after `last={last}` for {repository}: its paging makes no progress, so the \
         list cannot be complete"
    )]
    PagingStuck {
        registry: String,
        repository: String,
        last: String,
    },
    #[error("registry {registry} sent more than {pages} pages of tags for {repository}; giving up")]
    TooManyPages {
        registry: String,
        repository: String,
        pages: usize,
    },
    #[error("registry {registry}: {reason}")]
    Other { registry: String, reason: String },
}

fn retry_after_text(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!("; retry after {}s", d.as_secs()),
        None => String::new(),
    }
}

impl ScanError {
    /// A short, stable reason for conditions and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            ScanError::InvalidImage { .. } => "InvalidImage",
            ScanError::InvalidInterval { .. } => "InvalidInterval",
            ScanError::InvalidExclusion { .. } => "InvalidExclusion",
            ScanError::InvalidSecret { .. } => "InvalidSecret",
            ScanError::InvalidCa { .. } => "InvalidCA",
            ScanError::Unauthorized { .. } => "Unauthorized",
            ScanError::NotFound { .. } => "NotFound",
            ScanError::RateLimited { .. } => "RateLimited",
            ScanError::Server { .. } => "ServerError",
            ScanError::Rejected { .. } => "Rejected",
            ScanError::Unreachable { .. } => "Unreachable",
            ScanError::Tls { .. } => "TLSError",
            ScanError::Malformed { .. } => "Malformed",
            ScanError::PagingStuck { .. } => "PagingStuck",
            ScanError::TooManyPages { .. } => "TooManyPages",
            ScanError::Other { .. } => "Other",
        }
    }

    /// Whether trying again soon may help (429, 5xx, connection failures).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ScanError::RateLimited { .. }
                | ScanError::Server { .. }
                | ScanError::Unreachable { .. }
        )
    }

    /// The registry's own word on when to come back, when it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ScanError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub(crate) fn set_attempts(&mut self, n: u32) {
        match self {
            ScanError::RateLimited { attempts, .. }
            | ScanError::Server { attempts, .. }
            | ScanError::Unreachable { attempts, .. } => *attempts = n,
            _ => {}
        }
    }
}
