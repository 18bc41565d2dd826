//! One reconcile of one GitSync: fetch, render, plan, dry-run, apply, prune, then status,
//! events and the health wait. Every decision is made by the pure modules (`plan`, `health`,
//! `status`); this file sequences them and does the I/O.
//!
//! A failure at any step before the first write (git, render, plan, dry-run) applies nothing and
//! deletes nothing: status says Ready=False with the reason, the previous revision stays applied,
//! and the sync is retried with backoff.

mod forge;
mod health;
mod report;
mod rollback;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use crate::apply::{Applier, ApplyError, Kinds, Report};
use crate::context::Context;
use crate::depends::{self, Gate};
use crate::heal::Holding;
use crate::plan::{Hooks, Inventory, Plan, PlanError, Record, Send, to_send};
use crate::render::RenderErrors;
use crate::resource::{GitSync, GitSyncStatus};
use crate::revision::{self, Cluster, PlannedRevision, SyncOf};
use crate::source::{Checkout, SourceError};
use crate::stages::Stages;
use crate::status::{
    self, FailureReason, READY, STALLED, Verdict, health_pending, parse_duration, record_applied,
    short,
};
use health::check_health;
use report::{fail, publish, write_status};

/// How soon a GitSync waiting for a dependency looks again, should no change of the dependency
/// (which re-runs it at once) come.
const DEPENDENCY_RECHECK: Duration = Duration::from_secs(60);

/// How long a Helm hook may run when the spec's `healthTimeout` cannot be read.
const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(300);

/// How soon health is looked at again while a revision is not healthy yet.
pub const HEALTH_POLL: Duration = Duration::from_secs(2);

/// Why a reconcile failed. Each maps to a status reason and a metric label.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidSpec(String),
    /// Refused by the platform team's lockdown ([`crate::tenancy`]).
    #[error("{0}")]
    AccessDenied(String),
    #[error("fetching the source failed: {0}")]
    Source(#[from] SourceError),
    #[error(transparent)]
    Render(#[from] RenderErrors),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("cannot create a client impersonating ServiceAccount {name}: {error}")]
    Impersonation {
        name: String,
        #[source]
        error: kube::Error,
    },
    #[error("cannot write the status: {0}")]
    Status(#[source] kube::Error),
}

/// A revision that could not be planned fails as the stage that refused it.
impl From<revision::Error> for Error {
    fn from(error: revision::Error) -> Self {
        match error {
            revision::Error::Render(errors) => Self::Render(errors),
            revision::Error::Discovery(error) => Self::Apply(ApplyError::Discovery(error)),
            revision::Error::Plan(error) => Self::Plan(error),
            revision::Error::Read(error) => Self::Apply(error),
            revision::Error::Impersonation { name, error } => Self::Impersonation { name, error },
        }
    }
}

impl Error {
    /// The `result` label of `sluice_reconcile_total`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::InvalidSpec(_) => "invalid_spec",
            Self::AccessDenied(_) => "access_denied",
            Self::Source(SourceError::UnsafeTree { .. }) => "render",
            Self::Source(_) => "git",
            Self::Render(_) => "render",
            Self::Plan(_) => "plan_refused",
            Self::Apply(error) if error.is_validation() => "validation",
            Self::Apply(_) => "apply",
            Self::Impersonation { .. } => "impersonation",
            Self::Status(_) => "status",
        }
    }

    /// The Ready=False reason the status shows.
    pub fn reason(&self) -> FailureReason {
        match self {
            Self::InvalidSpec(_) => FailureReason::InvalidSpec,
            Self::AccessDenied(_) => FailureReason::AccessDenied,
            Self::Source(SourceError::UnsafeTree { .. }) => FailureReason::RenderFailed,
            Self::Source(_) => FailureReason::GitFailed,
            Self::Render(_) => FailureReason::RenderFailed,
            Self::Plan(_) => FailureReason::PlanRefused,
            Self::Apply(error) if error.is_validation() => FailureReason::ValidationFailed,
            Self::Apply(_) | Self::Impersonation { .. } | Self::Status(_) => {
                FailureReason::ApplyFailed
            }
        }
    }
}

/// The controller's reconcile function (see the module docs).
pub async fn reconcile(sync: Arc<GitSync>, ctx: Arc<Context>) -> Result<Action, Error> {
    // Sharded: only the shards this replica holds; the rest belong to other replicas (a shard
    // acquired later re-runs its GitSyncs).
    let _shard = match &ctx.options.shards {
        Some(gate) => match gate.enter(crate::resource::shard_of(&sync, gate.shards())) {
            Some(guard) => Some(guard),
            None => return Ok(Action::await_change()),
        },
        None => None,
    };
    let started = Instant::now();
    let result = reconcile_inner(&sync, &ctx).await;
    let label = match &result {
        Ok(_) => "success",
        Err(error) => error.metric_label(),
    };
    ctx.metrics.observe(label, started.elapsed());
    result
}

/// Names and settings of one GitSync for the length of a reconcile.
struct Target<'a> {
    sync: &'a GitSync,
    namespace: String,
    name: String,
    key: String,
    generation: Option<i64>,
    /// The status as last written by this reconcile (`None`: as it was read).
    written: std::sync::Mutex<Option<GitSyncStatus>>,
}

async fn reconcile_inner(sync: &GitSync, ctx: &Context) -> Result<Action, Error> {
    let namespace = sync.namespace().unwrap_or_default();
    let name = sync.name_any();
    let target = Target {
        key: format!("{namespace}/{name}"),
        namespace,
        name,
        generation: sync.metadata.generation,
        sync,
        written: std::sync::Mutex::new(None),
    };
    let mut status = sync.status.clone().unwrap_or_default();
    let now = Timestamp::now();

    if sync.spec.suspend {
        return suspend(ctx, &target, &mut status, now).await;
    }
    let refusal = ctx.options.lockdown.refusal(&target.namespace, &sync.spec);
    let (interval, health_timeout) = match durations(sync) {
        Ok(_) if let Some(why) = refusal => {
            // Nothing fetched, applied or pruned; the tenant must change the spec.
            let error = Error::AccessDenied(why);
            let wait = Duration::from_secs(60);
            fail(ctx, &target, &mut status, None, &error, wait).await?;
            return Err(error);
        }
        Ok(durations) => durations,
        Err(message) => {
            let error = Error::InvalidSpec(message);
            fail(
                ctx,
                &target,
                &mut status,
                None,
                &error,
                Duration::from_secs(60),
            )
            .await?;
            return Err(error);
        }
    };
    if let Some(action) = wait_for_dependencies(ctx, &target, &mut status, now).await? {
        return Ok(action);
    }
    // A webhook push or a new `sluice.dev/reconcile-requested-at` value syncs now, due or not
    // (kube-runtime reconciles on any change, annotations too; this makes it not a no-op).
    let now_requested = ctx.sync_requested(&target.key, sync);
    let may_wait = status.observed_generation == target.generation && !now_requested;
    if may_wait && let Some(left) = ctx.not_due_for(&target.key, interval) {
        if health_pending(&status) {
            return check_health(ctx, &target, &mut status, interval, health_timeout).await;
        }
        return Ok(Action::requeue(left));
    }
    // Due, pushed or asked for: fetch, even while the applied revision's health is awaited — a
    // newer revision is never blocked by the wait on an older one; it supersedes it.

    let mut revision: Option<(String, String)> = None;
    let mut stages = Stages::new();
    let synced = sync_once(
        ctx,
        &target,
        &mut status,
        &mut revision,
        now_requested,
        &mut stages,
    )
    .await;
    match synced {
        Ok(None) => {
            // The applied revision again, and nothing drifted: no write at all.
            ctx.succeeded(&target.key);
            check_health(ctx, &target, &mut status, interval, health_timeout).await
        }
        Ok(Some(outcome)) => {
            ctx.succeeded(&target.key);
            let revision = revision.unwrap_or_default();
            let carried =
                record_sync(ctx, &target, &mut status, outcome, revision, health_timeout).await?;
            stages.mark("status");
            tracing::debug!(sync = %target.key, stages = %stages.summary(), "sync stages");
            ctx.metrics.stages(&stages);
            match carried {
                Some(verdict) => Ok(health::next(verdict, interval)),
                None => check_health(ctx, &target, &mut status, interval, health_timeout).await,
            }
        }
        Err(error) => {
            let wait = ctx.failed(&target.key, interval);
            let at = revision.as_ref().map(|(c, s)| (c.as_str(), s.as_str()));
            fail(ctx, &target, &mut status, at, &error, wait).await?;
            Err(error)
        }
    }
}

/// Records a successful sync in `status` (applied revision, inventory, history), writes the
/// status at once, then says so in events and the log. Health, a read of every object, follows
/// in a second write, unless it is known without one ([`status::carried_health`]): then it is
/// in this write, and its verdict is returned.
async fn record_sync(
    ctx: &Context,
    target: &Target<'_>,
    status: &mut GitSyncStatus,
    outcome: Outcome,
    (commit, subject): (String, String),
    health_timeout: Duration,
) -> Result<Option<Verdict>, Error> {
    let sync = target.sync;
    let previous = status.last_applied_revision.clone();
    let sent = outcome.report.applied.iter().map(|(id, _)| id);
    let carried = status::carried_health(status, sent, outcome.inventory.len());
    let health_before = status.health.clone();
    let ready_before = status::condition(status, READY).is_some_and(|c| c.status == "True");
    let message = applied_message(&commit, &outcome.report, outcome.inventory.len());
    status.inventory = outcome.inventory.to_entries();
    status.last_applied_inputs = outcome.inputs;
    record_applied(
        status,
        &commit,
        &subject,
        &message,
        target.generation,
        Timestamp::now(),
    );
    let verdict = carried
        .as_ref()
        .map(|health| health::record(ctx, target, status, health, health_timeout));
    // Logged as it happened, before the status says so (a reader of both sees them in order).
    tracing::info!(sync = %target.key, revision = %commit, objects = status.inventory.len(),
            pruned = outcome.report.pruned.len(), "applied");
    // The status first: it is what a user (and the forge) reads the sync's outcome from.
    write_status(ctx, target, status).await?;
    if previous.as_deref() != Some(commit.as_str()) || !ready_before {
        publish(ctx, sync, EventType::Normal, "Synced", "Sync", &message).await;
    }
    if let Some(why) = &outcome.report.post_hooks_failed {
        publish(ctx, sync, EventType::Warning, "PostHookFailed", "Sync", why).await;
    }
    if !outcome.report.pruned.is_empty() {
        let pruned: Vec<String> = outcome
            .report
            .pruned
            .iter()
            .map(ToString::to_string)
            .collect();
        let note = format!("pruned {} object(s): {}", pruned.len(), pruned.join(", "));
        publish(ctx, sync, EventType::Normal, "Pruned", "Prune", &note).await;
    }
    if let (Some(health), Some(verdict)) = (&carried, verdict) {
        let before = health_before.as_deref();
        health::announce(ctx, target, status, health, verdict, before, health_timeout).await?;
    }
    Ok(verdict)
}

/// A suspended sync applies, prunes and heals nothing until it is resumed; its status says so.
async fn suspend(
    ctx: &Context,
    target: &Target<'_>,
    status: &mut GitSyncStatus,
    now: Timestamp,
) -> Result<Action, Error> {
    let message = "spec.suspend is true: nothing is applied or pruned until it is set to false";
    status.observed_generation = target.generation;
    status::set_condition(
        &mut status.conditions,
        READY,
        false,
        "Suspended",
        message,
        target.generation,
        now,
    );
    write_status(ctx, target, status).await?;
    ctx.forget(&target.key);
    ctx.healer.forget(&target.key);
    Ok(Action::await_change())
}

/// `spec.dependsOn`: while a dependency is not ready (or they form a cycle), nothing is fetched
/// or applied and the status says which one; `Some` is what to do meanwhile. A dependency's
/// change re-runs this reconcile at once (the controller watches them), so the recheck is only
/// a fallback.
async fn wait_for_dependencies(
    ctx: &Context,
    target: &Target<'_>,
    status: &mut GitSyncStatus,
    now: Timestamp,
) -> Result<Option<Action>, Error> {
    let syncs = ctx.syncs.state();
    let find = |key: &str| syncs.iter().find(|s| key_of(s) == key).map(|s| s.as_ref());
    let (reason, message, stalled) = match depends::gate(
        &target.key,
        &target.sync.spec.depends_on,
        find,
    ) {
        Gate::Open => return Ok(None),
        Gate::Waiting(why) => ("DependencyNotReady", format!("waiting for {why}"), false),
        Gate::Cycle(chain) => (
            "DependencyCycle",
            format!(
                "spec.dependsOn forms a cycle ({chain}): none of them can go first; remove one of the links"
            ),
            true,
        ),
    };
    status.observed_generation = target.generation;
    status::set_condition(
        &mut status.conditions,
        READY,
        false,
        reason,
        &message,
        target.generation,
        now,
    );
    if stalled {
        status::set_condition(
            &mut status.conditions,
            STALLED,
            true,
            reason,
            &message,
            target.generation,
            now,
        );
    }
    write_status(ctx, target, status).await?;
    Ok(Some(if stalled {
        Action::await_change()
    } else {
        Action::requeue(DEPENDENCY_RECHECK)
    }))
}

fn key_of(sync: &GitSync) -> String {
    format!(
        "{}/{}",
        sync.metadata.namespace.as_deref().unwrap_or_default(),
        sync.metadata.name.as_deref().unwrap_or_default()
    )
}

fn durations(sync: &GitSync) -> Result<(Duration, Duration), String> {
    let interval = parse_duration(&sync.spec.source.interval)
        .map_err(|e| format!("spec.source.interval: {e}"))?;
    let timeout = parse_duration(&sync.spec.health_timeout)
        .map_err(|e| format!("spec.healthTimeout: {e}"))?;
    Ok((interval.max(Duration::from_secs(1)), timeout))
}

/// What a successful sync did.
struct Outcome {
    report: Report,
    inventory: Inventory,
    /// What the render read beyond the revision (see [`crate::chart`]).
    inputs: Option<String>,
}

/// Fetch, render, plan, dry-run, apply, prune. `revision` is set as soon as it is known, so a
/// failure after the fetch is recorded against it. When an apply fails after something may have
/// been written, `status.inventory` grows by everything the plan meant to apply, so a later
/// prune can find it.
///
/// `Ok(None)`: the fetched revision is the one applied, the spec did not change, nothing was
/// asked for explicitly, and self-heal's watches saw every object as applied (or self-heal is
/// off) — so nothing is rendered or written. This is what keeps the cluster free of writes at
/// rest; drift is healed by the watches as it happens, not by the interval.
async fn sync_once(
    ctx: &Context,
    target: &Target<'_>,
    status: &mut GitSyncStatus,
    revision: &mut Option<(String, String)>,
    requested: bool,
    stages: &mut Stages,
) -> Result<Option<Outcome>, Error> {
    let spec = &target.sync.spec;
    let of = SyncOf {
        namespace: &target.namespace,
        name: &target.name,
        cache_root: &ctx.options.cache_dir,
    };
    let fetched = revision::fetch(&ctx.client, of, spec).await;
    if let Err(SourceError::UnsafeTree {
        commit, subject, ..
    }) = &fetched
    {
        *revision = Some((commit.clone(), subject.clone()));
    }
    let checkout: Checkout = fetched?;
    *revision = Some((checkout.commit.clone(), checkout.subject.clone()));
    tracing::debug!(sync = %target.key, revision = %checkout.commit, "fetched");
    stages.mark("fetch");
    let inputs = revision::chart_inputs(&ctx.client, of, spec).await?;
    stages.mark("inputs");
    let fingerprint = inputs.fingerprint();
    let upgrade = status::is_upgrade(status, &checkout.commit, &fingerprint, target.generation);
    if !requested && unchanged(ctx, target, status, &checkout.commit, &fingerprint) {
        tracing::debug!(sync = %target.key, revision = %checkout.commit, "applied and in sync");
        return Ok(None);
    }

    let inventory: Inventory = status.inventory.iter().cloned().collect();
    // Self-heal's record of the last apply, read once: what its watches vouch for is not read
    // again (see `Prepared::known_facts`), and what it holds as applied is not sent again.
    let record = ctx.healer.record(&target.key);
    let cluster = Cluster {
        client: &ctx.client,
        config: &ctx.config,
        lockdown: &ctx.options.lockdown,
    };
    let PlannedRevision {
        mut plan,
        mut kinds,
        writer,
    } = revision::plan(
        cluster,
        of,
        spec,
        (checkout, inputs),
        (&inventory, record.as_ref()),
        stages,
    )
    .await?;
    if !upgrade {
        // Helm runs hooks on an install or an upgrade, not on every look at the same release.
        plan.hooks = Hooks::default();
    }
    let applier = Applier {
        reader: ctx.client.clone(),
        writer,
        recreate_on_immutable_change: spec.recreate_on_immutable_change,
        hook_timeout: durations(target.sync).map_or(DEFAULT_HOOK_TIMEOUT, |(_, health)| health),
    };
    let sent = send(ctx, target, &plan, &applier, (record, &mut kinds)).await;
    stages.mark("apply");
    match sent {
        Ok(report) => {
            let mut next = plan.next_inventory();
            for failed in &report.prune_failed {
                if let Some(deletion) = plan.prune.iter().find(|d| d.id == failed.id) {
                    next.insert(deletion.id.clone(), &deletion.api_version);
                }
            }
            Ok(Some(Outcome {
                report,
                inventory: next,
                inputs: fingerprint,
            }))
        }
        Err(error) => {
            if !error.is_validation()
                || matches!(error, ApplyError::Validation { written: true, .. })
            {
                // Something may have been written: remember it all, so a later prune finds it.
                let mut union = inventory.clone();
                for apply in plan.applies() {
                    union.insert(apply.id.clone(), apply.api_version());
                }
                status.inventory = union.to_entries();
            }
            Err(error.into())
        }
    }
}

/// Dry-runs and applies what of `plan` must be sent (only what changed since the last apply,
/// when self-heal's record of it can be trusted: see [`to_send`]), prunes, and hands what was
/// applied to self-heal. `record` is self-heal's record the plan was made with; `kinds` the
/// discovery the plan was made with, on return the one after the apply.
async fn send(
    ctx: &Context,
    target: &Target<'_>,
    plan: &Plan,
    applier: &Applier,
    (record, kinds): (Option<Record>, &mut Kinds),
) -> Result<Report, ApplyError> {
    let to_send = to_send(
        plan,
        record.as_ref(),
        target.generation,
        kinds.fingerprint(),
    );
    drop(record);
    let (cut, unchanged) = match to_send {
        Send::All(reason) => {
            let objects = plan.applies().count();
            tracing::info!(sync = %target.key, %reason, objects, "sending every object");
            ctx.metrics.sent(Some(reason.label()), objects);
            ctx.healer.hold(&target.key, Holding::Everything);
            (None, BTreeSet::new())
        }
        Send::Changes { objects, unchanged } => {
            tracing::debug!(sync = %target.key, sent = objects.len(), unchanged, "sending the changes");
            ctx.metrics.sent(None, objects.len());
            let cut = plan.only(&objects);
            let unchanged = plan.unchanged(&objects);
            ctx.healer.hold(&target.key, Holding::Only(cut.writes()));
            (Some(cut), unchanged)
        }
    };
    let result = applier.execute(cut.as_ref().unwrap_or(plan), kinds).await;
    match &result {
        Ok(report) if target.sync.spec.self_heal => {
            let applies: Vec<_> = plan.applies().collect();
            ctx.healer.register(
                target.sync,
                applier.writer.clone(),
                &applies,
                &report.applied,
                &unchanged,
                kinds,
            );
        }
        Err(ApplyError::Validation { written: false, .. }) => ctx.healer.release(&target.key),
        _ => ctx.healer.forget(&target.key),
    }
    result
}

/// Whether `commit` (with the chart `inputs`) is what is applied, as applied: same revision,
/// same inputs, same spec, Ready, and (with self-heal) every object seen as applied by the
/// watches.
fn unchanged(
    ctx: &Context,
    target: &Target<'_>,
    status: &GitSyncStatus,
    commit: &str,
    inputs: &Option<String>,
) -> bool {
    let applied = status.last_applied_revision.as_deref() == Some(commit)
        && status.last_applied_inputs == *inputs
        && status.observed_generation == target.generation
        && status::condition(status, READY).is_some_and(|c| c.status == "True");
    applied && (!target.sync.spec.self_heal || ctx.healer.in_sync(&target.key))
}

fn applied_message(commit: &str, report: &Report, objects: usize) -> String {
    let mut message = format!("applied revision {}: {objects} object(s)", short(commit));
    if !report.pruned.is_empty() {
        message.push_str(&format!(", {} pruned", report.pruned.len()));
    }
    if !report.recreated.is_empty() {
        message.push_str(&format!(", {} re-created", report.recreated.len()));
    }
    if let Some(why) = &report.post_hooks_failed {
        message.push_str(&format!("; {why}"));
    }
    if !report.prune_failed.is_empty() {
        let failed: Vec<String> = report
            .prune_failed
            .iter()
            .map(ToString::to_string)
            .collect();
        message.push_str(&format!("; prune failed for: {}", failed.join("; ")));
    }
    message
}
