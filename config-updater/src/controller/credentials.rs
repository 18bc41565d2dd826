//! What an `ImageUpdate` reads from Secrets to write to Git: the credentials of its remote
//! (`git.secretRef`) and the key that signs its commits (`git.commit.signingKeyRef`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use sluice_shared::forge::{ForgeSpec, Token, read_token};
use sluice_shared::git::{CommitSigner, GitAuth};

use super::Error;
use crate::resource::ImageUpdate;

/// The git credentials of `update` from its `secretRef` (none without one).
pub(crate) async fn git_auth(
    client: &kube::Client,
    ns: &str,
    update: &ImageUpdate,
) -> Result<GitAuth, Error> {
    let Some(r) = &update.spec.git.secret_ref else {
        return Ok(GitAuth::none());
    };
    let refused = |reason: String| Error::Secret {
        name: r.name.clone(),
        reason,
    };
    let data = secret_data(client, ns, &r.name)
        .await?
        .ok_or_else(|| refused("it does not exist".into()))?;
    GitAuth::from_secret_data(&data).map_err(|e| refused(e.to_string()))
}

/// The key that signs the commits, from `commit.signingKeyRef` (unsigned commits without one):
/// keys `identity` (or `ssh-privatekey`) and `password`, see [`CommitSigner::from_secret_data`].
pub(super) async fn commit_signer(
    client: &kube::Client,
    ns: &str,
    update: &ImageUpdate,
) -> Result<Option<CommitSigner>, Error> {
    let Some(r) = &update.spec.git.commit.signing_key_ref else {
        return Ok(None);
    };
    let refused = |reason: String| Error::Secret {
        name: r.name.clone(),
        reason: format!("signingKeyRef: {reason}"),
    };
    let data = secret_data(client, ns, &r.name)
        .await?
        .ok_or_else(|| refused("it does not exist".into()))?;
    let signer = CommitSigner::from_secret_data(&data).map_err(|e| refused(e.to_string()))?;
    Ok(Some(signer))
}

/// The token for the forge of `spec.git.pullRequest` (see [`read_token`]: its `secretRef`, else
/// `git.secretRef`).
pub(super) async fn forge_token(
    client: &kube::Client,
    ns: &str,
    update: &ImageUpdate,
    forge: &ForgeSpec,
) -> Result<Option<Token>, Error> {
    let git = update.spec.git.secret_ref.as_ref().map(|r| r.name.as_str());
    Ok(read_token(client, ns, forge.secret_ref.as_deref(), git).await?)
}

/// The data of Secret `name` in `ns`, decoded; `None` when there is no such Secret.
async fn secret_data(
    client: &kube::Client,
    ns: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, Error> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let Some(secret) = secrets.get_opt(name).await? else {
        return Ok(None);
    };
    let data = secret.data.unwrap_or_default();
    Ok(Some(data.into_iter().map(|(k, v)| (k, v.0)).collect()))
}
