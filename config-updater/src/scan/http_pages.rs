//! Tag-list pages fetched by hand, because oci-client 0.18's `list_tags` hides the response
//! headers a scanner needs: `Retry-After` on a 429, `Link` (whether another page follows), and the
//! `WWW-Authenticate` of the list request itself. This is the minimum by hand: one GET of
//! `/v2/<repo>/tags/list?n=&last=`, the challenge answered, the status classified. Manifests still
//! go through oci-client (see `client.rs`).
//!
//! Auth, as docker does it: the first request goes out with the cached authorization, if any. A
//! `401` carries the challenge: `Basic` is answered with the credentials; `Bearer realm=…,
//! service=…[,scope=…]` with a token fetched from the realm (GET, with the credentials as basic
//! auth when there are any, scope `repository:<repo>:pull`), cached until `expires_in` (default
//! 60 s) runs out. So an open registry costs one request per page, and a token registry one request
//! per page once a token is cached; the challenge round trip is counted when it happens.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, LINK, RETRY_AFTER, WWW_AUTHENTICATE};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::ScanError;
use super::auth::Credentials;
use super::metrics::outcome;
use super::pager::Page;
use super::retry::{error_chain, parse_retry_after};

/// A `WWW-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses the first `Basic` or `Bearer` challenge of a `WWW-Authenticate` value.
pub fn parse_challenge(value: &str) -> Option<Challenge> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let get = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.clone())
    };
    Some(Challenge::Bearer {
        realm: get("realm")?,
        service: get("service"),
        scope: get("scope"),
    })
}

/// `key="value", key=value` pairs; quoted values may hold commas and `\"`.
fn parse_params(text: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.trim().is_empty() || chars.next() != Some('=') {
            return params;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => value.extend(chars.next()),
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_owned();
        }
        params.push((key.trim().to_owned(), value));
    }
}

/// Whether a `Link` header announces a next page (`<…>; rel="next"`).
pub fn has_next_link(headers: &HeaderMap) -> bool {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .flat_map(|link| link.split(';').skip(1))
        .filter_map(|param| param.split_once('='))
        .filter(|(key, _)| key.trim().eq_ignore_ascii_case("rel"))
        .any(|(_, value)| {
            value
                .trim()
                .trim_matches('"')
                .split_whitespace()
                .any(|rel| rel.eq_ignore_ascii_case("next"))
        })
}

/// A tag-list body: `tags` may be `null`; entries that are not strings are counted, not fatal.
pub fn parse_tag_list(body: &[u8]) -> Result<(Vec<String>, usize), String> {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        tags: Option<Vec<serde_json::Value>>,
    }
    let parsed: Body =
        serde_json::from_slice(body).map_err(|e| format!("the tag list is not JSON: {e}"))?;
    let mut tags = Vec::new();
    let mut malformed = 0;
    for entry in parsed.tags.unwrap_or_default() {
        match entry {
            serde_json::Value::String(tag) => tags.push(tag),
            _ => malformed += 1,
        }
    }
    Ok((tags, malformed))
}

#[derive(Clone)]
struct CachedAuth {
    header: String,
    until: Option<Instant>,
}

/// Fetches tag-list pages of one registry; keeps the authorization it earned.
pub struct HttpLister {
    http: reqwest::Client,
    base: String,
    registry: String,
    credentials: Credentials,
    auth: Mutex<Option<CachedAuth>>,
}

impl HttpLister {
    pub fn new(
        api_host: &str,
        registry: &str,
        insecure: bool,
        ca_pem: Option<&[u8]>,
        credentials: Credentials,
        connect_timeout: Duration,
        read_timeout: Duration,
    ) -> Result<Self, ScanError> {
        let key = (ca_pem.map(<[u8]>::to_vec), connect_timeout, read_timeout);
        let http = shared_http(key, || build_http(ca_pem, connect_timeout, read_timeout))?;
        let scheme = if insecure { "http" } else { "https" };
        Ok(HttpLister {
            http,
            base: format!("{scheme}://{api_host}"),
            registry: registry.to_owned(),
            credentials,
            auth: Mutex::new(None),
        })
    }

    /// One page: `n` tags after `last`. Every HTTP request sent is reported to `sent`.
    pub async fn page(
        &self,
        repository: &str,
        n: usize,
        last: Option<&str>,
        sent: &mut (dyn FnMut(&'static str) + Send),
    ) -> Result<Page, ScanError> {
        let url = format!("{}/v2/{repository}/tags/list", self.base);
        let mut query: Vec<(&str, String)> = vec![("n", n.to_string())];
        query.extend(last.map(|l| ("last", l.to_owned())));
        let mut authorization = self.cached_auth().await;
        let mut challenged = false;
        loop {
            let mut request = self.http.get(&url).query(&query);
            if let Some(value) = &authorization {
                request = request.header(AUTHORIZATION, value);
            }
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => {
                    let error = self.transport_error(&e);
                    sent(outcome(Err(&error)));
                    return Err(error);
                }
            };
            let status = response.status();
            let headers = response.headers().clone();
            if status == StatusCode::UNAUTHORIZED && !challenged {
                let unauthorized = self.unauthorized(repository);
                sent("auth_challenge");
                challenged = true;
                *self.auth.lock().await = None;
                let challenge = headers
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_challenge);
                authorization = match challenge {
                    Some(Challenge::Basic) => self.basic_header(),
                    Some(Challenge::Bearer {
                        realm,
                        service,
                        scope,
                    }) => {
                        let scope =
                            scope.unwrap_or_else(|| format!("repository:{repository}:pull"));
                        Some(
                            self.fetch_token(&realm, service.as_deref(), &scope, repository, sent)
                                .await?,
                        )
                    }
                    None => None,
                };
                if authorization.is_none() {
                    return Err(unauthorized);
                }
                continue;
            }
            let body = response.bytes().await;
            let result = self.read_page(status, &headers, body, repository);
            sent(outcome(result.as_ref().map(|_| ())));
            if result.is_ok() && challenged {
                let header = authorization.clone().expect("answered challenge");
                self.remember(header, None).await;
            }
            return result;
        }
    }

    fn read_page(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: reqwest::Result<bytes::Bytes>,
        repository: &str,
    ) -> Result<Page, ScanError> {
        let body = body.map_err(|e| self.transport_error(&e))?;
        let message = || error_summary(&body);
        match status.as_u16() {
            200 => {
                let (tags, malformed) =
                    parse_tag_list(&body).map_err(|reason| ScanError::Malformed {
                        registry: self.registry.clone(),
                        reason,
                    })?;
                Ok(Page {
                    tags,
                    malformed,
                    more: Some(has_next_link(headers)),
                })
            }
            401 | 403 => Err(self.unauthorized(repository)),
            404 => Err(ScanError::NotFound {
                registry: self.registry.clone(),
                repository: repository.to_owned(),
            }),
            429 => {
                let retry_after = headers
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
                Err(ScanError::RateLimited {
                    registry: self.registry.clone(),
                    retry_after,
                    attempts: 1,
                })
            }
            code @ 500..=599 => Err(ScanError::Server {
                registry: self.registry.clone(),
                status: code,
                attempts: 1,
                message: message(),
            }),
            code => Err(ScanError::Rejected {
                registry: self.registry.clone(),
                status: code,
                message: message(),
            }),
        }
    }

    fn unauthorized(&self, repository: &str) -> ScanError {
        ScanError::Unauthorized {
            registry: self.registry.clone(),
            repository: repository.to_owned(),
        }
    }

    fn transport_error(&self, error: &reqwest::Error) -> ScanError {
        super::retry::transport_fault(&self.registry, error)
    }

    fn user_password(&self) -> Option<(String, String)> {
        self.credentials.user_password()
    }

    fn basic_header(&self) -> Option<String> {
        self.user_password()
            .map(|(u, p)| format!("Basic {}", STANDARD.encode(format!("{u}:{p}"))))
    }

    async fn cached_auth(&self) -> Option<String> {
        let mut cached = self.auth.lock().await;
        match &*cached {
            Some(auth) if auth.until.is_none_or(|until| Instant::now() < until) => {
                Some(auth.header.clone())
            }
            _ => {
                *cached = None;
                None
            }
        }
    }

    async fn remember(&self, header: String, until: Option<Instant>) {
        let mut cached = self.auth.lock().await;
        // A token keeps its own expiry; only a fresh answer without one (basic) is stored here.
        if cached.as_ref().is_none_or(|c| c.header != header) {
            *cached = Some(CachedAuth { header, until });
        }
    }

    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        repository: &str,
        sent: &mut (dyn FnMut(&'static str) + Send),
    ) -> Result<String, ScanError> {
        #[derive(serde::Deserialize)]
        struct TokenBody {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let mut query = vec![("scope", scope)];
        query.extend(service.map(|s| ("service", s)));
        let mut request = self.http.get(realm).query(&query);
        if let Some((user, password)) = self.user_password() {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.map_err(|e| {
            let error = self.transport_error(&e);
            sent(outcome(Err(&error)));
            error
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let result = if status.is_success() {
            serde_json::from_slice::<TokenBody>(&body)
                .ok()
                .and_then(|t| {
                    Some((
                        t.token.or(t.access_token).filter(|t| !t.is_empty())?,
                        t.expires_in,
                    ))
                })
                .ok_or_else(|| ScanError::Malformed {
                    registry: self.registry.clone(),
                    reason: format!("the token service {realm} sent no token"),
                })
        } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Err(self
                .read_page(status, &headers, Ok(body), repository)
                .err()
                .unwrap_or_else(|| self.unauthorized(repository)))
        } else {
            Err(self.unauthorized(repository))
        };
        sent(outcome(result.as_ref().map(|_| ())));
        let (token, expires_in) = result?;
        let header = format!("Bearer {token}");
        // Ten seconds' margin, so a token does not expire on its way.
        let lifetime = Duration::from_secs(expires_in.unwrap_or(60).max(20) - 10);
        *self.auth.lock().await = Some(CachedAuth {
            header: header.clone(),
            until: Some(Instant::now() + lifetime),
        });
        Ok(header)
    }
}

/// What an error response's body says, on one short line: the registry's JSON errors
/// (`{"errors": [{"code", "message"}]}`) as `CODE: message`, the `<title>` of an HTML page (a
/// proxy's `502 Bad Gateway`), else the text with its whitespace collapsed; at most 200
/// characters.
pub(crate) fn error_summary(body: &[u8]) -> String {
    const MAX: usize = 200;
    let short = |text: &str| -> String {
        let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
        collapsed.chars().take(MAX).collect()
    };
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        let errors: Vec<String> = value["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| match (e["code"].as_str(), e["message"].as_str()) {
                (Some(code), Some(message)) => Some(format!("{code}: {message}")),
                (Some(text), None) | (None, Some(text)) => Some(text.to_owned()),
                (None, None) => None,
            })
            .collect();
        if !errors.is_empty() {
            return short(&errors.join("; "));
        }
    }
    let text = String::from_utf8_lossy(body);
    let lower = text.to_ascii_lowercase();
    if let (Some(start), Some(end)) = (lower.find("<title>"), lower.find("</title>"))
        && start + "<title>".len() <= end
    {
        return short(&text[start + "<title>".len()..end]);
    }
    short(&text)
}

/// The reqwest clients of the process by `(CA bundle, connect timeout, read timeout)`. Every
/// build loads the platform's root certificates (about 100 KB), and a daemon scans hundreds of
/// repositories at once; a client holds no credentials (each lister answers its own
/// challenges, and there is no cookie store), so listers share one and its connection pool.
fn shared_http(
    key: (Option<Vec<u8>>, Duration, Duration),
    build: impl FnOnce() -> Result<reqwest::Client, ScanError>,
) -> Result<reqwest::Client, ScanError> {
    type Clients =
        std::collections::HashMap<(Option<Vec<u8>>, Duration, Duration), reqwest::Client>;
    static CLIENTS: std::sync::OnceLock<std::sync::Mutex<Clients>> = std::sync::OnceLock::new();
    let clients = CLIENTS.get_or_init(Default::default);
    if let Some(http) = clients.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(http.clone());
    }
    let http = build()?;
    let mut clients = clients.lock().unwrap_or_else(|p| p.into_inner());
    Ok(clients.entry(key).or_insert(http).clone())
}

fn build_http(
    ca_pem: Option<&[u8]>,
    connect_timeout: Duration,
    read_timeout: Duration,
) -> Result<reqwest::Client, ScanError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .read_timeout(read_timeout)
        .user_agent(concat!("sluice-config-updater/", env!("CARGO_PKG_VERSION")))
        // No redirect may carry the credentials elsewhere; registries do not redirect tag lists.
        .redirect(reqwest::redirect::Policy::none());
    if let Some(pem) = ca_pem {
        let certs =
            reqwest::Certificate::from_pem_bundle(pem).map_err(|e| ScanError::InvalidCa {
                reason: error_chain(&e),
            })?;
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().map_err(|e| ScanError::InvalidCa {
        reason: error_chain(&e),
    })
}
