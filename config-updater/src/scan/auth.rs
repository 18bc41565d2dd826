//! Registry credentials from a dockerconfigjson Secret, and (for the daemon only) from the node's
//! or home directory's docker config.
//!
//! The Secret is parsed here by hand rather than with `docker_credential`: that crate reads
//! `config.json` from `DOCKER_CONFIG`/`HOME`, and even its reader variant runs the credential
//! helpers (`credsStore`, `credHelpers`) a config names. A Secret's content arrives in memory from
//! the API server and is user input: naming a helper in it must never make the daemon execute a
//! `docker-credential-*` binary. It also matches keys more leniently than docker does (`https://`
//! prefixes, paths, Docker Hub's `https://index.docker.io/v1/`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

use super::ScanError;
use super::config::DOCKER_HUB;

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
    /// What oci-client takes. Basic (and identity tokens, as docker sends them) go through
    /// oci-client's challenge handling: it asks `/v2/` for `WWW-Authenticate` and either fetches a
    /// bearer token from the realm with these credentials, or falls back to HTTP basic.
    pub fn to_registry_auth(&self) -> RegistryAuth {
        match self {
            Credentials::Anonymous => RegistryAuth::Anonymous,
            Credentials::Basic { username, password } => {
                RegistryAuth::Basic(username.clone(), password.clone())
            }
            Credentials::IdentityToken(token) => {
                RegistryAuth::Basic("<token>".to_owned(), token.clone())
            }
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Credentials::Anonymous => "anonymous",
            Credentials::Basic { .. } => "basic",
            Credentials::IdentityToken(_) => "identity-token",
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
/// name such as `docker.io` or `127.0.0.1:5001`). `secret` names the Secret in errors.
///
/// An exact key wins over a normalized match. No entry for the registry means anonymous.
pub fn credentials_from_dockerconfigjson(
    json: &[u8],
    registry: &str,
    secret: &str,
) -> Result<Credentials, ScanError> {
    let invalid = |reason: String| ScanError::InvalidSecret {
        secret: secret.to_owned(),
        reason,
    };
    let config: DockerConfig = serde_json::from_slice(json)
        .map_err(|e| invalid(format!("`.dockerconfigjson` is not a docker config: {e}")))?;
    let wanted = normalize_auth_key(registry);
    let entry = config.auths.get(registry).or_else(|| {
        config
            .auths
            .iter()
            .find(|(k, _)| normalize_auth_key(k) == wanted)
            .map(|(_, v)| v)
    });
    let Some(entry) = entry else {
        return Ok(Credentials::Anonymous);
    };
    if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Credentials::IdentityToken(token.to_owned()));
    }
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        // Never echo the value: it is the credential.
        let decoded = STANDARD.decode(auth.trim()).map_err(|_| {
            invalid(format!(
                "the `auth` of {registry:?} is not base64 of `user:password`"
            ))
        })?;
        let text = String::from_utf8(decoded).map_err(|_| {
            invalid(format!(
                "the `auth` of {registry:?} is not UTF-8 `user:password`"
            ))
        })?;
        let (username, password) = text.split_once(':').ok_or_else(|| {
            invalid(format!(
                "the `auth` of {registry:?} has no `:` between user and password"
            ))
        })?;
        return Ok(Credentials::Basic {
            username: username.to_owned(),
            password: password.to_owned(),
        });
    }
    match (&entry.username, &entry.password) {
        (Some(username), Some(password)) if !username.is_empty() => Ok(Credentials::Basic {
            username: username.clone(),
            password: password.clone(),
        }),
        _ => Err(invalid(format!(
            "the entry for {registry:?} has neither `auth`, `username`+`password` nor `identitytoken`"
        ))),
    }
}

/// The daemon's optional fallback when an image repository names no Secret: the docker config of
/// the node or home directory (`DOCKER_CONFIG`/`HOME`, credential helpers included, as docker
/// itself would). Anonymous when there is none. Never used for a Secret's content.
pub fn credentials_from_local_docker_config(registry: &str) -> Credentials {
    let server = if registry == DOCKER_HUB {
        "https://index.docker.io/v1/".to_owned()
    } else {
        registry.to_owned()
    };
    match docker_credential::get_credential(&server) {
        Ok(docker_credential::DockerCredential::UsernamePassword(username, password)) => {
            Credentials::Basic { username, password }
        }
        Ok(docker_credential::DockerCredential::IdentityToken(token)) => {
            Credentials::IdentityToken(token)
        }
        Err(e) => {
            tracing::debug!(registry, reason = %e, "no local docker credentials; anonymous");
            Credentials::Anonymous
        }
    }
}
