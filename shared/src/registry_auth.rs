//! Registry credentials from a Secret: `.dockerconfigjson`, as both daemons read it (the Config
//! Updater for the registries it scans, the Deploy Synchronizer for charts in OCI registries).
//!
//! The document is parsed here by hand rather than with `docker_credential`: that crate reads
//! `config.json` from `DOCKER_CONFIG`/`HOME`, and even its reader variant runs the credential
//! helpers (`credsStore`, `credHelpers`) a config names. A Secret's content arrives in memory from
//! the API server and is user input: naming a helper in it must never make a daemon execute a
//! `docker-credential-*` binary. It also matches keys more leniently than docker does (`https://`
//! prefixes, paths, Docker Hub's `https://index.docker.io/v1/`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

/// Docker Hub's registry name, as image references spell it.
pub const DOCKER_HUB: &str = "docker.io";

/// Credentials for one registry. `Debug` never shows a secret.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Credentials {
    #[default]
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
    /// An identity token (docker's `identitytoken`). Best effort: oci-client only does the GET
    /// token exchange with basic credentials, not docker's OAuth2 refresh-token POST, so it is
    /// sent as the password of user `<token>` (which ACR, for one, accepts).
    IdentityToken(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

impl Credentials {
    pub fn kind(&self) -> &'static str {
        match self {
            Credentials::Anonymous => "anonymous",
            Credentials::Basic { .. } => "basic",
            Credentials::IdentityToken(_) => "identity-token",
        }
    }

    /// The user and password HTTP basic auth sends: an identity token goes as the password of
    /// user `<token>`, as docker sends it (ACR, for one, accepts it). `None` when anonymous.
    pub fn user_password(&self) -> Option<(String, String)> {
        match self {
            Credentials::Anonymous => None,
            Credentials::Basic { username, password } => Some((username.clone(), password.clone())),
            Credentials::IdentityToken(token) => Some(("<token>".to_owned(), token.clone())),
        }
    }
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

/// The host a dockerconfigjson key names: `https://ghcr.io/v2/` → `ghcr.io`; every Docker Hub
/// spelling → `docker.io`.
pub fn normalize_auth_key(key: &str) -> String {
    let key = key.trim();
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" | "docker.io" => {
            DOCKER_HUB.to_owned()
        }
        _ => host,
    }
}

/// The credentials the `.dockerconfigjson` document holds for `registry` (a normalized registry
/// name such as `docker.io` or `127.0.0.1:5001`). The error says what is wrong with the
/// document, never what it holds; the caller names the Secret.
///
/// An exact key wins over a normalized match. No entry for the registry means anonymous.
pub fn credentials_from_dockerconfigjson(
    json: &[u8],
    registry: &str,
) -> Result<Credentials, String> {
    let config = parse(json)?;
    let wanted = normalize_auth_key(registry);
    let entry = config.auths.get(registry).or_else(|| {
        config
            .auths
            .iter()
            .find(|(k, _)| normalize_auth_key(k) == wanted)
            .map(|(_, v)| v)
    });
    match entry {
        Some(entry) => entry.credentials(registry),
        None => Ok(Credentials::Anonymous),
    }
}

/// Every registry the `.dockerconfigjson` document has credentials for, by normalized host, with
/// them.
pub fn all_credentials_from_dockerconfigjson(
    json: &[u8],
) -> Result<Vec<(String, Credentials)>, String> {
    parse(json)?
        .auths
        .iter()
        .map(|(key, entry)| Ok((normalize_auth_key(key), entry.credentials(key)?)))
        .collect()
}

fn parse(json: &[u8]) -> Result<DockerConfig, String> {
    serde_json::from_slice(json)
        .map_err(|e| format!("`.dockerconfigjson` is not a docker config: {e}"))
}

impl AuthEntry {
    /// The credentials of the entry for `registry` (named in errors, never a value).
    fn credentials(&self, registry: &str) -> Result<Credentials, String> {
        if let Some(token) = self.identitytoken.as_deref().filter(|t| !t.is_empty()) {
            return Ok(Credentials::IdentityToken(token.to_owned()));
        }
        if let Some(auth) = self.auth.as_deref().filter(|a| !a.is_empty()) {
            // Never echo the value: it is the credential.
            let decoded = STANDARD.decode(auth.trim()).map_err(|_| {
                format!("the `auth` of {registry:?} is not base64 of `user:password`")
            })?;
            let text = String::from_utf8(decoded)
                .map_err(|_| format!("the `auth` of {registry:?} is not UTF-8 `user:password`"))?;
            let (username, password) = text.split_once(':').ok_or_else(|| {
                format!("the `auth` of {registry:?} has no `:` between user and password")
            })?;
            return Ok(Credentials::Basic {
                username: username.to_owned(),
                password: password.to_owned(),
            });
        }
        match (&self.username, &self.password) {
            (Some(username), Some(password)) if !username.is_empty() => Ok(Credentials::Basic {
                username: username.clone(),
                password: password.clone(),
            }),
            _ => Err(format!(
                "the entry for {registry:?} has neither `auth`, `username`+`password` nor `identitytoken`"
            )),
        }
    }
}
