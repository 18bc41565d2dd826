//! Registry credentials: the Secret's `.dockerconfigjson` is read by
//! [`sluice_shared::registry_auth`] (both daemons read it); here, what oci-client is given, and
//! (for the daemon only) the node's or home directory's docker config.

use oci_client::secrets::RegistryAuth;
pub use sluice_shared::registry_auth::Credentials;

use super::ScanError;
use super::config::DOCKER_HUB;

/// What oci-client takes. Basic (and identity tokens, as docker sends them) go through
/// oci-client's challenge handling: it asks `/v2/` for `WWW-Authenticate` and either fetches a
/// bearer token from the realm with these credentials, or falls back to HTTP basic.
pub fn to_registry_auth(credentials: &Credentials) -> RegistryAuth {
    match credentials.user_password() {
        None => RegistryAuth::Anonymous,
        Some((username, password)) => RegistryAuth::Basic(username, password),
    }
}

/// The credentials the `.dockerconfigjson` of Secret `secret` holds for `registry` (see
/// [`sluice_shared::registry_auth::credentials_from_dockerconfigjson`]).
pub fn credentials_from_dockerconfigjson(
    json: &[u8],
    registry: &str,
    secret: &str,
) -> Result<Credentials, ScanError> {
    sluice_shared::registry_auth::credentials_from_dockerconfigjson(json, registry).map_err(
        |reason| ScanError::InvalidSecret {
            secret: secret.to_owned(),
            reason,
        },
    )
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
