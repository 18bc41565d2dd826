//! What an `ImageUpdate`'s status says, decided in pure code.
//!
//! From the status as stored, the changes that wait and the batcher, [`decide`] tells what the
//! reconcile does ([`Step`]: push now, or look again later) and what the status says meanwhile;
//! after a round, [`record`] (it ran) or [`failed`] (git failed) turn the outcome into a
//! [`Verdict`]: the next status, the events to publish, when to look again. The reconciler
//! (`update.rs`) reads the cluster and the branch, acts, and writes the verdict in one place,
//! never an unchanged status; nothing here does I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use super::status::{READY, set_ready, timestamp};
use crate::edit::PolicyId;
use crate::resource::{ImageUpdateStatus, PendingChange as PendingEntry};
use crate::schedule::{Batcher, Decision, Pending, PendingChange};
use crate::writeback::{Chosen, Outcome, Problem, ProblemKind};
use sluice_shared::forge::PullRequestStatus;

/// How often an idle `ImageUpdate` is looked at again without any policy changing.
pub const IDLE_RECHECK: Duration = Duration::from_secs(300);

/// What this reconcile does once the batcher has decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    /// Push a commit now: a batch whose time came (its changes), or the idle re-read of the
    /// branch (no changes; a person's revert is noticed, a value changed by hand written again).
    Push(Vec<PendingChange<PolicyId, Chosen>>),
    /// Write the status and look again after this long.
    Requeue(Duration),
}

/// What a reconcile knows before it decides, besides the stored status and the batcher.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Facts {
    /// `metadata.generation` of the `ImageUpdate`.
    pub generation: Option<i64>,
    /// `status.pending` as it reads now: each waiting change, with its files when the branch
    /// could be read (see `pending::pending_status`); empty when nothing waits.
    pub waiting: Vec<PendingEntry>,
    /// Why the files of the waiting changes could not be listed, if so.
    pub preview_failed: Option<String>,
    /// `spec.interval`: how often the branch is read even when nothing changed.
    pub interval: Duration,
    /// When a round last read the branch.
    pub checked_at: Option<DateTime<Utc>>,
}

/// The decision on a round that ran or failed: the next status and the events to publish
/// (both written by the reconciler's one writer), and when to look again.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Verdict {
    pub next: ImageUpdateStatus,
    pub events: Vec<Note>,
    /// When to reconcile again (a failed round is retried by the error backoff instead).
    pub requeue: Duration,
}

/// One Kubernetes event about the `ImageUpdate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Note {
    pub warning: bool,
    pub reason: String,
    pub message: String,
}

impl Verdict {
    /// A verdict with no events.
    pub fn quiet(next: ImageUpdateStatus, requeue: Duration) -> Self {
        Verdict {
            next,
            events: Vec::new(),
            requeue,
        }
    }
}

/// The status of an `ImageUpdate` whose spec cannot be used (`message` says why).
pub(super) fn invalid(
    stored: &ImageUpdateStatus,
    generation: Option<i64>,
    message: &str,
) -> ImageUpdateStatus {
    let mut next = stored.clone();
    next.observed_generation = generation;
    next.conditions = set_ready(&stored.conditions, false, "Invalid", message, generation);
    next
}

/// Lets the batcher decide on `pending` at `now` (a batch whose time came is taken out of
/// `pending`, see [`Batcher::decide`]) and says what the status reads until the next round:
/// the waiting changes, when they go out and why they wait, or "nothing to write".
pub(super) fn decide(
    stored: &ImageUpdateStatus,
    facts: &Facts,
    batcher: &Batcher,
    pending: &mut Pending<PolicyId, Chosen>,
    now: DateTime<Utc>,
) -> (Step, ImageUpdateStatus) {
    let generation = facts.generation;
    let mut next = stored.clone();
    next.observed_generation = generation;
    next.pending = facts.waiting.clone();
    next.pending_count = facts.waiting.len() as i32;
    next.next_push_time = None;
    let ready = |reason: &str, message: &str, ok: bool| {
        set_ready(&stored.conditions, ok, reason, message, generation)
    };
    let step = match batcher.decide(pending, now) {
        Decision::Idle => {
            let left = interval_left(facts.checked_at, now, facts.interval);
            let due = left.is_zero();
            let window_open = batcher.window().is_none_or(|w| w.is_open(now));
            if due && window_open {
                return (Step::Push(Vec::new()), next);
            }
            if !stored.conditions.iter().any(|c| c.type_ == READY) {
                next.conditions = ready("UpToDate", "nothing to write", true);
            }
            Step::Requeue(if due { facts.interval } else { left })
        }
        Decision::WindowNeverOpens => {
            let message = "changes are pending but the update window never opens again";
            next.conditions = ready("WindowNeverOpens", message, false);
            Step::Requeue(IDLE_RECHECK)
        }
        Decision::WaitUntil(at) => {
            next.next_push_time = Some(timestamp(at));
            let for_window = batcher.window().is_some_and(|w| !w.is_open(now));
            let (reason, message) = waiting_message(next.pending_count, at, for_window);
            let message = match &facts.preview_failed {
                Some(e) => format!("{message} (the files cannot be listed: {e})"),
                None => message,
            };
            next.conditions = ready(reason, &message, true);
            Step::Requeue(until(at, now))
        }
        Decision::PushNow { changes } => Step::Push(changes),
    };
    (step, next)
}

/// Why `count` changes wait until `at`, as `(reason, message)`: the window, or the batch delay.
fn waiting_message(count: i32, at: DateTime<Utc>, for_window: bool) -> (&'static str, String) {
    let at = timestamp(at);
    if for_window {
        (
            "WaitingForWindow",
            format!("{count} change(s) wait for the update window, which opens at {at}"),
        )
    } else {
        (
            "Batching",
            format!("{count} change(s) go out together at {at}"),
        )
    }
}

/// The verdict on a round that ran (`next` is what [`decide`] said before it): pushed, up to
/// date, or the window closed before it could start. Problems of the repository are named in
/// the `Ready` condition and, once per new message, in a Warning event; `known` are the
/// policies of the namespace (a marker of one that has not chosen yet is no problem).
pub(super) fn record(
    stored: &ImageUpdateStatus,
    mut next: ImageUpdateStatus,
    outcome: &Outcome,
    known: &BTreeSet<PolicyId>,
    interval: Duration,
    now: DateTime<Utc>,
) -> Verdict {
    let generation = next.observed_generation;
    let problems = reportable(outcome.problems(), known);
    let mut events = Vec::new();
    let mut requeue = interval;
    match outcome {
        Outcome::Pushed {
            commit,
            branch,
            changes,
            ..
        } => {
            next.last_push_commit = Some(commit.clone());
            next.last_push_time = Some(timestamp(now));
            next.pending.clear();
            next.pending_count = 0;
            let lines: Vec<String> = changes
                .iter()
                .map(|c| format!("{}: {} {} → {}", c.file, c.image, c.old, c.new))
                .collect();
            let message = format!(
                "pushed {} to {branch}: {}",
                &commit[..commit.len().min(12)],
                lines.join("; ")
            );
            events.push(note(false, "Pushed", &message));
            next.conditions =
                ready_with_problems(stored, "Pushed", &message, &problems, generation);
        }
        Outcome::UpToDate { .. } => {
            next.pending.clear();
            next.pending_count = 0;
            let message = "the branch holds every chosen image";
            next.conditions =
                ready_with_problems(stored, "UpToDate", message, &problems, generation);
        }
        Outcome::WindowClosed { next_open } => {
            let at = next_open.map(timestamp);
            next.next_push_time = at.clone();
            let message = match &at {
                Some(at) => format!(
                    "{} change(s) wait for the update window, which opens at {at}",
                    next.pending_count
                ),
                None => "the update window never opens again".to_owned(),
            };
            next.conditions = set_ready(
                &stored.conditions,
                true,
                "WaitingForWindow",
                &message,
                generation,
            );
            if let Some(open) = next_open {
                requeue = until(*open, now);
            }
        }
    }
    // Files skipped and markers left alone: a Warning naming them, once per new list.
    if !problems.is_empty() && ready_message(&next) != ready_message(stored) {
        let message = format!("left alone: {}", problems.join("; "));
        events.push(note(true, "RepositoryProblems", &message));
    }
    Verdict {
        next,
        events,
        requeue,
    }
}

/// `verdict` (a round that ran) with the push branch's pull request as the round left it and
/// the events of its turns (pull-request mode).
pub(super) fn with_pull_request(
    mut verdict: Verdict,
    status: Option<PullRequestStatus>,
    notes: Vec<Note>,
) -> Verdict {
    if status.is_some() {
        verdict.next.pull_request = status;
    }
    verdict.events.extend(notes);
    verdict
}

/// `verdict` (a round that ran) when the forge then failed to take its pull request (`reason`
/// such as `ForgeUnreachable`): what was pushed stays recorded, Ready=False says the pull request
/// is missing or stale and why; a Warning event when the reason is new. The next round proposes
/// it again (nothing is lost: the commits are on the push branch).
pub(super) fn proposal_failed(
    stored: &ImageUpdateStatus,
    mut verdict: Verdict,
    reason: &str,
    error: &str,
) -> Verdict {
    let generation = verdict.next.observed_generation;
    let message = format!("the pull request could not be opened or updated: {error}");
    verdict.next.conditions = set_ready(&stored.conditions, false, reason, &message, generation);
    if stored.conditions.first().map(|c| c.reason.as_str()) != Some(reason) {
        verdict.events.push(note(true, reason, &message));
    }
    verdict
}

/// The verdict on a round whose git work failed (`reason` such as `GitAuth`, `error` the
/// failure): Ready=False, the changes listed as waiting again (`waiting`, without files), a
/// Warning event when the reason is new.
pub(super) fn failed(
    stored: &ImageUpdateStatus,
    mut next: ImageUpdateStatus,
    waiting: Vec<PendingEntry>,
    reason: &str,
    error: &str,
    interval: Duration,
) -> Verdict {
    let generation = next.observed_generation;
    next.pending_count = waiting.len() as i32;
    next.pending = waiting;
    let message = format!("write-back failed: {error}");
    next.conditions = set_ready(&stored.conditions, false, reason, &message, generation);
    let mut events = Vec::new();
    if stored.conditions.first().map(|c| c.reason.as_str()) != Some(reason) {
        events.push(note(true, reason, &message));
    }
    Verdict {
        next,
        events,
        requeue: interval,
    }
}

/// The tags a person rolled back in git, by the name of their policy in namespace `ns` (the
/// policies of other namespaces are not this `ImageUpdate`'s to block): each goes into that
/// policy's `status.blockedTags`.
pub(super) fn reverted_tags(outcome: &Outcome, ns: &str) -> BTreeMap<String, Vec<String>> {
    let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in outcome.reverted() {
        if let Some(tag) = r.new_tag()
            && r.policy.namespace == ns
        {
            tags.entry(r.policy.name.clone())
                .or_default()
                .push(tag.to_owned());
        }
    }
    tags
}

fn note(warning: bool, reason: &str, message: &str) -> Note {
    Note {
        warning,
        reason: reason.to_owned(),
        message: message.to_owned(),
    }
}

/// The problems worth reporting, as `file:line: what`: a marker naming a policy that exists but
/// has not chosen yet is no problem of the repository (the policy's own status says why).
pub(super) fn reportable(problems: &[Problem], known: &BTreeSet<PolicyId>) -> Vec<String> {
    problems
        .iter()
        .filter(|p| {
            !matches!(p.kind, ProblemKind::UnknownPolicy { .. })
                || p.policy.as_ref().is_none_or(|id| !known.contains(id))
        })
        .map(ToString::to_string)
        .collect()
}

/// The message of the `Ready` condition, if any.
fn ready_message(status: &ImageUpdateStatus) -> Option<String> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == READY)
        .map(|c| c.message.clone())
}

/// Ready=True with `reason`, or `<reason>WithProblems` naming the problems when there are any.
fn ready_with_problems(
    status: &ImageUpdateStatus,
    reason: &str,
    message: &str,
    problems: &[String],
    generation: Option<i64>,
) -> Vec<Condition> {
    if problems.is_empty() {
        return set_ready(&status.conditions, true, reason, message, generation);
    }
    let message = format!("{message}; problems: {}", problems.join("; "));
    set_ready(
        &status.conditions,
        true,
        &format!("{reason}WithProblems"),
        &message,
        generation,
    )
}

/// How long from `now` until `at`, at least 100 ms (a requeue of zero would spin).
pub(super) fn until(at: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (at - now)
        .to_std()
        .unwrap_or_default()
        .max(Duration::from_millis(100))
}

/// How long until the branch is due to be read again, `interval` after `checked_at`; zero
/// when due (never read, or a clock that went back).
pub(super) fn interval_left(
    checked_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    interval: Duration,
) -> Duration {
    let Some(at) = checked_at else {
        return Duration::ZERO;
    };
    match (now - at).to_std() {
        Ok(elapsed) => interval.saturating_sub(elapsed),
        Err(_) => Duration::ZERO,
    }
}

#[cfg(test)]
#[path = "update_status_tests.rs"]
mod tests;
