//! What both webhook receivers share: constant-time signature and token checks, the error enum
//! and its HTTP statuses, a body size cap, and an axum router that turns a verified delivery into
//! triggers sent down a tokio channel.
//!
//! Each receiver is a pure function `&Delivery -> Result<Vec<T>, WebhookError>`: it verifies
//! first, then parses. The router maps its result to a status:
//!
//! | result | status | triggers sent |
//! | --- | --- | --- |
//! | `Ok(non-empty)` | 202 Accepted | all of them |
//! | `Ok(empty)` (ping, pull, untagged manifest, an event we do not act on) | 204 No Content | none |
//! | `MissingSignature`, `BadSignature` | 401 Unauthorized | none |
//! | `Malformed`, `UnknownEvent` (no event type at all) | 400 Bad Request | none |
//! | `UnknownProvider` (not known or no secret configured) | 404 Not Found | none |
//! | body over [`MAX_BODY_BYTES`] | 413 Payload Too Large | none |
//! | the consumer is gone | 503 Service Unavailable | none |
//!
//! Secrets never appear in logs, errors or `Debug` output.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, RawQuery, State};
use axum::routing::post;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

// Re-exported so the receivers (and their tests) need no axum dependency of their own.
pub use axum::Router;
pub use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

/// The largest body a receiver reads (1 MiB); larger ones get 413 and are not read further.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// A shared secret (HMAC key or token). `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<[u8]>);

impl Secret {
    pub fn new(bytes: impl AsRef<[u8]>) -> Secret {
        Secret(Arc::from(bytes.as_ref()))
    }

    /// Reads a secret file; trailing whitespace (the newline editors and `echo` add) is dropped.
    /// The error names the file, never its content.
    pub fn from_file(path: &Path) -> std::io::Result<Secret> {
        let bytes = std::fs::read(path)?;
        let end = bytes
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |i| i + 1);
        if end == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the secret file {} is empty", path.display()),
            ));
        }
        Ok(Secret::new(&bytes[..end]))
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One secret per provider, from repeatable `--webhook-secret-file PROVIDER=PATH` flags (see each
/// daemon's webhook module for its providers). A provider without a secret is not served (404).
#[derive(Debug, Clone, Default)]
pub struct Secrets(std::collections::BTreeMap<String, Secret>);

impl Secrets {
    pub fn new() -> Secrets {
        Secrets::default()
    }

    pub fn with(mut self, provider: &str, secret: Secret) -> Secrets {
        self.0.insert(provider.to_string(), secret);
        self
    }

    pub fn get(&self, provider: &str) -> Option<&Secret> {
        self.0.get(provider)
    }

    pub fn providers(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Reads `PROVIDER=PATH` flag values; a provider not in `known`, a repeated provider or an
    /// unreadable file is an error that names the flag value, never a secret.
    pub fn from_flags(values: &[String], known: &[&str]) -> Result<Secrets, String> {
        let mut secrets = Secrets::new();
        for value in values {
            let (provider, path) = value.split_once('=').ok_or_else(|| {
                format!("--webhook-secret-file {value:?}: expected PROVIDER=PATH")
            })?;
            if !known.contains(&provider) {
                return Err(format!(
                    "--webhook-secret-file {value:?}: unknown provider {provider:?} (one of {})",
                    known.join(", ")
                ));
            }
            if secrets.get(provider).is_some() {
                return Err(format!("--webhook-secret-file: {provider} is given twice"));
            }
            let secret = Secret::from_file(Path::new(path))
                .map_err(|e| format!("--webhook-secret-file {value:?}: {e}"))?;
            secrets = secrets.with(provider, secret);
        }
        Ok(secrets)
    }
}

/// Why a delivery triggers nothing (besides being ignored, which is `Ok(vec![])`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The header (or query parameter) carrying the signature or token is absent.
    #[error("no signature or token: {0} is missing")]
    MissingSignature(&'static str),
    /// A signature or token is present and does not match the configured secret.
    #[error("the signature or token does not match")]
    BadSignature,
    /// The delivery does not say what kind of event it is.
    #[error("unknown event: {0}")]
    UnknownEvent(String),
    /// The body is not the payload this provider sends.
    #[error("malformed payload: {0}")]
    Malformed(String),
    /// No such provider, or no secret configured for it.
    #[error("no webhook receiver {0:?} is configured")]
    UnknownProvider(String),
}

impl WebhookError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebhookError::MissingSignature(_) | WebhookError::BadSignature => {
                StatusCode::UNAUTHORIZED
            }
            WebhookError::UnknownEvent(_) | WebhookError::Malformed(_) => StatusCode::BAD_REQUEST,
            WebhookError::UnknownProvider(_) => StatusCode::NOT_FOUND,
        }
    }

    /// A short, stable label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            WebhookError::MissingSignature(_) => "missing_signature",
            WebhookError::BadSignature => "bad_signature",
            WebhookError::UnknownEvent(_) => "unknown_event",
            WebhookError::Malformed(_) => "malformed",
            WebhookError::UnknownProvider(_) => "unknown_provider",
        }
    }

    /// `Malformed` from any displayable parse error (serde_json's, say).
    pub fn malformed(e: impl fmt::Display) -> WebhookError {
        WebhookError::Malformed(e.to_string())
    }
}

/// The status for a receiver's result: 202 with triggers, 204 without, the error's otherwise.
pub fn status_of<T>(result: &Result<Vec<T>, WebhookError>) -> StatusCode {
    match result {
        Ok(triggers) if triggers.is_empty() => StatusCode::NO_CONTENT,
        Ok(_) => StatusCode::ACCEPTED,
        Err(e) => e.status(),
    }
}

/// One received POST, as a receiver sees it.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The `{provider}` path segment (`github`, `distribution`, …).
    pub provider: &'a str,
    pub headers: &'a HeaderMap,
    /// The raw query string, without `?`.
    pub query: Option<&'a str>,
    pub body: &'a [u8],
}

impl<'a> Delivery<'a> {
    /// A header's value, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A header that carries the signature or token: absent is `MissingSignature`.
    pub fn signature_header(&self, name: &'static str) -> Result<&'a str, WebhookError> {
        self.header(name)
            .filter(|v| !v.trim().is_empty())
            .ok_or(WebhookError::MissingSignature(name))
    }

    /// A query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k) == name).then(|| percent_decode(v))
        })
    }

    /// Checks `X-Signature-256`-style HMAC-SHA256 over the body in header `name`.
    pub fn verify_hmac_sha256(
        &self,
        secret: &Secret,
        name: &'static str,
    ) -> Result<(), WebhookError> {
        verify_hmac_sha256(secret.expose(), self.body, self.signature_header(name)?)
    }

    /// Checks a shared-secret token carried in header `name` (optionally `Bearer `-prefixed).
    pub fn verify_token_header(
        &self,
        secret: &Secret,
        name: &'static str,
    ) -> Result<(), WebhookError> {
        let value = self.signature_header(name)?;
        verify_token(secret.expose(), strip_bearer(value))
    }

    /// Checks a shared-secret token carried in the query parameter `name`, for providers that
    /// cannot sign (Docker Hub, Quay).
    pub fn verify_token_query(
        &self,
        secret: &Secret,
        name: &'static str,
    ) -> Result<(), WebhookError> {
        let value = self
            .query_param(name)
            .filter(|v| !v.is_empty())
            .ok_or(WebhookError::MissingSignature(name))?;
        verify_token(secret.expose(), &value)
    }
}

fn strip_bearer(value: &str) -> &str {
    let value = value.trim();
    match value.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("bearer ") => value[7..].trim_start(),
        _ => value,
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks(2)
        .map(|p| Some(hex_val(p[0])? << 4 | hex_val(p[1])?))
        .collect()
}

fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Verifies an HMAC-SHA256 of `body` under `secret`, given as `sha256=<hex>` or bare hex, in
/// constant time (`Mac::verify_slice`). Anything unparsable is `BadSignature`.
pub fn verify_hmac_sha256(
    secret: &[u8],
    body: &[u8],
    header_value: &str,
) -> Result<(), WebhookError> {
    let hex = strip_algorithm(header_value, "sha256=");
    let expected = decode_hex(hex).ok_or(WebhookError::BadSignature)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| WebhookError::BadSignature)?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| WebhookError::BadSignature)
}

/// Verifies an HMAC-SHA1 (`sha1=<hex>` or bare hex): GitHub's legacy `X-Hub-Signature`.
pub fn verify_hmac_sha1(
    secret: &[u8],
    body: &[u8],
    header_value: &str,
) -> Result<(), WebhookError> {
    let hex = strip_algorithm(header_value, "sha1=");
    let expected = decode_hex(hex).ok_or(WebhookError::BadSignature)?;
    let mut mac =
        Hmac::<sha1::Sha1>::new_from_slice(secret).map_err(|_| WebhookError::BadSignature)?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| WebhookError::BadSignature)
}

fn strip_algorithm<'a>(value: &'a str, prefix: &str) -> &'a str {
    let value = value.trim();
    match value.get(..prefix.len()) {
        Some(p) if p.eq_ignore_ascii_case(prefix) => &value[prefix.len()..],
        _ => value,
    }
}

/// `sha256=<hex>` of `body` under `secret`: what a sender puts in `X-Signature-256` (for
/// tests, and for users scripting the generic receiver).
pub fn sign_hmac_sha256(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", encode_hex(&mac.finalize().into_bytes()))
}

/// Compares a presented token with the secret in constant time: both are hashed first, so
/// neither the content nor the length of the secret leaks through timing.
pub fn verify_token(secret: &[u8], presented: &str) -> Result<(), WebhookError> {
    let a = Sha256::digest(secret);
    let b = Sha256::digest(presented.as_bytes());
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    if std::hint::black_box(diff) == 0 && !secret.is_empty() {
        Ok(())
    } else {
        Err(WebhookError::BadSignature)
    }
}

/// Checks `Authorization: Bearer <token>` (distribution notifications).
pub fn verify_bearer(secret: &[u8], authorization: &str) -> Result<(), WebhookError> {
    let value = authorization.trim();
    match value.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("bearer ") => verify_token(secret, value[7..].trim()),
        _ => Err(WebhookError::BadSignature),
    }
}

/// A receiver: verify, then parse, one delivery into triggers.
pub type Receiver<T> = dyn Fn(&Delivery<'_>) -> Result<Vec<T>, WebhookError> + Send + Sync;

struct Shared<T> {
    receive: Box<Receiver<T>>,
    tx: mpsc::Sender<T>,
}

/// A router serving `POST {prefix}/{provider}` (e.g. prefix `/webhook`): each delivery goes
/// through `receive`; the triggers of an accepted one are sent into `tx` before the 202 goes
/// out. Bodies over [`MAX_BODY_BYTES`] get 413.
pub fn router<T, F>(prefix: &str, receive: F, tx: mpsc::Sender<T>) -> Router
where
    T: Send + 'static,
    F: Fn(&Delivery<'_>) -> Result<Vec<T>, WebhookError> + Send + Sync + 'static,
{
    let shared = Arc::new(Shared {
        receive: Box::new(receive),
        tx,
    });
    let path = format!("{}/{{provider}}", prefix.trim_end_matches('/'));
    Router::new()
        .route(&path, post(handle::<T>))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

async fn handle<T: Send + 'static>(
    State(shared): State<Arc<Shared<T>>>,
    UrlPath(provider): UrlPath<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let delivery = Delivery {
        provider: &provider,
        headers: &headers,
        query: query.as_deref(),
        body: &body,
    };
    let result = (shared.receive)(&delivery);
    let status = status_of(&result);
    match result {
        Ok(triggers) => {
            let n = triggers.len();
            for t in triggers {
                if shared.tx.send(t).await.is_err() {
                    tracing::error!(provider, "webhook: nobody consumes triggers any more");
                    return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".into());
                }
            }
            tracing::info!(provider, triggers = n, "webhook delivery accepted");
            let body = if n == 0 {
                String::new()
            } else {
                format!("accepted {n}\n")
            };
            (status, body)
        }
        Err(e) => {
            // The error's text never holds a secret: only header names and parse errors.
            tracing::warn!(provider, reason = e.label(), error = %e, "webhook delivery refused");
            (status, format!("{e}\n"))
        }
    }
}

#[cfg(test)]
#[path = "webhook_tests.rs"]
mod tests;
