//! Where a daemon finds its forge token: one rule for both. Key `token` of the forge's own
//! Secret (`forge.secretRef` / `pullRequest.secretRef`); without one, the git credentials'
//! Secret, key `token`, else `password` (a forge's API token is also its git password over
//! HTTPS). Neither Secret named: no token (an anonymous forge refuses to write, and says so).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use super::{ForgeError, Token};

/// The token for the forge, read from Secrets in `namespace`: `own` (the forge's Secret) if
/// named, else `git` (the git credentials' Secret).
pub async fn read_token(
    client: &kube::Client,
    namespace: &str,
    own: Option<&str>,
    git: Option<&str>,
) -> Result<Option<Token>, ForgeError> {
    let (name, password_too) = match (own, git) {
        (Some(name), _) => (name, false),
        (None, Some(name)) => (name, true),
        (None, None) => return Ok(None),
    };
    let refused = |reason: String| ForgeError::Config {
        reason: format!("the token Secret {namespace}/{name}: {reason}"),
    };
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = api
        .get_opt(name)
        .await
        .map_err(|error| refused(format!("cannot be read ({error})")))?
        .ok_or_else(|| refused("does not exist".into()))?;
    let data: BTreeMap<String, Vec<u8>> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| (key, value.0))
        .chain(
            secret
                .string_data
                .unwrap_or_default()
                .into_iter()
                .map(|(key, value)| (key, value.into_bytes())),
        )
        .collect();
    match Token::from_secret_data(&data, password_too) {
        Some(token) => Ok(Some(token)),
        None if password_too => Err(refused("has neither `token` nor `password`".into())),
        None => Err(refused("has no key `token`".into())),
    }
}
