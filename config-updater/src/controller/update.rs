//! The `ImageUpdate` reconciler: gather the chosen images of the namespace's `ImagePolicies`,
//! record the ones not yet written as pending, let the [`Batcher`] decide, and push one commit
//! with [`push_update_signed`]. Runs whenever an `ImagePolicy` of its namespace changes, and
//! when the batcher asks to decide again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use serde_json::json;
use sluice_shared::git::Remote;

use super::credentials::{commit_signer, git_auth};
use super::pending::{self, Waiting, pending_status};
use super::policy::block_tags;
use super::state::UpdateState;
use super::status::{publish, set_ready, timestamp};
use super::{Context, Error, key_of};
use crate::edit::{ImageRef, PolicyId};
use crate::resource::{ImagePolicy, ImageUpdate, ImageUpdateStatus};
use crate::scan::config::parse_interval;
use crate::schedule::{Batcher, Decision, NextPush, PendingChange};
use crate::writeback::{Chosen, Outcome, Problem, ProblemKind, push_update_signed};

/// How often an idle `ImageUpdate` is looked at again without any policy changing.
pub const IDLE_RECHECK: Duration = Duration::from_secs(300);

/// What this reconcile does once the batcher has decided: push a commit now (the idle re-read
/// of the branch, or a batch whose time came), or only requeue.
enum Step {
    Push(Vec<PendingChange<PolicyId, Chosen>>),
    Requeue(Action),
}

pub async fn reconcile(update: Arc<ImageUpdate>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let key = key_of(update.as_ref());
    let result = reconcile_inner(&update, &ctx, &key).await;
    ctx.finish("ImageUpdate", &key, started, result)
}

/// `0s` (push at once) or a duration such as `30s`.
pub fn parse_batch_delay(text: &str) -> Result<Duration, String> {
    match text.trim() {
        "0" | "0s" | "" => Ok(Duration::ZERO),
        other => parse_interval(other)
            .map_err(|_| format!("batchDelay {other:?} is not a duration such as 0s, 30s or 5m")),
    }
}

/// The chosen image of every ready policy, by policy.
pub fn chosen_of(policies: &[ImagePolicy]) -> BTreeMap<PolicyId, Chosen> {
    policies
        .iter()
        .filter_map(|p| {
            let latest = p.status.as_ref()?.latest_ref.as_ref()?;
            let image =
                ImageRef::new(&latest.name, Some(&latest.tag), latest.digest.as_deref()).ok()?;
            let id = PolicyId {
                namespace: p.namespace().unwrap_or_default(),
                name: p.name_any(),
            };
            Some((id, Chosen { image }))
        })
        .collect()
}

async fn reconcile_inner(update: &ImageUpdate, ctx: &Context, key: &str) -> Result<Action, Error> {
    let ns = update.namespace().unwrap_or_default();
    if update.metadata.deletion_timestamp.is_some() {
        ctx.state.forget_update(key);
        return Ok(Action::await_change());
    }
    if update.spec.suspend {
        return Ok(Action::await_change());
    }
    let generation = update.metadata.generation;
    // Decided on the status as stored, not on the controller's copy: that copy can lag this
    // reconciler's own last write (an ImagePolicy's change can start the next reconcile before
    // the watch brings the write back), and a decision on it would undo the write, say a push's
    // PushedWithProblems replaced by "nothing to write".
    let api: Api<ImageUpdate> = Api::namespaced(ctx.client.clone(), &ns);
    let Some(stored) = api.get_opt(&update.name_any()).await? else {
        return Ok(Action::await_change());
    };
    let status = stored.status.unwrap_or_default();
    let mut next = status.clone();
    next.observed_generation = generation;

    let (batcher, interval) = match batcher_of(update) {
        Ok(b) => b,
        Err(message) => {
            next.conditions = set_ready(&status.conditions, false, "Invalid", &message, generation);
            write(ctx, update, &status, &next).await?;
            return Err(Error::Invalid(message));
        }
    };
    let policies: Api<ImagePolicy> = Api::namespaced(ctx.client.clone(), &ns);
    let listed = policies.list(&ListParams::default()).await?.items;
    let chosen = chosen_of(&listed);
    let known: BTreeSet<PolicyId> = listed
        .iter()
        .map(|p| PolicyId {
            namespace: p.namespace().unwrap_or_default(),
            name: p.name_any(),
        })
        .collect();
    let now = Utc::now();
    let waits = ctx.state.with_update(key, |s| {
        s.written.retain(|id, _| chosen.contains_key(id));
        for (id, c) in &chosen {
            if s.written.get(id) != Some(c) {
                s.pending.record(id.clone(), c.clone(), now);
            } else {
                s.pending.withdraw(id);
            }
        }
        match batcher.next_push(&s.pending, now) {
            NextPush::At(at) => at > now,
            NextPush::Never => true,
            NextPush::Nothing => false,
        }
    });
    // Changes that wait are listed in status with their files: plan on the branch's head.
    let mut waiting = Vec::new();
    let mut preview_failed = None;
    if waits {
        let plan = match preview_cached(update, ctx, &ns, key, &chosen).await {
            Ok(changes) => Some(changes),
            Err(e) => {
                tracing::warn!(update = key, error = %e, "cannot read the branch to list the pending changes");
                preview_failed = Some(e.to_string());
                None
            }
        };
        waiting = ctx.state.with_update(key, |s| {
            let (entries, settled) = pending_status(&waiting_of(s, &chosen), plan.as_deref());
            for id in settled {
                // The branch holds it already (or a problem keeps it out): nothing to wait for.
                s.pending.withdraw(&id);
                if let Some(c) = chosen.get(&id) {
                    s.written.insert(id, c.clone());
                }
            }
            entries
        });
    }
    let decision = ctx
        .state
        .with_update(key, |s| batcher.decide(&mut s.pending, now));
    next.pending_count = waiting.len() as i32;
    next.pending = waiting;
    next.next_push_time = None;

    let step = match decision {
        Decision::Idle => {
            // Read the branch every `interval` even when nothing changed: a person's revert
            // is noticed (and blocked), a value changed by hand is written again.
            let checked_at = ctx.state.with_update(key, |s| s.checked_at);
            let left = interval_left(checked_at, now, interval);
            let due = left.is_zero();
            let window_open = batcher.window().is_none_or(|w| w.is_open(now));
            if due && window_open {
                Step::Push(Vec::new())
            } else {
                if !status.conditions.iter().any(|c| c.type_ == "Ready") {
                    next.conditions = set_ready(
                        &status.conditions,
                        true,
                        "UpToDate",
                        "nothing to write",
                        generation,
                    );
                }
                Step::Requeue(Action::requeue(if due { interval } else { left }))
            }
        }
        Decision::WindowNeverOpens => {
            next.conditions = set_ready(
                &status.conditions,
                false,
                "WindowNeverOpens",
                "changes are pending but the update window never opens again",
                generation,
            );
            Step::Requeue(Action::requeue(IDLE_RECHECK))
        }
        Decision::WaitUntil(at) => {
            next.next_push_time = Some(timestamp(at));
            let waiting_for_window = batcher.window().is_some_and(|w| !w.is_open(now));
            let (reason, message) = if waiting_for_window {
                (
                    "WaitingForWindow",
                    format!(
                        "{} change(s) wait for the update window, which opens at {}",
                        next.pending_count,
                        timestamp(at)
                    ),
                )
            } else {
                (
                    "Batching",
                    format!(
                        "{} change(s) go out together at {}",
                        next.pending_count,
                        timestamp(at)
                    ),
                )
            };
            let message = match &preview_failed {
                Some(e) => format!("{message} (the files cannot be listed: {e})"),
                None => message,
            };
            next.conditions = set_ready(&status.conditions, true, reason, &message, generation);
            Step::Requeue(Action::requeue(until(at, now)))
        }
        Decision::PushNow { changes } => Step::Push(changes),
    };
    let action = match step {
        Step::Requeue(action) => action,
        Step::Push(changes) => {
            ctx.state.with_update(key, |s| s.checked_at = Some(now));
            match push_round(update, ctx, &ns, key, chosen.clone(), now).await {
                Ok(outcome) => {
                    let chosen = (&chosen, &known);
                    record_outcome(
                        update, ctx, &ns, key, &status, &mut next, outcome, chosen, changes,
                    )
                    .await?
                }
                Err(e) => {
                    let batch = (&chosen, changes);
                    return push_failed(update, ctx, key, &status, &mut next, batch, e).await;
                }
            }
        }
    };
    write(ctx, update, &status, &next).await?;
    Ok(action)
}

#[allow(clippy::too_many_arguments)]
async fn record_outcome(
    update: &ImageUpdate,
    ctx: &Context,
    ns: &str,
    key: &str,
    status: &ImageUpdateStatus,
    next: &mut ImageUpdateStatus,
    outcome: Outcome,
    (chosen, known): (&BTreeMap<PolicyId, Chosen>, &BTreeSet<PolicyId>),
    changes: Vec<PendingChange<PolicyId, Chosen>>,
) -> Result<Action, Error> {
    let generation = update.metadata.generation;
    let mut reverted: BTreeMap<PolicyId, Vec<String>> = BTreeMap::new();
    for r in outcome.reverted() {
        if let Some(tag) = r.new_tag() {
            reverted
                .entry(r.policy.clone())
                .or_default()
                .push(tag.to_owned());
        }
    }
    for (policy, tags) in &reverted {
        if policy.namespace == ns {
            block_tags(ctx, ns, &policy.name, tags).await?;
        }
    }
    let problems = reportable(outcome.problems(), known);
    let interval = batcher_of(update).map_or(IDLE_RECHECK, |(_, i)| i);
    let mut action = Action::requeue(interval);
    let previous = ready_message(status);
    match outcome {
        Outcome::Pushed {
            commit,
            branch,
            changes: made,
            ..
        } => {
            ctx.state
                .with_update(key, |s| s.written.extend(chosen.clone()));
            next.last_push_commit = Some(commit.clone());
            next.last_push_time = Some(timestamp(Utc::now()));
            next.pending.clear();
            next.pending_count = 0;
            let lines: Vec<String> = made
                .iter()
                .map(|c| format!("{}: {} {} → {}", c.file, c.image, c.old, c.new))
                .collect();
            let message = format!(
                "pushed {} to {branch}: {}",
                &commit[..commit.len().min(12)],
                lines.join("; ")
            );
            tracing::info!(update = key, commit = %commit, branch = %branch, changes = made.len(), "pushed");
            publish(ctx, update, false, "Pushed", &message).await;
            next.conditions =
                ready_with_problems(status, "Pushed", &message, &problems, generation);
        }
        Outcome::UpToDate { .. } => {
            ctx.state
                .with_update(key, |s| s.written.extend(chosen.clone()));
            next.pending.clear();
            next.pending_count = 0;
            next.conditions = ready_with_problems(
                status,
                "UpToDate",
                "the branch holds every chosen image",
                &problems,
                generation,
            );
        }
        Outcome::WindowClosed { next_open } => {
            ctx.state.with_update(key, |s| s.pending.requeue(changes));
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
                &status.conditions,
                true,
                "WaitingForWindow",
                &message,
                generation,
            );
            if let Some(open) = next_open {
                action = Action::requeue(until(open, Utc::now()));
            }
        }
    }
    // Files skipped and markers left alone: a Warning naming them, once per new list.
    if !problems.is_empty() && ready_message(next) != previous {
        let note = format!("left alone: {}", problems.join("; "));
        publish(ctx, update, true, "RepositoryProblems", &note).await;
    }
    Ok(action)
}

/// The problems worth reporting, as `file:line: what`: a marker naming a policy that exists but
/// has not chosen yet is no problem of the repository (the policy's own status says why).
fn reportable(problems: &[Problem], known: &BTreeSet<PolicyId>) -> Vec<String> {
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
        .find(|c| c.type_ == super::status::READY)
        .map(|c| c.message.clone())
}

/// A push round: the write-back, and the preview it makes stale forgotten.
async fn push_round(
    update: &ImageUpdate,
    ctx: &Context,
    ns: &str,
    key: &str,
    chosen: BTreeMap<PolicyId, Chosen>,
    now: DateTime<Utc>,
) -> Result<Outcome, Error> {
    let outcome = push(update, ctx, ns, chosen, now).await;
    ctx.state.with_update(key, |s| s.preview = None);
    outcome
}

/// A failed round: its changes wait again (listed without files), Ready=False with the
/// error's reason, a Warning event when the reason is new; returns the error for the backoff.
async fn push_failed(
    update: &ImageUpdate,
    ctx: &Context,
    key: &str,
    status: &ImageUpdateStatus,
    next: &mut ImageUpdateStatus,
    (chosen, changes): (
        &BTreeMap<PolicyId, Chosen>,
        Vec<PendingChange<PolicyId, Chosen>>,
    ),
    e: Error,
) -> Result<Action, Error> {
    let generation = update.metadata.generation;
    let waiting = ctx.state.with_update(key, |s| {
        s.pending.requeue(changes);
        pending_status(&waiting_of(s, chosen), None).0
    });
    next.pending_count = waiting.len() as i32;
    next.pending = waiting;
    let reason = git_reason(&e);
    let message = format!("write-back failed: {e}");
    next.conditions = set_ready(&status.conditions, false, &reason, &message, generation);
    if status.conditions.first().map(|c| c.reason.as_str()) != Some(reason.as_str()) {
        publish(ctx, update, true, &reason, &message).await;
    }
    write(ctx, update, status, next).await?;
    Err(e)
}

/// The chosen images in `chosen` that wait in `s.pending`.
fn waiting_of(s: &UpdateState, chosen: &BTreeMap<PolicyId, Chosen>) -> Vec<Waiting> {
    chosen
        .iter()
        .filter_map(|(id, c)| {
            Some(Waiting {
                policy: id.clone(),
                chosen: c.clone(),
                written: s.written.get(id).cloned(),
                since: s.pending.first_seen(id)?,
            })
        })
        .collect()
}

/// The changes of the round as it would be made now (see [`pending::preview`]), fetched once
/// per generation and chosen images.
async fn preview_cached(
    update: &ImageUpdate,
    ctx: &Context,
    ns: &str,
    key: &str,
    chosen: &BTreeMap<PolicyId, Chosen>,
) -> Result<Vec<crate::writeback::Change>, Error> {
    let generation = update.metadata.generation;
    let cached = ctx.state.with_update(key, |s| {
        s.preview
            .as_ref()
            .filter(|(g, c, _)| *g == generation && c == chosen)
            .map(|(_, _, changes)| changes.clone())
    });
    if let Some(changes) = cached {
        return Ok(changes);
    }
    let auth = git_auth(&ctx.client, ns, update).await?;
    let remote = Remote::new(update.spec.git.url.clone(), auth)?;
    let work_dir = ctx.work_dir.join(format!("{ns}--{}", update.name_any()));
    let changes = pending::preview(remote, update.spec.clone(), chosen.clone(), work_dir).await?;
    ctx.state.with_update(key, |s| {
        s.preview = Some((generation, chosen.clone(), changes.clone()))
    });
    Ok(changes)
}

fn ready_with_problems(
    status: &ImageUpdateStatus,
    reason: &str,
    message: &str,
    problems: &[String],
    generation: Option<i64>,
) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
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

fn until(at: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (at - now)
        .to_std()
        .unwrap_or_default()
        .max(Duration::from_millis(100))
}

/// How long until the branch is due to be read again, `interval` after `checked_at`; zero
/// when due (never read, or a clock that went back).
fn interval_left(
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

/// The batcher and the `interval` of `update`.
fn batcher_of(update: &ImageUpdate) -> Result<(Batcher, Duration), String> {
    let delay = parse_batch_delay(&update.spec.batch_delay)?;
    let window = match &update.spec.window {
        Some(w) => Some(w.compile().map_err(|e| format!("window: {e}"))?),
        None => None,
    };
    let interval = parse_interval(&update.spec.interval).map_err(|_| {
        format!(
            "interval {:?} is not a duration of at least 1s such as 30s, 5m or 1h",
            update.spec.interval
        )
    })?;
    Ok((Batcher::new(delay, window), interval))
}

/// Machine-readable reasons for write-back failures: `GitAuth`, `GitUnreachable`, `GitHostKey`…
fn git_reason(error: &Error) -> String {
    let kind = error.metric_label();
    let camel: String = kind
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    format!("Git{camel}")
}

async fn push(
    update: &ImageUpdate,
    ctx: &Context,
    ns: &str,
    chosen: BTreeMap<PolicyId, Chosen>,
    now: DateTime<Utc>,
) -> Result<Outcome, Error> {
    let auth = git_auth(&ctx.client, ns, update).await?;
    let signer = commit_signer(&ctx.client, ns, update).await?;
    let remote = Remote::new(update.spec.git.url.clone(), auth)?;
    let work_dir = ctx.work_dir.join(format!("{ns}--{}", update.name_any()));
    let spec = update.spec.clone();
    Ok(push_update_signed(remote, spec, chosen, work_dir, now, signer).await?)
}

async fn write(
    ctx: &Context,
    update: &ImageUpdate,
    current: &ImageUpdateStatus,
    next: &ImageUpdateStatus,
) -> Result<(), Error> {
    if current == next {
        return Ok(());
    }
    let api: Api<ImageUpdate> =
        Api::namespaced(ctx.client.clone(), &update.namespace().unwrap_or_default());
    // Merge patch: lists are replaced whole, and `pending` cleared explicitly.
    let mut value = json!(next);
    value["pending"] = json!(next.pending);
    api.patch_status(
        &update.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": value })),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
#[path = "update_tests.rs"]
mod tests;
