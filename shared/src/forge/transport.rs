//! The HTTP side of [`Forge`]: sending a [`Call`], reading the answer, turning failures into
//! [`ForgeError`]s; the client itself (timeouts, no redirects, an extra CA) and the token's
//! header.

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue, LOCATION};
use tracing::debug;

use super::dialect::{Call, Dialect};
use super::{Forge, ForgeError, Token, error};

const USER_AGENT: &str = concat!("sluice/", env!("CARGO_PKG_VERSION"));

/// An answer of any status.
pub(super) struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub location: Option<String>,
    /// `X-Total-Count` (Gitea) or `X-Total` (GitLab) of a listing.
    pub total: Option<usize>,
}

impl Forge {
    /// Sends `call`; any answer but a success is an error about `what`.
    pub(super) async fn send(&self, call: Call, what: &str) -> Result<Reply, ForgeError> {
        let reply = self.exchange(&call).await?;
        self.check(reply, what)
    }

    /// Sends `call` and reads the answer, whatever its status.
    pub(super) async fn exchange(&self, call: &Call) -> Result<Reply, ForgeError> {
        let url = format!("{}{}", self.api, call.path);
        let mut request = self.http.request(call.method.clone(), &url);
        if !call.query.is_empty() {
            request = request.query(&call.query);
        }
        for (name, value) in self.dialect().headers() {
            request = request.header(*name, *value);
        }
        if let Some((name, value)) = &self.auth {
            request = request.header(name.clone(), value.clone());
        }
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        let unreachable = |e: reqwest::Error| self.scrub(error::unreachable(&e, &self.api));
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            let value = response.headers().get(name)?;
            value.to_str().ok().map(str::to_string)
        };
        let location = header(LOCATION.as_str());
        let total = header("x-total-count")
            .or_else(|| header("x-total"))
            .and_then(|v| v.trim().parse().ok());
        let body = response.bytes().await.map_err(unreachable)?.to_vec();
        debug!(forge = %self.api, method = %call.method, path = %call.path, status, "forge request");
        Ok(Reply {
            status,
            body,
            location,
            total,
        })
    }

    pub(super) fn check(&self, reply: Reply, what: &str) -> Result<Reply, ForgeError> {
        if (200..300).contains(&reply.status) {
            return Ok(reply);
        }
        let repo = self.repo.to_string();
        let context = error::Context {
            provider: self.provider,
            api: &self.api,
            repo: &repo,
            what,
            has_token: self.token.is_some(),
        };
        let location = reply.location.as_deref();
        let error = error::from_status(reply.status, &reply.body, location, &context);
        Err(self.scrub(error))
    }

    /// A parsed answer, or a protocol error about `what`.
    pub(super) fn parse<T>(&self, what: &str, parsed: Result<T, String>) -> Result<T, ForgeError> {
        parsed.map_err(|reason| {
            self.scrub(ForgeError::Protocol {
                message: format!(
                    "{} about {what}: {reason}; is {} the right provider for this API?",
                    self.api, self.provider
                ),
            })
        })
    }

    pub(super) fn scrub(&self, error: ForgeError) -> ForgeError {
        match &self.token {
            Some(token) => error.scrub(token.expose()),
            None => error,
        }
    }
}

/// The token's header, its value marked sensitive (never printed, not indexed by HTTP/2).
pub(super) fn auth_header(
    dialect: &dyn Dialect,
    token: &Token,
) -> Result<(HeaderName, HeaderValue), ForgeError> {
    let config = |reason: &str| ForgeError::Config {
        reason: reason.to_string(),
    };
    if token.expose().is_empty() {
        return Err(config("the forge token is empty"));
    }
    let (name, value) = dialect.auth_header(token.expose());
    let mut value = HeaderValue::from_str(&value)
        .map_err(|_| config("the forge token has characters an HTTP header cannot carry"))?;
    value.set_sensitive(true);
    Ok((HeaderName::from_static(name), value))
}

/// Whether a listing may go on after a page of `entries` (of `page_size` asked), `seen` in all.
/// A total from the forge decides; without one, a short page is the last.
pub(super) fn more_pages(
    entries: usize,
    page_size: usize,
    seen: usize,
    total: Option<usize>,
) -> bool {
    entries > 0 && total.map_or(entries >= page_size, |total| seen < total)
}

pub(super) fn http_client(
    timeout: Duration,
    ca_pem: Option<&[u8]>,
) -> Result<reqwest::Client, ForgeError> {
    ensure_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .ok()
            .filter(|certs| !certs.is_empty())
            .ok_or_else(|| ForgeError::Config {
                reason: "the forge's CA has no PEM certificate in it".into(),
            })?;
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().map_err(|e| ForgeError::Config {
        reason: format!("cannot set up the forge's HTTP client: {e}"),
    })
}

/// reqwest is built without a crypto provider (kube brings ring; two providers make rustls
/// refuse to choose): install ring as the process default unless one is installed already.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: a provider is installed either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
