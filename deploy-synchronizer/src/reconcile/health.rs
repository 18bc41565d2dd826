//! The health wait of a sync: assess the applied objects (or carry a known health over a
//! revision that changed only configuration, [`crate::status::carried_health`]), record the
//! verdict, tell it, and say when to look again.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use super::report::{publish, write_status};
use super::{Error, HEALTH_POLL, Target, rollback};
use crate::apply::Kinds;
use crate::assess::assess_inventory;
use crate::context::Context;
use crate::health::{Health, HealthStatus};
use crate::plan::Inventory;
use crate::resource::GitSyncStatus;
use crate::status::{Verdict, record_health};

/// Assesses the applied objects, records the verdict, and says when to look again.
pub(super) async fn check_health(
    ctx: &Context,
    target: &Target<'_>,
    status: &mut GitSyncStatus,
    interval: Duration,
    timeout: Duration,
) -> Result<Action, Error> {
    let inventory: Inventory = status.inventory.iter().cloned().collect();
    let health = match Kinds::discover(&ctx.client).await {
        Ok(kinds) => assess_inventory(&ctx.client, &kinds, &inventory).await,
        Err(error) => Health::unknown(format!("cannot discover kinds: {error}")),
    };
    let before = status.health.clone();
    let verdict = record(ctx, target, status, &health, timeout);
    write_status(ctx, target, status).await?;
    announce(
        ctx,
        target,
        status,
        &health,
        verdict,
        before.as_deref(),
        timeout,
    )
    .await?;
    Ok(next(verdict, interval))
}

/// Records `health` in the status (and its metric); returns the verdict. Written by the caller.
pub(super) fn record(
    ctx: &Context,
    target: &Target<'_>,
    status: &mut GitSyncStatus,
    health: &Health,
    timeout: Duration,
) -> Verdict {
    ctx.metrics.health(
        &target.namespace,
        &target.name,
        health.status == HealthStatus::Healthy,
    );
    record_health(status, health, timeout, target.generation, Timestamp::now())
}

/// Tells a written verdict: an event when the revision became healthy, timed out or changed
/// health (`before`: the health the status said before), and a rollback proposal on a timeout.
pub(super) async fn announce(
    ctx: &Context,
    target: &Target<'_>,
    status: &mut GitSyncStatus,
    health: &Health,
    verdict: Verdict,
    before: Option<&str>,
    timeout: Duration,
) -> Result<(), Error> {
    match verdict {
        Verdict::Healthy => {
            let note = health.to_string();
            publish(
                ctx,
                target.sync,
                EventType::Normal,
                "Healthy",
                "HealthCheck",
                &note,
            )
            .await;
        }
        Verdict::TimedOut => {
            let note = format!("not healthy within {}s: {health}", timeout.as_secs());
            let sync = target.sync;
            publish(
                ctx,
                sync,
                EventType::Warning,
                "HealthTimeout",
                "HealthCheck",
                &note,
            )
            .await;
            if rollback::propose(ctx, target, status, &note).await {
                write_status(ctx, target, status).await?;
            }
        }
        Verdict::Settled if before != Some(health.status.as_str()) => {
            let kind = if health.status == HealthStatus::Healthy {
                EventType::Normal
            } else {
                EventType::Warning
            };
            let note = health.to_string();
            publish(
                ctx,
                target.sync,
                kind,
                "HealthChanged",
                "HealthCheck",
                &note,
            )
            .await;
        }
        Verdict::Settled | Verdict::Waiting => {}
    }
    Ok(())
}

/// When to look at health again after `verdict`.
pub(super) fn next(verdict: Verdict, interval: Duration) -> Action {
    match verdict {
        Verdict::Waiting => Action::requeue(HEALTH_POLL),
        _ => Action::requeue(interval),
    }
}
