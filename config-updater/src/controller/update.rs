//! The `ImageUpdate` reconciler (the shell): read the status as stored, gather the chosen
//! images of the namespace's `ImagePolicies`, record the ones not yet written as pending, list
//! them with their files, let [`update_status::decide`] (pure) say whether to push, push one
//! commit with [`push_update_signed`], and write the verdict ([`update_status::record`] or
//! [`update_status::failed`], pure) in one place, [`write`]. Runs whenever an `ImagePolicy` of
//! its namespace changes, and when the batcher asks to decide again.

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
use super::pull_request::{self, Proposing};
use super::state::UpdateState;
use super::status::publish;
use super::update_status::{self, Facts, IDLE_RECHECK, Step, Verdict};
use super::{Context, Error, key_of};
use crate::edit::{ImageRef, PolicyId};
use crate::resource::{ImagePolicy, ImageUpdate, ImageUpdateStatus};
use crate::scan::config::parse_interval;
use crate::schedule::{Batcher, NextPush};
use crate::writeback::{Chosen, Outcome, RoundOptions, push_update_with};

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
    // A forge's webhook handed over by another replica: no interval to wait for.
    if ctx.requested(update) {
        ctx.state.with_update(key, |s| s.checked_at = None);
    }
    // Decided on the status as stored, not on the controller's copy: that copy can lag this
    // reconciler's own last write (an ImagePolicy's change can start the next reconcile before
    // the watch brings the write back), and a decision on it would undo the write, say a push's
    // PushedWithProblems replaced by "nothing to write".
    let api: Api<ImageUpdate> = Api::namespaced(ctx.client.clone(), &ns);
    let Some(stored) = api.get_opt(&update.name_any()).await? else {
        return Ok(Action::await_change());
    };
    let stored = stored.status.unwrap_or_default();
    let (verdict, result) = round(update, ctx, &ns, key, &stored).await?;
    write(ctx, update, &stored, &verdict).await?;
    result
}

/// One reconcile's work up to its verdict: what waits, the batcher's decision, the push. An
/// error returned here (the API could not be read) leaves the status alone; a verdict comes
/// with the reconcile's result (a failed push's error, for the backoff).
async fn round(
    update: &ImageUpdate,
    ctx: &Context,
    ns: &str,
    key: &str,
    stored: &ImageUpdateStatus,
) -> Result<(Verdict, Result<Action, Error>), Error> {
    let generation = update.metadata.generation;
    let (batcher, interval) = match pull_request_needs(update).and_then(|()| batcher_of(update)) {
        Ok(b) => b,
        Err(message) => {
            let next = update_status::invalid(stored, generation, &message);
            let verdict = Verdict::quiet(next, IDLE_RECHECK);
            return Ok((verdict, Err(Error::Invalid(message))));
        }
    };
    let policies: Api<ImagePolicy> = Api::namespaced(ctx.client.clone(), ns);
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
    let waits = ctx
        .state
        .with_update(key, |s| track(s, &chosen, &batcher, now));
    let mut facts = Facts {
        generation,
        interval,
        checked_at: ctx.state.with_update(key, |s| s.checked_at),
        ..Facts::default()
    };
    if waits {
        waiting(update, ctx, ns, key, &chosen, &mut facts).await;
    }
    let (step, next) = ctx.state.with_update(key, |s| {
        update_status::decide(stored, &facts, &batcher, &mut s.pending, now)
    });
    let changes = match step {
        Step::Requeue(after) => {
            let action = Action::requeue(after);
            return Ok((Verdict::quiet(next, after), Ok(action)));
        }
        Step::Push(changes) => changes,
    };
    ctx.state.with_update(key, |s| s.checked_at = Some(now));
    let round = match pull_request::before(ctx, ns, update).await {
        Ok(proposing) => {
            let rejected = proposing.as_ref().and_then(Proposing::rejected_head);
            push_round(update, ctx, ns, key, chosen.clone(), now, rejected)
                .await
                .map(|outcome| (outcome, proposing))
        }
        Err(e) => Err(e),
    };
    match round {
        Ok((outcome, proposing)) => {
            for (policy, tags) in update_status::reverted_tags(&outcome, ns) {
                block_tags(ctx, ns, &policy, &tags).await?;
            }
            if let Outcome::Pushed {
                commit,
                branch,
                changes: made,
                ..
            } = &outcome
            {
                tracing::info!(update = key, commit = %commit, branch = %branch, changes = made.len(), "pushed");
            }
            ctx.state.with_update(key, |s| match &outcome {
                Outcome::WindowClosed { .. } => s.pending.requeue(changes),
                _ => s.written.extend(chosen.clone()),
            });
            let verdict =
                update_status::record(stored, next, &outcome, &known, interval, Utc::now());
            let Some(proposing) = proposing else {
                let action = Action::requeue(verdict.requeue);
                return Ok((verdict, Ok(action)));
            };
            match proposing
                .after(&outcome, stored.pull_request.as_ref())
                .await
            {
                Ok(followed) => {
                    let verdict =
                        update_status::with_pull_request(verdict, followed.status, followed.notes);
                    let action = Action::requeue(verdict.requeue);
                    Ok((verdict, Ok(action)))
                }
                Err(e) => {
                    // The next reconcile (the error backoff's) runs a round at once.
                    ctx.state.with_update(key, |s| s.checked_at = None);
                    let verdict = update_status::proposal_failed(
                        stored,
                        verdict,
                        &git_reason(&e),
                        &e.to_string(),
                    );
                    Ok((verdict, Err(e)))
                }
            }
        }
        Err(e) => {
            // The round's changes wait again, listed without files.
            let waiting = ctx.state.with_update(key, |s| {
                s.pending.requeue(changes);
                s.checked_at = None;
                pending_status(&waiting_of(s, &chosen), None).0
            });
            let reason = git_reason(&e);
            let verdict =
                update_status::failed(stored, next, waiting, &reason, &e.to_string(), interval);
            Ok((verdict, Err(e)))
        }
    }
}

/// Records in `s` the chosen images not yet written as pending (withdrawing those written
/// meanwhile, forgetting policies that are gone); whether any change waits (so the status
/// lists it with its files).
fn track(
    s: &mut UpdateState,
    chosen: &BTreeMap<PolicyId, Chosen>,
    batcher: &Batcher,
    now: DateTime<Utc>,
) -> bool {
    s.written.retain(|id, _| chosen.contains_key(id));
    for (id, c) in chosen {
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
}

/// The waiting changes, listed in `facts` with their files (planned on the branch's head);
/// a waiting policy the branch already holds is settled: nothing to wait for.
async fn waiting(
    update: &ImageUpdate,
    ctx: &Context,
    ns: &str,
    key: &str,
    chosen: &BTreeMap<PolicyId, Chosen>,
    facts: &mut Facts,
) {
    let plan = match preview_cached(update, ctx, ns, key, chosen).await {
        Ok(changes) => Some(changes),
        Err(e) => {
            tracing::warn!(update = key, error = %e, "cannot read the branch to list the pending changes");
            facts.preview_failed = Some(e.to_string());
            None
        }
    };
    facts.waiting = ctx.state.with_update(key, |s| {
        let (entries, settled) = pending_status(&waiting_of(s, chosen), plan.as_deref());
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

/// A push round: the write-back, and the preview it makes stale forgotten.
async fn push_round(
    update: &ImageUpdate,
    ctx: &Context,
    ns: &str,
    key: &str,
    chosen: BTreeMap<PolicyId, Chosen>,
    now: DateTime<Utc>,
    rejected_head: Option<String>,
) -> Result<Outcome, Error> {
    let outcome = push(update, ctx, ns, chosen, now, rejected_head).await;
    ctx.state.with_update(key, |s| s.preview = None);
    outcome
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

/// A pull request is proposed from a push branch: `pullRequest` without `pushBranch` is invalid.
fn pull_request_needs(update: &ImageUpdate) -> Result<(), String> {
    let git = &update.spec.git;
    match (&git.pull_request, &git.push_branch) {
        (Some(_), None) => Err(
            "git.pullRequest needs git.pushBranch: the branch the pull request proposes to merge"
                .into(),
        ),
        (Some(_), Some(push)) if *push == git.branch => Err(format!(
            "git.pushBranch {push:?} is git.branch itself; a pull request needs a branch of its own"
        )),
        _ => Ok(()),
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

/// Machine-readable reasons for write-back failures: `GitAuth`, `GitUnreachable`, `GitHostKey`…,
/// and the forge's own (`ForgeAuth`, `ForgeUnreachable`…) in pull-request mode.
fn git_reason(error: &Error) -> String {
    if let Error::Forge(e) = error {
        return e.reason().to_owned();
    }
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
    rejected_head: Option<String>,
) -> Result<Outcome, Error> {
    let auth = git_auth(&ctx.client, ns, update).await?;
    let signer = commit_signer(&ctx.client, ns, update).await?;
    let remote = Remote::new(update.spec.git.url.clone(), auth)?;
    let work_dir = ctx.work_dir.join(format!("{ns}--{}", update.name_any()));
    let spec = update.spec.clone();
    let round = RoundOptions {
        signer,
        rejected_head,
    };
    Ok(push_update_with(remote, spec, chosen, work_dir, now, round).await?)
}

/// The one writer of an `ImageUpdate`'s status: publishes the verdict's events, then writes its
/// status when it differs from the one stored (at rest, a reconcile writes nothing).
async fn write(
    ctx: &Context,
    update: &ImageUpdate,
    stored: &ImageUpdateStatus,
    verdict: &Verdict,
) -> Result<(), Error> {
    for e in &verdict.events {
        publish(ctx, update, e.warning, &e.reason, &e.message).await;
    }
    let next = &verdict.next;
    if stored == next {
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
