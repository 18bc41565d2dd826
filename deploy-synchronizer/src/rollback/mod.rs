//! Rollback by pull request: when a revision fails its health check, Sluice proposes its revert
//! — a commit made as `git revert` makes it, pushed to a branch of its own — and a person merges
//! it. Git stays the source of truth (Flux and Argo CD roll the cluster back, if at all, behind
//! Git's back); the merge is the rollback, and the Config Updater reads the revert (`This reverts
//! commit …` and the bump's `Sluice-Change` trailers) and never bumps to the reverted tag again.
//!
//! What to propose is decided here, purely. The shells: [`git`] makes and pushes the revert,
//! `diagnose` reads what failed from the cluster, [`pull_request`] proposes it on the forge.

mod diagnose;
mod diagnosis;
mod git;
pub mod pull_request;

use std::path::{Path, PathBuf};

use crate::resource::{GitRef, GitSyncSpec, GitSyncStatus, HistoryEntry};
use crate::status::short;

pub use diagnosis::{
    CHANGE_TRAILER, CommitFacts, Diagnosis, EventFacts, ObjectFacts, PodFacts, body, title,
};
pub use git::{RollbackError, failed_commit, push_revert};

/// The trailer naming the revision a rollback reverts.
pub const TRAILER: &str = "Sluice-Rollback-Of";

/// What a rollback proposal needs to know, from spec and the failed revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The branch the sync follows: the revert's parent is its tip.
    pub base: String,
    /// The branch the revert is pushed to.
    pub branch: String,
    /// The failed revision (full id); with [`Undo::BackTo`], the revision to go back to.
    pub revision: String,
    pub undo: Undo,
    pub message: String,
    pub author_name: String,
    pub author_email: String,
}

/// What the proposed commit undoes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Undo {
    /// `git revert` of the failed revision on the base's tip, which must still be that revision
    /// (a newer commit is applied instead: nothing to propose). The automatic rollback.
    #[default]
    Failed,
    /// `git revert` of the revision on whatever the base's tip is (`deploy-synchronizer rollback`).
    Revert,
    /// The tree of the revision back on the base's tip: every later commit undone
    /// (`deploy-synchronizer rollback --to`).
    BackTo,
}

/// Why a rollback cannot be proposed by hand.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "it follows a tag or a commit, not a branch: there is no branch to propose a revert to"
    )]
    NotABranch,
    #[error("it has applied no revision yet: there is nothing to roll back (name one with --to)")]
    NothingApplied,
}

/// The proposal a person asks for with `deploy-synchronizer rollback`: the revert of the applied
/// revision, or with `to`, everything after `to` undone. Branch, author and prefix as in
/// `spec.rollback` (its defaults when unset; it need not be enabled).
pub fn by_hand(
    spec: &GitSyncSpec,
    status: &GitSyncStatus,
    to: Option<&str>,
) -> Result<Plan, Refusal> {
    let rollback = spec.rollback.clone().unwrap_or_default();
    let base = base_branch(spec).ok_or(Refusal::NotABranch)?;
    let (undo, revision, branch, message) = match to {
        Some(to) => (
            Undo::BackTo,
            to.to_owned(),
            format!("{}to-{}", rollback.branch_prefix, short(to)),
            back_to_message(&base, to),
        ),
        None => {
            let applied = status
                .last_applied_revision
                .as_deref()
                .ok_or(Refusal::NothingApplied)?;
            let subject = status
                .history
                .iter()
                .find(|h| h.revision == applied)
                .map_or(short(applied), |h| h.subject.as_str());
            (
                Undo::Revert,
                applied.to_owned(),
                format!("{}{}", rollback.branch_prefix, short(applied)),
                message(subject, applied, BY_HAND),
            )
        }
    };
    Ok(Plan {
        base,
        branch,
        revision,
        undo,
        message,
        author_name: rollback.author_name,
        author_email: rollback.author_email,
    })
}

/// Why a rollback by hand was proposed, in its commit message and pull request.
pub const BY_HAND: &str = "a person asked for this rollback with `deploy-synchronizer rollback`";

fn back_to_message(base: &str, to: &str) -> String {
    format!(
        "Roll {base} back to {}\n\nThis puts back the tree of commit {to}, undoing every commit \
         after it.\nA person asked for it with `deploy-synchronizer rollback --to`.\n\n\
         Merge this to roll the cluster back.\n\n{TRAILER}: {to}\n",
        short(to)
    )
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
        undo: Undo::Failed,
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
    let why = if reason == BY_HAND {
        format!("Sluice applied this revision; {reason}.")
    } else {
        format!("Sluice rolled this revision out and it did not become healthy:\n{reason}")
    };
    format!(
        "Revert \"{subject}\"\n\nThis reverts commit {revision}.\n\n{why}\n\n\
         Merge this to roll the cluster back.\n\n{TRAILER}: {revision}\n"
    )
}

#[cfg(test)]
mod tests;
