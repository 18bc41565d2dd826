//! Rollback by pull request: when a revision fails its health check, Sluice proposes its revert
//! — a commit made as `git revert` makes it, pushed to a branch of its own — and a person merges
//! it. Git stays the source of truth (Flux and Argo CD roll the cluster back, if at all, behind
//! Git's back); the merge is the rollback, and the Config Updater reads the revert (`This reverts
//! commit …` and the bump's `Sluice-Change` trailers) and never bumps to the reverted tag again.
//!
//! What to propose is decided here, purely; [`git`] does it.

mod diagnosis;
mod git;

use std::path::{Path, PathBuf};

use crate::resource::{GitRef, GitSyncSpec, HistoryEntry};
use crate::status::short;

pub use diagnosis::{CommitFacts, Diagnosis, EventFacts, ObjectFacts, PodFacts, body, title};
pub use git::{Proposal, RollbackError, failed_commit, propose};

/// The trailer naming the revision a rollback reverts.
pub const TRAILER: &str = "Sluice-Rollback-Of";

/// What a rollback proposal needs to know, from spec and the failed revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The branch the sync follows: the revert's parent is its tip.
    pub base: String,
    /// The branch the revert is pushed to.
    pub branch: String,
    /// The failed revision (full id).
    pub revision: String,
    pub message: String,
    pub author_name: String,
    pub author_email: String,
}

/// Why no rollback is proposed for a failed revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skip {
    /// `spec.rollback.enabled` is not true.
    Disabled,
    /// The sync follows a tag or a commit: there is no branch to propose a revert to.
    NotABranch,
    /// This revision already has one (`rollback_branch` in its history entry).
    AlreadyProposed,
}

/// The branch a revert is proposed to: the one the sync follows (`None` for a tag or a commit).
pub fn base_branch(spec: &GitSyncSpec) -> Option<String> {
    match &spec.source.reference {
        None => Some("main".to_owned()),
        Some(GitRef::Branch(branch)) => Some(branch.clone()),
        Some(GitRef::Tag(_) | GitRef::Commit(_)) => None,
    }
}

/// The work clone rollbacks of the GitSync `namespace/name` are made in, below the cache.
pub fn work_dir(cache_dir: &Path, namespace: &str, name: &str) -> PathBuf {
    cache_dir.join("rollback").join(namespace).join(name)
}

/// The proposal for `failed` (the history entry of the revision that failed), or why none.
pub fn plan(spec: &GitSyncSpec, failed: &HistoryEntry, reason: &str) -> Result<Plan, Skip> {
    let Some(rollback) = spec.rollback.as_ref().filter(|r| r.enabled) else {
        return Err(Skip::Disabled);
    };
    let Some(base) = base_branch(spec) else {
        return Err(Skip::NotABranch);
    };
    if failed.rollback_branch.is_some() {
        return Err(Skip::AlreadyProposed);
    }
    Ok(Plan {
        base,
        branch: format!("{}{}", rollback.branch_prefix, short(&failed.revision)),
        revision: failed.revision.clone(),
        message: message(&failed.subject, &failed.revision, reason),
        author_name: rollback.author_name.clone(),
        author_email: rollback.author_email.clone(),
    })
}

/// The revert's message, in `git revert`'s own form (so every tool that reads reverts, the
/// Config Updater included, understands it), with why and a trailer.
pub fn message(subject: &str, revision: &str, reason: &str) -> String {
    let reason = reason.trim();
    let reason: String = reason.chars().take(2000).collect();
    format!(
        "Revert \"{subject}\"\n\nThis reverts commit {revision}.\n\n\
         Sluice rolled this revision out and it did not become healthy:\n{reason}\n\n\
         Merge this to roll the cluster back.\n\n{TRAILER}: {revision}\n"
    )
}

#[cfg(test)]
mod tests;
