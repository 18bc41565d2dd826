//! What a sync's status says, decided in pure code: conditions with actionable reasons, the
//! history of revisions, the health verdict, and what the next reconcile should do. The
//! reconciler reads the cluster and writes the result; nothing here does I/O.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::health::{self, Health, HealthStatus};
use crate::object::ObjectRef;
use crate::resource::{GitSyncStatus, HISTORY_LIMIT, HistoryEntry};

/// Condition types.
pub const READY: &str = "Ready";
pub const HEALTHY: &str = "Healthy";
pub const STALLED: &str = "Stalled";
/// With `spec.forge`: whether the forge shows what the status says (commit statuses, revert pull
/// requests); False with the forge's reason (`ForgeAuth`, `ForgeUnreachable`…) while it cannot.
pub const FORGE: &str = "ForgeUpToDate";

/// Why a sync is not Ready. Each says where to look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureReason {
    /// The source could not be fetched (network, credentials, ref).
    GitFailed,
    /// The checkout did not render (YAML, Kustomize).
    RenderFailed,
    /// The plan refused the render (namespaces, unknown kinds, ownership, empty render).
    PlanRefused,
    /// The server-side dry-run refused objects.
    ValidationFailed,
    /// Applying (or reading the cluster) failed after validation.
    ApplyFailed,
    /// The spec cannot be used (an interval or timeout that is no duration).
    InvalidSpec,
    /// The platform team's lockdown refuses the spec (a reference to another namespace).
    AccessDenied,
}

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GitFailed => "GitFailed",
            Self::RenderFailed => "RenderFailed",
            Self::PlanRefused => "PlanRefused",
            Self::ValidationFailed => "ValidationFailed",
            Self::ApplyFailed => "ApplyFailed",
            Self::InvalidSpec => "InvalidSpec",
            Self::AccessDenied => "AccessDenied",
        }
    }

    /// Whether only a change to Git or the spec can fix it (retrying the same input will not).
    pub fn is_stalled(self) -> bool {
        matches!(
            self,
            Self::RenderFailed
                | Self::PlanRefused
                | Self::ValidationFailed
                | Self::InvalidSpec
                | Self::AccessDenied
        )
    }
}

/// Parses `30s`, `5m`, `1h30m`, `500ms`, `2h`: what `interval` and `healthTimeout` hold.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    sluice_shared::duration::parse(text).map_err(|e| e.to_string())
}

/// Sets condition `type_`, keeping its transition time when its status does not change.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) {
    let status = if status { "True" } else { "False" };
    set_condition_status(conditions, type_, status, reason, message, generation, now);
}

/// [`set_condition`] for any status, `Unknown` included.
pub fn set_condition_status(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) {
    let transition = conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone());
    conditions.retain(|c| c.type_ != type_);
    conditions.push(Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        // The apiserver caps condition messages at 32768 bytes.
        message: truncate(message, 32_000),
        observed_generation: generation,
        last_transition_time: transition.unwrap_or(Time(now)),
    });
    conditions.sort_by_key(|c| match c.type_.as_str() {
        READY => 0,
        HEALTHY => 1,
        STALLED => 2,
        FORGE => 3,
        _ => 4,
    });
}

/// The condition of type `type_`.
pub fn condition<'a>(status: &'a GitSyncStatus, type_: &str) -> Option<&'a Condition> {
    status.conditions.iter().find(|c| c.type_ == type_)
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// `abc1234` of a commit id.
pub fn short(revision: &str) -> &str {
    &revision[..revision.len().min(7)]
}

/// Records a failed attempt at `revision` (when it got that far): Ready=False with the reason,
/// Stalled when only a change can fix it, and a history entry for a revision never seen before.
pub fn record_failure(
    status: &mut GitSyncStatus,
    revision: Option<(&str, &str)>,
    reason: FailureReason,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) {
    if let Some((revision, subject)) = revision {
        status.last_attempted_revision = Some(revision.to_owned());
        let known = status
            .history
            .first()
            .is_some_and(|h| h.revision == revision);
        if !known {
            push_history(
                status,
                HistoryEntry {
                    revision: revision.to_owned(),
                    subject: subject.to_owned(),
                    failed_at: Some(now.to_string()),
                    reason: Some(reason.as_str().to_owned()),
                    ..HistoryEntry::default()
                },
            );
        }
    }
    status.observed_generation = generation;
    set_condition(
        &mut status.conditions,
        READY,
        false,
        reason.as_str(),
        message,
        generation,
        now,
    );
    let stalled_message = if reason.is_stalled() {
        "fix the source (or the spec) as the Ready condition says; retrying the same input cannot succeed"
    } else {
        "retrying with backoff"
    };
    set_condition(
        &mut status.conditions,
        STALLED,
        reason.is_stalled(),
        reason.as_str(),
        stalled_message,
        generation,
        now,
    );
}

/// Records a successful apply of `revision`: Ready=True, the inventory, and a history entry when
/// the revision is new (or had failed before).
/// Whether applying `commit` with the chart `inputs` at spec `generation` is an install or an
/// upgrade, as Helm would call it (and runs its hooks): anything but what the status says is
/// applied, Ready. A failed attempt is not Ready, so the hooks run again on its retry.
pub fn is_upgrade(
    status: &GitSyncStatus,
    commit: &str,
    inputs: &Option<String>,
    generation: Option<i64>,
) -> bool {
    status.last_applied_revision.as_deref() != Some(commit)
        || status.last_applied_inputs != *inputs
        || status.observed_generation != generation
        || condition(status, READY).is_none_or(|c| c.status != "True")
}

pub fn record_applied(
    status: &mut GitSyncStatus,
    revision: &str,
    subject: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) {
    status.last_attempted_revision = Some(revision.to_owned());
    status.last_applied_revision = Some(revision.to_owned());
    status.observed_generation = generation;
    match status.history.first_mut() {
        Some(entry) if entry.revision == revision && entry.applied_at.is_some() => {}
        Some(entry) if entry.revision == revision => {
            entry.applied_at = Some(now.to_string());
            entry.failed_at = None;
            entry.reason = None;
        }
        _ => {
            if let Some(entry) = status.history.first_mut().filter(|entry| {
                entry.applied_at.is_some()
                    && entry.healthy_at.is_none()
                    && entry.failed_at.is_none()
            }) {
                entry.reason = Some(format!(
                    "Superseded: revision {} was applied before this one became healthy",
                    short(revision)
                ));
            }
            push_history(
                status,
                HistoryEntry {
                    revision: revision.to_owned(),
                    subject: subject.to_owned(),
                    applied_at: Some(now.to_string()),
                    ..HistoryEntry::default()
                },
            );
        }
    }
    set_condition(
        &mut status.conditions,
        READY,
        true,
        "Applied",
        message,
        generation,
        now,
    );
    set_condition(
        &mut status.conditions,
        STALLED,
        false,
        "Applied",
        "the last revision was applied",
        generation,
        now,
    );
}

fn push_history(status: &mut GitSyncStatus, entry: HistoryEntry) {
    status.history.insert(0, entry);
    status.history.truncate(HISTORY_LIMIT);
}

/// Whether the applied revision's health is still being waited for.
pub fn health_pending(status: &GitSyncStatus) -> bool {
    let Some(applied) = status.last_applied_revision.as_deref() else {
        return false;
    };
    status.history.first().is_some_and(|entry| {
        entry.revision == applied
            && entry.applied_at.is_some()
            && entry.healthy_at.is_none()
            && entry.failed_at.is_none()
    })
}

/// The health of a revision applied over `before`, when it is known without reading the
/// cluster: the revision before was assessed Healthy, and every object this one sent is of a kind
/// whose health is its existence ([`health::decided_by_metadata`]: ConfigMaps, Secrets, RBAC…).
/// The objects not sent are as they were when assessed; those sent exist, as applied. `None`:
/// the health must be assessed (a workload was sent, or the last assessment was not Healthy).
///
/// This is what lets a commit that changes one ConfigMap among a thousand objects write its
/// status once, with its health, instead of reading the thousand objects again first.
pub fn carried_health<'a>(
    before: &GitSyncStatus,
    sent: impl IntoIterator<Item = &'a ObjectRef>,
    objects: usize,
) -> Option<Health> {
    let assessed_healthy = before.health.as_deref() == Some(HealthStatus::Healthy.as_str())
        && before.history.first().is_some_and(|entry| {
            before.last_applied_revision.as_deref() == Some(entry.revision.as_str())
                && entry.healthy_at.is_some()
        });
    let existence_only = sent
        .into_iter()
        .all(|id| health::decided_by_metadata(&id.group, &id.kind));
    (assessed_healthy && existence_only).then(|| health::all_healthy(objects))
}

/// What the health wait concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not healthy yet, still within the timeout: look again soon.
    Waiting,
    Healthy,
    /// Not healthy within the timeout.
    TimedOut,
    /// The wait was over before (healthy or failed): health is just reported.
    Settled,
}

/// Records `health` of the applied objects: `status.health`, the Healthy condition and, while
/// the applied revision is being waited for, its history entry's healthy or failed time.
pub fn record_health(
    status: &mut GitSyncStatus,
    health: &Health,
    timeout: Duration,
    generation: Option<i64>,
    now: Timestamp,
) -> Verdict {
    status.health = Some(health.status.as_str().to_owned());
    let pending = health_pending(status);
    let healthy = health.status == HealthStatus::Healthy;
    let mut verdict = if pending {
        Verdict::Waiting
    } else {
        Verdict::Settled
    };
    let mut reason = health.status.as_str().to_owned();
    let mut message = health.message.clone();
    if let Some(entry) = status.history.first_mut().filter(|_| pending) {
        let applied_at = entry
            .applied_at
            .as_deref()
            .and_then(|t| t.parse::<Timestamp>().ok())
            .unwrap_or(now);
        let waited = now.duration_since(applied_at);
        if healthy {
            entry.healthy_at = Some(now.to_string());
            verdict = Verdict::Healthy;
        } else if waited.as_secs_f64() >= timeout.as_secs_f64() {
            entry.failed_at = Some(now.to_string());
            entry.reason = Some(format!("HealthTimeout: {health}"));
            verdict = Verdict::TimedOut;
            reason = "HealthTimeout".to_owned();
            message = format!(
                "not healthy within the health timeout ({}s): {health}",
                timeout.as_secs()
            );
        }
    }
    // A revision that timed out stays reported as such until it becomes healthy.
    let timed_out_before = !pending
        && !healthy
        && status.history.first().is_some_and(|entry| {
            Some(entry.revision.as_str()) == status.last_applied_revision.as_deref()
                && entry.healthy_at.is_none()
                && entry
                    .reason
                    .as_deref()
                    .is_some_and(|r| r.starts_with("HealthTimeout"))
        });
    if timed_out_before {
        reason = "HealthTimeout".to_owned();
        message = format!(
            "revision {} was not healthy within the health timeout ({}s); now {health}",
            status
                .last_applied_revision
                .as_deref()
                .map(short)
                .unwrap_or(""),
            timeout.as_secs()
        );
    }
    let condition_status = match (healthy, verdict) {
        (true, _) => "True",
        (false, Verdict::Waiting) if health.status != HealthStatus::Degraded => "Unknown",
        _ => "False",
    };
    set_condition_status(
        &mut status.conditions,
        HEALTHY,
        condition_status,
        &reason,
        &message,
        generation,
        now,
    );
    verdict
}

/// Exponential backoff after `failures` consecutive failures: 1 s, 2 s, 4 s… capped at `cap`.
pub fn backoff(failures: u32, cap: Duration) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    Duration::from_secs(1 << exponent)
        .min(cap)
        .max(Duration::from_secs(1))
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
