//! Writing what a reconcile found: the status subresource and Kubernetes Events.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, Resource};
use serde_json::json;
use sluice_shared::events;

use super::{Error, Target};
use crate::context::Context;
use crate::resource::{GitSync, GitSyncStatus};
use crate::status::record_failure;

/// Records a failure in status and as a Warning event.
pub(super) async fn fail(
    ctx: &Context,
    target: &Target<'_>,
    status: &mut GitSyncStatus,
    revision: Option<(&str, &str)>,
    error: &Error,
    retry_in: Duration,
) -> Result<(), Error> {
    let reason = error.reason();
    let mut message = error.to_string();
    if !reason.is_stalled() {
        message.push_str(&format!(" (retrying in {}s)", retry_in.as_secs().max(1)));
    }
    record_failure(
        status,
        revision,
        reason,
        &message,
        target.generation,
        Timestamp::now(),
    );
    publish(
        ctx,
        target.sync,
        EventType::Warning,
        reason.as_str(),
        "Sync",
        &message,
    )
    .await;
    write_status(ctx, target, status).await
}

/// Tells the forge (with `spec.forge`) what the status says, then writes the whole status
/// (merge patch on the status subresource). Lists are written even when
/// empty, so an emptied inventory replaces the old one; an inventory known to be stored already
/// is not sent again. A status equal to the one last written
/// (or read, before any write) is not written: at rest, a sync makes no write requests.
pub(super) async fn write_status(
    ctx: &Context,
    target: &Target<'_>,
    status: &mut GitSyncStatus,
) -> Result<(), Error> {
    // The forge first: what it was told is recorded in the entries this write persists.
    super::forge::tell(ctx, target, status).await;
    let mut value = serde_json::to_value(&*status).unwrap_or_default();
    value["inventory"] = json!(status.inventory);
    value["conditions"] = json!(status.conditions);
    value["history"] = json!(status.history);
    {
        let written = target.written.lock().unwrap_or_else(|p| p.into_inner());
        let before = written.as_ref().or(target.sync.status.as_ref());
        if before == Some(status) {
            return Ok(());
        }
        // An inventory already stored is left out of the patch (a merge patch keeps what it
        // does not name): a thousand entries are most of a status, and most of the write's time.
        // Stored means written by this reconcile, or the controller's copy when it is the one
        // this process's last status write left (it may lag what is stored otherwise).
        let own_copy = ctx.is_own_status_write(
            &target.key,
            target.sync.metadata.resource_version.as_deref(),
        );
        let stored = written
            .as_ref()
            .or(target.sync.status.as_ref().filter(|_| own_copy));
        if stored.is_some_and(|s| s.inventory == status.inventory)
            && let Some(fields) = value.as_object_mut()
        {
            fields.remove("inventory");
        }
    }
    let written = patch_status(ctx, target, value).await;
    // A failed write may still have been stored: then nothing is known of the stored copy.
    ctx.status_written(&target.key, written.as_ref().ok().cloned().flatten());
    written?;
    *target.written.lock().unwrap_or_else(|p| p.into_inner()) = Some(status.clone());
    Ok(())
}

/// Patches the status; returns the resourceVersion it left the GitSync at.
async fn patch_status(
    ctx: &Context,
    target: &Target<'_>,
    status: serde_json::Value,
) -> Result<Option<String>, Error> {
    let api: Api<GitSync> = Api::namespaced(ctx.client.clone(), &target.namespace);
    api.patch_status(
        &target.name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .map(|sync| sync.metadata.resource_version)
    .map_err(Error::Status)
}

/// Publishes an event about `sync`; a failure to publish is logged, never fatal.
pub(super) async fn publish(
    ctx: &Context,
    sync: &GitSync,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) {
    let event = events::event(type_, reason, action, note);
    ctx.events.publish(&event, &sync.object_ref(&())).await;
}
