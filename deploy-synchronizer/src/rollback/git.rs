//! Making and pushing the revert a rollback [`Plan`] describes. Blocking (git2); call it from
//! `spawn_blocking`.

use std::path::Path;

use git2::Oid;
use sluice_shared::git::{self, Author, GitError, Remote};

use super::{CHANGE_TRAILER, CommitFacts, Plan, Undo};
use crate::resource::GitSyncSpec;

/// A pushed rollback proposal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    pub branch: String,
    /// The revert commit.
    pub commit: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error(transparent)]
    Git(#[from] GitError),
    /// The Secret with the credentials to push with cannot be used.
    #[error(transparent)]
    Credentials(Box<crate::source::SourceError>),
    #[error(
        "{base} moved on to {head} since the failed revision: that newer revision is applied \
         instead, so no rollback is proposed"
    )]
    Superseded { base: String, head: String },
    #[error(
        "the failed revision does not revert cleanly on {base} (conflicts in {}); revert it by hand",
        files.join(", ")
    )]
    Conflict { base: String, files: Vec<String> },
    #[error(
        "branch {branch} already exists on the remote with other commits; it was left as it is \
         (delete it to have the rollback proposed again)"
    )]
    BranchTaken { branch: String },
    #[error("revision {revision} is not in the history of {base}")]
    UnknownRevision { revision: String, base: String },
    #[error("{base} already holds that tree: there is nothing to undo")]
    NothingToUndo { base: String },
}

/// Pushes the revert `plan` describes for the GitSync `namespace/name`, with the credentials of
/// `spec.rollback.secretRef` (else the source's), from its work clone below `cache_dir` (see
/// [`super::work_dir`]); the git work runs off the runtime's threads.
pub async fn push_revert(
    (client, cache_dir): (&kube::Client, &Path),
    namespace: &str,
    name: &str,
    spec: &GitSyncSpec,
    plan: Plan,
) -> Result<Proposal, RollbackError> {
    let mut source = spec.source.clone();
    if let Some(secret) = spec.rollback.as_ref().and_then(|r| r.secret_ref.clone()) {
        source.secret_ref = Some(secret);
    }
    let auth = crate::source::auth_of(client, namespace, &source)
        .await
        .map_err(|error| RollbackError::Credentials(Box::new(error)))?;
    let work_dir = super::work_dir(cache_dir, namespace, name);
    tokio::task::spawn_blocking(move || {
        let remote = Remote::new(source.url, auth)?;
        propose(&remote, &plan, &work_dir)
    })
    .await
    .unwrap_or_else(|error| {
        Err(RollbackError::Git(GitError::Invalid {
            what: "rollback worker".into(),
            reason: error.to_string(),
        }))
    })
}

/// Clones or updates `work_dir` at `plan.base`, makes on its tip what `plan.undo` says (the
/// revert of `plan.revision`, which for [`Undo::Failed`] must be the tip; or `plan.revision`'s
/// tree back), commits on branch `plan.branch` through the shared write path
/// ([`git::commit_tree`]) and pushes that branch — never the base, never forced. Pushing the
/// same revert again is a no-op.
pub fn propose(remote: &Remote, plan: &Plan, work_dir: &Path) -> Result<Proposal, RollbackError> {
    let repo = git::clone_or_open(remote, &plan.base, work_dir)?;
    let head = repo
        .find_reference(&format!("refs/heads/{}", plan.base))
        .and_then(|r| r.peel_to_commit())
        .map_err(GitError::from)?;
    if plan.undo == Undo::Failed && head.id().to_string() != plan.revision {
        return Err(RollbackError::Superseded {
            base: plan.base.clone(),
            head: head.id().to_string(),
        });
    }
    let unknown = || RollbackError::UnknownRevision {
        revision: plan.revision.clone(),
        base: plan.base.clone(),
    };
    let target = repo
        .revparse_single(&plan.revision)
        .and_then(|o| o.peel_to_commit())
        .map_err(|_| unknown())?;
    let in_history = target.id() == head.id()
        || repo
            .graph_descendant_of(head.id(), target.id())
            .unwrap_or(false);
    if !in_history {
        return Err(unknown());
    }
    let tree = match plan.undo {
        Undo::Failed | Undo::Revert => reverted_tree(&repo, &target, &head, &plan.base)?,
        Undo::BackTo => target.tree().map_err(GitError::from)?,
    };
    if tree.id() == head.tree_id() {
        return Err(RollbackError::NothingToUndo {
            base: plan.base.clone(),
        });
    }
    let author = Author {
        name: plan.author_name.clone(),
        email: plan.author_email.clone(),
    };
    let commit = git::commit_tree(
        &repo,
        &plan.branch,
        &tree,
        &[&head],
        &author,
        &plan.message,
        None,
    )?;
    match git::push(&repo, remote, &plan.branch) {
        Ok(()) => Ok(Proposal {
            branch: plan.branch.clone(),
            commit: commit.to_string(),
        }),
        Err(GitError::NonFastForward { .. }) => Err(RollbackError::BranchTaken {
            branch: plan.branch.clone(),
        }),
        Err(error) => Err(error.into()),
    }
}

/// The facts of `revision` (subject, author, trailers) as the rollback work clone `work_dir`
/// holds it, for a revert pull request's diagnosis; `None` when it holds no such commit.
pub fn failed_commit(work_dir: &Path, revision: &str) -> Option<CommitFacts> {
    let repo = git2::Repository::open(work_dir).ok()?;
    let commit = repo.find_commit(Oid::from_str(revision).ok()?).ok()?;
    let author = commit.author().name().unwrap_or_default().to_owned();
    // A bump merged with a merge commit: its trailers are in the commits the merge brought in.
    let message = git::message_with_merged(&repo, &commit, CHANGE_TRAILER, 200);
    Some(CommitFacts::from_message(revision, &author, &message))
}

/// The tree of `git revert <failed>` on `head` (a merge commit reverted against its first
/// parent, as `git revert -m 1` does); conflicts are an error naming the files.
fn reverted_tree<'r>(
    repo: &'r git2::Repository,
    failed: &git2::Commit<'_>,
    head: &git2::Commit<'_>,
    base: &str,
) -> Result<git2::Tree<'r>, RollbackError> {
    let mainline = if failed.parent_count() > 1 { 1 } else { 0 };
    let mut index = repo
        .revert_commit(failed, head, mainline, None)
        .map_err(GitError::from)?;
    if index.has_conflicts() {
        let mut files: Vec<String> = index
            .conflicts()
            .map_err(GitError::from)?
            .filter_map(Result::ok)
            .filter_map(|c| c.our.or(c.their).or(c.ancestor))
            .map(|entry| String::from_utf8_lossy(&entry.path).into_owned())
            .collect();
        files.sort();
        files.dedup();
        return Err(RollbackError::Conflict {
            base: base.to_owned(),
            files,
        });
    }
    let tree_id = index.write_tree_to(repo).map_err(GitError::from)?;
    Ok(repo.find_tree(tree_id).map_err(GitError::from)?)
}
