//! The shell: plan the round ([`plan_round`]: clone or open the work clone, read the files,
//! plan), commit, push; on a non-fast-forward, fetch, re-plan on the new head and push again.
//! Never forced.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sluice_shared::git::{self, Author, CommitSigner, FileChange, GitError, Remote};

use super::round::{Round, plan_round, proposed_between};
use super::{Change, Chosen, Problem, TrailerChange, commit_message};
use crate::edit::PolicyId;
use crate::resource::ImageUpdateSpec;
use crate::schedule::WindowError;

/// How many times a round is planned and pushed before giving up on a busy branch.
pub const MAX_ATTEMPTS: u32 = 5;

/// What a write-back round did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// One commit with every change, accepted by the server.
    Pushed {
        /// Full hex id.
        commit: String,
        /// The branch pushed to (`push_branch`, else `branch`).
        branch: String,
        changes: Vec<Change>,
        problems: Vec<Problem>,
        /// Changes of earlier commits that a person rolled back (see [`Outcome::reverted`]).
        reverted: Vec<TrailerChange>,
        /// Rounds it took (more than 1 when someone pushed in between).
        attempts: u32,
        /// Push-branch mode: what the push branch now proposes over the base branch (see
        /// [`super::pull_request::proposed`]); a pull request lists exactly these.
        proposed: Option<Vec<TrailerChange>>,
    },
    /// The branch already holds every chosen image: nothing committed.
    UpToDate {
        problems: Vec<Problem>,
        reverted: Vec<TrailerChange>,
        /// As in `Pushed`.
        proposed: Option<Vec<TrailerChange>>,
    },
    /// The update window is closed at `now`: nothing done.
    WindowClosed { next_open: Option<DateTime<Utc>> },
}

impl Outcome {
    pub fn problems(&self) -> &[Problem] {
        match self {
            Outcome::Pushed { problems, .. } | Outcome::UpToDate { problems, .. } => problems,
            Outcome::WindowClosed { .. } => &[],
        }
    }

    /// The changes of Sluice's commits in the branch's recent history (the last
    /// [`HISTORY_LIMIT`](super::HISTORY_LIMIT) commits) that a person rolled back with `git revert`: the caller puts
    /// each [`TrailerChange::new_tag`] into its policy's `status.blockedTags`.
    pub fn reverted(&self) -> &[TrailerChange] {
        match self {
            Outcome::Pushed { reverted, .. } | Outcome::UpToDate { reverted, .. } => reverted,
            Outcome::WindowClosed { .. } => &[],
        }
    }

    /// What the push branch proposes over the base branch after the round (push-branch mode).
    pub fn proposed(&self) -> Option<&[TrailerChange]> {
        match self {
            Outcome::Pushed { proposed, .. } | Outcome::UpToDate { proposed, .. } => {
                proposed.as_deref()
            }
            Outcome::WindowClosed { .. } => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WriteBackError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("the update window is invalid: {0}")]
    Window(#[from] WindowError),
    #[error(
        "the branch {branch} kept moving: {attempts} pushes in a row were overtaken by other \
         commits; will try again next round"
    )]
    Contended { branch: String, attempts: u32 },
    #[error("the write-back task failed: {0}")]
    Task(String),
}

impl WriteBackError {
    /// A short, stable name for metric labels and condition reasons.
    pub fn kind(&self) -> &'static str {
        match self {
            WriteBackError::Git(e) => e.kind(),
            WriteBackError::Window(_) => "window",
            WriteBackError::Contended { .. } => "contended",
            WriteBackError::Task(_) => "task",
        }
    }
}

/// Writes the `chosen` images into the repository of `spec.git` as one commit and pushes it
/// (see the module doc of `writeback`). `work_dir` is a work clone kept between rounds (created
/// when missing). `now` decides the update window. Runs the blocking git work on tokio's
/// blocking pool. The commit is unsigned; see [`push_update_signed`].
pub async fn push_update(
    remote: Remote,
    spec: ImageUpdateSpec,
    chosen: BTreeMap<PolicyId, Chosen>,
    work_dir: PathBuf,
    now: DateTime<Utc>,
) -> Result<Outcome, WriteBackError> {
    push_update_observed(remote, spec, chosen, work_dir, now, |_| {}).await
}

/// [`push_update`], each commit signed with `signer` when given (an SSH signature that
/// `git verify-commit` checks; the key of `spec.git.commit.signingKeyRef`).
pub async fn push_update_signed(
    remote: Remote,
    spec: ImageUpdateSpec,
    chosen: BTreeMap<PolicyId, Chosen>,
    work_dir: PathBuf,
    now: DateTime<Utc>,
    signer: Option<CommitSigner>,
) -> Result<Outcome, WriteBackError> {
    let round = RoundOptions {
        signer,
        rejected_head: None,
    };
    run(remote, spec, chosen, work_dir, now, round, |_| {}).await
}

/// What a round does besides writing the chosen images.
#[derive(Default)]
pub struct RoundOptions {
    /// Signs each commit (an SSH signature, `spec.git.commit.signingKeyRef`).
    pub signer: Option<CommitSigner>,
    /// Pull-request mode: the head of the push branch's pull request when it was closed without
    /// merge. Its changes are rejected (blocked like reverted ones), and the push branch starts
    /// again from the base branch's tip, pushed over that head only while the remote branch
    /// still points there.
    pub rejected_head: Option<String>,
}

/// [`push_update`] with the [`RoundOptions`] of the `ImageUpdate`'s reconciler.
pub async fn push_update_with(
    remote: Remote,
    spec: ImageUpdateSpec,
    chosen: BTreeMap<PolicyId, Chosen>,
    work_dir: PathBuf,
    now: DateTime<Utc>,
    round: RoundOptions,
) -> Result<Outcome, WriteBackError> {
    run(remote, spec, chosen, work_dir, now, round, |_| {}).await
}

/// [`push_update`], calling `on_committed(attempt)` after each local commit and before its
/// push (on the blocking thread): for metrics, and for tests that push a human commit in
/// between to prove the race converges.
pub async fn push_update_observed(
    remote: Remote,
    spec: ImageUpdateSpec,
    chosen: BTreeMap<PolicyId, Chosen>,
    work_dir: PathBuf,
    now: DateTime<Utc>,
    on_committed: impl FnMut(u32) + Send + 'static,
) -> Result<Outcome, WriteBackError> {
    run(
        remote,
        spec,
        chosen,
        work_dir,
        now,
        RoundOptions::default(),
        on_committed,
    )
    .await
}

async fn run(
    remote: Remote,
    spec: ImageUpdateSpec,
    chosen: BTreeMap<PolicyId, Chosen>,
    work_dir: PathBuf,
    now: DateTime<Utc>,
    round: RoundOptions,
    mut on_committed: impl FnMut(u32) + Send + 'static,
) -> Result<Outcome, WriteBackError> {
    if let Some(window) = &spec.window {
        let window = window.compile()?;
        if !window.is_open(now) {
            return Ok(Outcome::WindowClosed {
                next_open: window.next_open(now),
            });
        }
    }
    tokio::task::spawn_blocking(move || {
        push_blocking(
            &remote,
            &spec,
            &chosen,
            &work_dir,
            &round,
            &mut on_committed,
        )
    })
    .await
    .map_err(|e| WriteBackError::Task(e.to_string()))?
}

fn push_blocking(
    remote: &Remote,
    spec: &ImageUpdateSpec,
    chosen: &BTreeMap<PolicyId, Chosen>,
    work_dir: &Path,
    options: &RoundOptions,
    on_committed: &mut dyn FnMut(u32),
) -> Result<Outcome, WriteBackError> {
    let target = spec
        .git
        .push_branch
        .clone()
        .unwrap_or_else(|| spec.git.branch.clone());
    let author = Author {
        name: spec.git.commit.author_name.clone(),
        email: spec.git.commit.author_email.clone(),
    };
    for attempt in 1..=MAX_ATTEMPTS {
        let Round {
            repo,
            plan: planned,
            reverted,
            base_tip,
            replaces,
            ..
        } = plan_round(
            remote,
            spec,
            chosen,
            work_dir,
            options.rejected_head.as_deref(),
        )?;
        if planned.files.is_empty() {
            return Ok(Outcome::UpToDate {
                problems: planned.problems,
                reverted,
                proposed: proposal(&repo, base_tip)?,
            });
        }
        let changes: Vec<FileChange> = planned
            .files
            .iter()
            .map(|f| FileChange::Write {
                path: f.path.clone(),
                content: f.new_bytes.clone(),
            })
            .collect();
        let message = commit_message(&spec.git.commit.message_template, &planned.changes);
        let signer = options.signer.as_ref();
        let committed = git::commit_signed(&repo, &target, &changes, &author, &message, signer)?;
        let Some(commit) = committed else {
            return Ok(Outcome::UpToDate {
                problems: planned.problems,
                reverted,
                proposed: proposal(&repo, base_tip)?,
            });
        };
        on_committed(attempt);
        sluice_shared::failpoint::point("update.committed");
        let pushed = match replaces {
            Some(old) => git::push_replacing(&repo, remote, &target, old),
            None => git::push(&repo, remote, &target),
        };
        match pushed {
            Ok(()) => {
                sluice_shared::failpoint::point("update.pushed");
                return Ok(Outcome::Pushed {
                    commit: commit.to_string(),
                    branch: target,
                    changes: planned.changes,
                    problems: planned.problems,
                    reverted,
                    attempts: attempt,
                    proposed: proposal(&repo, base_tip)?,
                });
            }
            Err(GitError::NonFastForward { .. }) if attempt < MAX_ATTEMPTS => {
                tracing::info!(
                    branch = %target,
                    attempt,
                    "someone pushed first; fetching and planning again on their commit"
                );
                let millis = 100 * u64::from(attempt) + fastrand::u64(0..100);
                std::thread::sleep(Duration::from_millis(millis));
            }
            Err(GitError::NonFastForward { .. }) => break,
            Err(e) => return Err(e.into()),
        }
    }
    Err(WriteBackError::Contended {
        branch: target,
        attempts: MAX_ATTEMPTS,
    })
}

/// What the checked-out push branch proposes over `base_tip` (push-branch mode only).
fn proposal(
    repo: &git2::Repository,
    base_tip: Option<git2::Oid>,
) -> Result<Option<Vec<TrailerChange>>, GitError> {
    let Some(base_tip) = base_tip else {
        return Ok(None);
    };
    let head = repo.head()?.peel_to_commit()?.id();
    Ok(Some(proposed_between(repo, base_tip, head)?))
}
