//! `deploy-synchronizer rollback GITSYNC [--to REVISION]`: proposes a rollback by hand, as
//! `argocd app rollback` does, but through Git: the revert of the applied revision (or, with
//! `--to`, every commit after REVISION undone) is pushed to a branch of its own and proposed as a
//! pull request on the GitSync's forge, its body the diagnosis of how the cluster is doing. The
//! cluster rolls back when a person merges it; nothing here writes to the cluster.
//!
//! The same pipeline as the automatic rollback: [`rollback::by_hand`] plans (pure),
//! [`rollback::push_revert`] pushes, [`rollback::pull_request::open_revert`] proposes.

use std::path::PathBuf;

use kube::{Api, Client};
use sluice_shared::forge::{ForgeError, PullRequestStatus};

use crate::resource::GitSync;
use crate::rollback::pull_request::{Revert, Sync, connect, open_revert};
use crate::rollback::{self, BY_HAND, Refusal, RollbackError};

/// What to roll back.
#[derive(Clone, Debug)]
pub struct Request {
    pub namespace: String,
    /// The GitSync.
    pub name: String,
    /// Go back to this revision (full or abbreviated id) instead of reverting the applied one.
    pub to: Option<String>,
    /// Where the work clone goes.
    pub cache_dir: PathBuf,
}

/// The rollback proposed.
#[derive(Clone, Debug)]
pub struct Proposed {
    /// The branch holding the revert.
    pub branch: String,
    pub pull_request: PullRequestStatus,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read GitSync {namespace}/{name}: {error}")]
    GitSync {
        namespace: String,
        name: String,
        #[source]
        error: kube::Error,
    },
    #[error(
        "GitSync {0} has no spec.forge: a rollback is proposed as a pull request on the forge \
         hosting its source (set `forge: {{}}` to use the one its URL names)"
    )]
    NoForge(String),
    #[error("GitSync {0}: {1}")]
    Refused(String, Refusal),
    #[error(transparent)]
    Rollback(#[from] RollbackError),
    #[error("the forge: {0}")]
    Forge(#[from] ForgeError),
}

/// Proposes the rollback `request` asks for; see the module docs.
pub async fn run(client: &Client, request: &Request) -> Result<Proposed, Error> {
    let (namespace, name) = (&request.namespace, &request.name);
    let key = format!("{namespace}/{name}");
    let api: Api<GitSync> = Api::namespaced(client.clone(), namespace);
    let sync = api.get(name).await.map_err(|error| Error::GitSync {
        namespace: namespace.clone(),
        name: name.clone(),
        error,
    })?;
    if sync.spec.forge.is_none() {
        return Err(Error::NoForge(key));
    }
    let status = sync.status.clone().unwrap_or_default();
    let plan = rollback::by_hand(&sync.spec, &status, request.to.as_deref())
        .map_err(|refusal| Error::Refused(key, refusal))?;
    let forge = connect(client, namespace, &sync.spec).await?;
    let cache_dir = request.cache_dir.as_path();
    let pushed = match rollback::push_revert(
        (client, cache_dir),
        namespace,
        name,
        &sync.spec,
        plan.clone(),
    )
    .await
    {
        Ok(proposal) => proposal.branch,
        // Proposed before (by the daemon, or an earlier run): its pull request is found below.
        Err(RollbackError::BranchTaken { branch }) => branch,
        Err(error) => return Err(error.into()),
    };
    let revision = revision_of(&plan, cache_dir, namespace, name);
    let sync = Sync {
        client,
        cache_dir,
        namespace,
        name,
        spec: &sync.spec,
        status: &status,
    };
    let revert = Revert {
        revision: &revision,
        branch: &pushed,
        reason: BY_HAND,
        undo: plan.undo,
    };
    let pull_request = open_revert(&sync, &forge, &revert).await?;
    Ok(Proposed {
        branch: pushed,
        pull_request,
    })
}

/// The full id of the revision the plan names (an abbreviated `--to` resolved in the work clone).
fn revision_of(
    plan: &rollback::Plan,
    cache_dir: &std::path::Path,
    namespace: &str,
    name: &str,
) -> String {
    let dir = rollback::work_dir(cache_dir, namespace, name);
    git2::Repository::open(dir)
        .and_then(|repo| {
            repo.revparse_single(&plan.revision)?
                .peel_to_commit()
                .map(|c| c.id().to_string())
        })
        .unwrap_or_else(|_| plan.revision.clone())
}
