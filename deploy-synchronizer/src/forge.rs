//! What the forge is told about a GitSync's revisions, decided from its status alone (pure).
//!
//! With `spec.forge` set, the history entries say everything the forge should show:
//! - **commit statuses**: an applied revision awaiting health is `pending`, a healthy one
//!   `success`, one that failed (apply or health) `failure`, one superseded before its verdict
//!   `error`. An entry records the state last set (`commitStatus`), so each turn is sent once
//!   and a forge that was down gets it at the next status write.
//! - **revert pull requests**: a revision whose revert was pushed (`rollbackBranch`) and has no
//!   pull request yet gets one (again at the next write when the forge was down).
//! - **superseded reverts**: an open revert pull request of a revision older than a healthy one
//!   is closed, with a comment naming the revision that fixed things.
//!
//! [`steps`] lists what to do; `reconcile/forge.rs` does it and records the results in the
//! entries, which the status write then persists.

use sluice_shared::forge::StatusState;

use crate::resource::{GitSyncStatus, HistoryEntry};
use crate::status::short;

/// How many of the newest history entries get commit statuses: older ones keep what they have.
const NEWEST: usize = 3;

/// The words of [`HistoryEntry::commit_status`] and of a pull request's state.
const OPEN: &str = "open";

/// One thing to tell the forge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Set the commit status of `revision` (history entry `entry`).
    Status {
        entry: usize,
        revision: String,
        state: StatusState,
        description: String,
    },
    /// Open the pull request of the revert pushed to `branch` for `revision`.
    OpenRevert {
        entry: usize,
        revision: String,
        branch: String,
    },
    /// Close the revert pull request `number` of `revision`: `by` became healthy since.
    CloseRevert {
        entry: usize,
        revision: String,
        number: u64,
        by: String,
    },
}

/// The state and description a history entry's commit status should have, if any.
pub fn commit_status(entry: &HistoryEntry) -> Option<(StatusState, String)> {
    let reason = entry.reason.as_deref().unwrap_or_default();
    if entry.failed_at.is_some() && reason.starts_with("Superseded") {
        return Some((StatusState::Error, reason.to_owned()));
    }
    if entry.failed_at.is_some() {
        let reason = if reason.is_empty() { "failed" } else { reason };
        return Some((StatusState::Failure, reason.to_owned()));
    }
    if entry.healthy_at.is_some() {
        return Some((StatusState::Success, "applied and healthy".to_owned()));
    }
    if entry.applied_at.is_some() {
        return Some((
            StatusState::Pending,
            "applied; waiting for it to become healthy".to_owned(),
        ));
    }
    None
}

/// What to tell the forge so it shows what `status` says.
pub fn steps(status: &GitSyncStatus) -> Vec<Step> {
    let mut steps = Vec::new();
    for (i, entry) in status.history.iter().enumerate().take(NEWEST) {
        if let Some((state, description)) = commit_status(entry)
            && entry.commit_status.as_deref() != Some(state.as_str())
        {
            steps.push(Step::Status {
                entry: i,
                revision: entry.revision.clone(),
                state,
                description,
            });
        }
    }
    for (i, entry) in status.history.iter().enumerate() {
        if let (Some(branch), None) = (&entry.rollback_branch, &entry.rollback_pull_request) {
            steps.push(Step::OpenRevert {
                entry: i,
                revision: entry.revision.clone(),
                branch: branch.clone(),
            });
        }
        let open = entry
            .rollback_pull_request
            .as_ref()
            .filter(|pr| pr.state == OPEN);
        let healthy_since = status.history[..i]
            .iter()
            .rev()
            .find(|newer| newer.healthy_at.is_some());
        if let (Some(pr), Some(newer)) = (open, healthy_since) {
            steps.push(Step::CloseRevert {
                entry: i,
                revision: entry.revision.clone(),
                number: pr.number,
                by: newer.revision.clone(),
            });
        }
    }
    steps
}

/// The comment on a revert pull request closed because `by` is healthy.
pub fn superseded_comment(revision: &str, by: &str) -> String {
    format!(
        "Revision {} is applied and healthy, so this revert of {} is no longer needed: \
         closed by Sluice. Open it again (or revert {} by hand) if you still want it.",
        short(by),
        short(revision),
        short(revision)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_shared::forge::PullRequestStatus;

    fn entry(revision: &str) -> HistoryEntry {
        HistoryEntry {
            revision: revision.repeat(40 / revision.len()),
            subject: format!("change {revision}"),
            applied_at: Some("2026-12-04T10:00:00Z".into()),
            ..HistoryEntry::default()
        }
    }

    fn status(history: Vec<HistoryEntry>) -> GitSyncStatus {
        GitSyncStatus {
            history,
            ..GitSyncStatus::default()
        }
    }

    #[test]
    fn each_turn_of_a_revision_is_one_commit_status() {
        let applied = entry("a");
        let healthy = HistoryEntry {
            healthy_at: Some("2026-12-04T10:01:00Z".into()),
            ..entry("b")
        };
        let failed = HistoryEntry {
            failed_at: Some("2026-12-04T10:06:00Z".into()),
            reason: Some("HealthTimeout: Deployment shop/web: Degraded".into()),
            ..entry("c")
        };
        let states = |e: &HistoryEntry| commit_status(e).map(|(s, _)| s);
        assert_eq!(states(&applied), Some(StatusState::Pending));
        assert_eq!(states(&healthy), Some(StatusState::Success));
        assert_eq!(states(&failed), Some(StatusState::Failure));
        let superseded = HistoryEntry {
            failed_at: Some("x".into()),
            reason: Some("Superseded: revision 1234567 was applied first".into()),
            ..entry("d")
        };
        assert_eq!(states(&superseded), Some(StatusState::Error));
        let rendered_nothing = HistoryEntry {
            applied_at: None,
            ..entry("e")
        };
        assert_eq!(states(&rendered_nothing), None);

        // Sent once: an entry that records the state needs nothing more.
        let told = HistoryEntry {
            commit_status: Some("pending".into()),
            ..entry("a")
        };
        assert!(steps(&status(vec![told.clone()])).is_empty());
        let now_healthy = HistoryEntry {
            healthy_at: Some("t".into()),
            ..told
        };
        assert!(matches!(
            &steps(&status(vec![now_healthy]))[..],
            [Step::Status {
                state: StatusState::Success,
                entry: 0,
                ..
            }]
        ));
    }

    #[test]
    fn a_pushed_revert_gets_its_pull_request_and_a_healthy_newer_revision_closes_it() {
        let failed = HistoryEntry {
            failed_at: Some("t".into()),
            commit_status: Some("failure".into()),
            rollback_branch: Some("sluice/rollback/ccccccc".into()),
            ..entry("c")
        };
        let steps_now = steps(&status(vec![failed.clone()]));
        assert_eq!(
            steps_now,
            [Step::OpenRevert {
                entry: 0,
                revision: "c".repeat(40),
                branch: "sluice/rollback/ccccccc".into()
            }]
        );
        let proposed = HistoryEntry {
            rollback_pull_request: Some(PullRequestStatus {
                number: 9,
                url: "http://forge/pulls/9".into(),
                state: "open".into(),
            }),
            ..failed
        };
        // Still the newest: nothing to do.
        assert!(steps(&status(vec![proposed.clone()])).is_empty());
        // A fix became healthy: close it, naming the fix.
        let fix = HistoryEntry {
            healthy_at: Some("t".into()),
            commit_status: Some("success".into()),
            ..entry("f")
        };
        let now = steps(&status(vec![fix, proposed.clone()]));
        assert_eq!(
            now,
            [Step::CloseRevert {
                entry: 1,
                revision: "c".repeat(40),
                number: 9,
                by: "f".repeat(40)
            }]
        );
        // A newer revision that is not healthy (yet) closes nothing.
        let pending = HistoryEntry {
            commit_status: Some("pending".into()),
            ..entry("g")
        };
        assert!(steps(&status(vec![pending, proposed])).is_empty());
        assert!(superseded_comment(&"c".repeat(40), &"f".repeat(40)).contains("fffffff"));
    }
}
