//! The forge shell of a rollback: the pull request that proposes a revert, its body the
//! [`Diagnosis`] of what failed. Used by the reconcile (a revision that failed its health check,
//! see `reconcile::forge`) and by `deploy-synchronizer rollback` (a person's request).

use std::path::Path;
use std::time::Duration;

use kube::Client;
use sluice_shared::forge::{
    Forge, ForgeError, NewPullRequest, PullRequestState, PullRequestStatus, read_token,
};

use super::diagnose::diagnose;
use super::{CommitFacts, Diagnosis, Undo, base_branch, body, failed_commit, title, work_dir};
use crate::apply::Kinds;
use crate::plan::Inventory;
use crate::resource::{GitSyncSpec, GitSyncStatus};
use crate::status::short;

/// How long one call to the forge may take.
const FORGE_TIMEOUT: Duration = Duration::from_secs(10);

/// The label on every revert pull request.
pub const ROLLBACK_LABEL: &str = "rollback";

/// The forge of a GitSync (`spec.forge`), with its token (see [`read_token`]: `forge.secretRef`,
/// else the rollback's or the source's git Secret).
pub async fn connect(
    client: &Client,
    namespace: &str,
    spec: &GitSyncSpec,
) -> Result<Forge, ForgeError> {
    let forge = spec.forge.clone().unwrap_or_default();
    let git_secret = spec
        .rollback
        .as_ref()
        .and_then(|r| r.secret_ref.as_ref())
        .or(spec.source.secret_ref.as_ref())
        .map(|r| r.name.as_str());
    let token = read_token(client, namespace, forge.secret_ref.as_deref(), git_secret).await?;
    Forge::new(&spec.source.url, &forge, token, FORGE_TIMEOUT)
}

/// One GitSync, as a revert pull request needs to know it.
pub struct Sync<'a> {
    pub client: &'a Client,
    /// The daemon's cache directory (the rollback work clone is below it).
    pub cache_dir: &'a Path,
    pub namespace: &'a str,
    pub name: &'a str,
    pub spec: &'a GitSyncSpec,
    pub status: &'a GitSyncStatus,
}

/// What a revert pull request proposes.
pub struct Revert<'a> {
    /// The revision reverted (or, with [`Undo::BackTo`], gone back to), full id.
    pub revision: &'a str,
    /// The branch holding the commit.
    pub branch: &'a str,
    /// Why: the health verdict of a failed revision, or [`super::BY_HAND`].
    pub reason: &'a str,
    pub undo: Undo,
}

/// Opens (or finds, when an earlier attempt opened it) the pull request of `revert`, with the
/// diagnosis of how the cluster is doing (and, for a failed revision, why) as its body.
pub async fn open_revert(
    sync: &Sync<'_>,
    forge: &Forge,
    revert: &Revert<'_>,
) -> Result<PullRequestStatus, ForgeError> {
    let Revert {
        revision,
        branch,
        reason,
        undo,
    } = *revert;
    let base = base_branch(sync.spec).unwrap_or_else(|| "main".to_owned());
    if let Some(pr) = forge.latest_pull_request(branch, &base).await?
        && pr.state == PullRequestState::Open
    {
        return Ok(PullRequestStatus::of(&pr));
    }
    let commit = read_commit(sync, revision).await;
    let subject = match &commit {
        Some(c) => c.subject.clone(),
        None => short_subject(sync.status, revision),
    };
    let inventory: Inventory = sync.status.inventory.iter().cloned().collect();
    let mut diagnosis = match Kinds::discover(sync.client).await {
        Ok(kinds) => {
            diagnose(
                sync.client,
                &kinds,
                &inventory,
                revision,
                &base,
                reason,
                commit,
            )
            .await
        }
        Err(error) => Diagnosis {
            revision: revision.to_owned(),
            base: base.clone(),
            reason: reason.to_owned(),
            commit,
            notes: vec![format!("could not discover the cluster's kinds: {error}")],
            ..Diagnosis::default()
        },
    };
    diagnosis.undo = undo;
    let title = match undo {
        Undo::BackTo => format!("Roll {base} back to {}", short(revision)),
        Undo::Failed | Undo::Revert => title(&subject),
    };
    let new = NewPullRequest {
        head: branch.to_owned(),
        base,
        title,
        body: body(&diagnosis),
        labels: vec![ROLLBACK_LABEL.to_owned()],
    };
    let pr = forge.open_pull_request(&new).await?;
    Ok(PullRequestStatus::of(&pr))
}

/// The failed commit as the rollback work clone holds it (read off the runtime's threads).
async fn read_commit(sync: &Sync<'_>, revision: &str) -> Option<CommitFacts> {
    let dir = work_dir(sync.cache_dir, sync.namespace, sync.name);
    let revision = revision.to_owned();
    tokio::task::spawn_blocking(move || failed_commit(&dir, &revision))
        .await
        .ok()
        .flatten()
}

/// The subject the history recorded for `revision`, if any.
fn short_subject(status: &GitSyncStatus, revision: &str) -> String {
    status
        .history
        .iter()
        .find(|h| h.revision == revision)
        .map(|h| h.subject.clone())
        .unwrap_or_default()
}
