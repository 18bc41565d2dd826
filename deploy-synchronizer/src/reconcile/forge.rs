//! The shell that tells the forge what the status says (see [`crate::forge`], which decides):
//! commit statuses, revert pull requests with their diagnosis, and the closing of reverts a
//! healthy newer revision made unneeded. Runs before each status write, so what it records
//! (`commitStatus`, `rollbackPullRequest`) is written with the rest; a forge that fails is
//! reported in an event and asked again at the next write — never fatal to the sync.

use kube::runtime::events::EventType;
use sluice_shared::forge::{CommitStatus, Forge, ForgeError, PullRequestState, PullRequestStatus};

use super::Target;
use super::report::publish;
use crate::context::Context;
use crate::forge::{Step, steps, superseded_comment};
use crate::resource::GitSyncStatus;
use crate::rollback::Undo;
use crate::rollback::pull_request::{Revert, Sync, connect, open_revert};
use crate::status::{FORGE, condition, set_condition, short};
use k8s_openapi::jiff::Timestamp;

/// Tells the forge of `spec.forge` what `status` says that it has not been told, recording each
/// success in `status`.
pub(super) async fn tell(ctx: &Context, target: &Target<'_>, status: &mut GitSyncStatus) {
    if target.sync.spec.forge.is_none() {
        return;
    }
    let todo = steps(status);
    if todo.is_empty() {
        return;
    }
    let forge = match connect(&ctx.client, &target.namespace, &target.sync.spec).await {
        Ok(forge) => forge,
        Err(error) => return refused(ctx, target, status, &error).await,
    };
    for step in todo {
        if let Err(error) = take(ctx, target, &forge, status, &step).await {
            // The rest waits for the next write: a forge that fails once fails again now.
            return refused(ctx, target, status, &error).await;
        }
    }
    let message = "the forge shows what this status says: commit statuses and revert pull requests";
    set_condition(
        &mut status.conditions,
        FORGE,
        true,
        "Told",
        message,
        target.generation,
        Timestamp::now(),
    );
}

async fn take(
    ctx: &Context,
    target: &Target<'_>,
    forge: &Forge,
    status: &mut GitSyncStatus,
    step: &Step,
) -> Result<(), ForgeError> {
    match step {
        Step::Status {
            entry,
            revision,
            state,
            description,
        } => {
            let commit_status = CommitStatus {
                state: *state,
                context: format!("sluice/{}/{}", target.namespace, target.name),
                description: description.clone(),
                target_url: None,
            };
            forge.set_commit_status(revision, &commit_status).await?;
            tracing::info!(sync = %target.key, revision = %short(revision), state = %state.as_str(), "commit status set");
            status.history[*entry].commit_status = Some(state.as_str().to_owned());
        }
        Step::OpenRevert {
            entry,
            revision,
            branch,
        } => {
            let sync = Sync {
                client: &ctx.client,
                cache_dir: &ctx.options.cache_dir,
                namespace: &target.namespace,
                name: &target.name,
                spec: &target.sync.spec,
                status,
            };
            let reason = status.history[*entry].reason.clone().unwrap_or_default();
            let revert = Revert {
                revision,
                branch,
                reason: &reason,
                undo: Undo::Failed,
            };
            let pr = open_revert(&sync, forge, &revert).await?;
            let note = format!(
                "revision {} failed; its revert is proposed in pull request #{}: {}",
                short(revision),
                pr.number,
                pr.url
            );
            publish(
                ctx,
                target.sync,
                EventType::Warning,
                "RollbackPullRequestOpened",
                "Rollback",
                &note,
            )
            .await;
            status.history[*entry].rollback_pull_request = Some(pr);
        }
        Step::CloseRevert {
            entry,
            revision,
            number,
            by,
        } => {
            let now = forge.pull_request(*number).await?;
            let now = if now.state == PullRequestState::Open {
                forge
                    .comment(*number, &superseded_comment(revision, by))
                    .await?;
                let closed = forge.close_pull_request(*number).await?;
                let note = format!(
                    "closed revert pull request #{number} of {}: revision {} is healthy",
                    short(revision),
                    short(by)
                );
                publish(
                    ctx,
                    target.sync,
                    EventType::Normal,
                    "RollbackPullRequestClosed",
                    "Rollback",
                    &note,
                )
                .await;
                closed
            } else {
                now
            };
            status.history[*entry].rollback_pull_request = Some(PullRequestStatus::of(&now));
        }
    }
    Ok(())
}

/// Records that the forge could not be told (condition [`FORGE`] False, the forge's reason),
/// with a Warning event when the reason is new.
async fn refused(
    ctx: &Context,
    target: &Target<'_>,
    status: &mut GitSyncStatus,
    error: &ForgeError,
) {
    tracing::warn!(sync = %target.key, reason = error.reason(), %error, "the forge refused; will ask again at the next status write");
    let note = format!("cannot update the forge (asked again at the next status write): {error}");
    let before = condition(status, FORGE).map(|c| c.reason.clone());
    set_condition(
        &mut status.conditions,
        FORGE,
        false,
        error.reason(),
        &note,
        target.generation,
        Timestamp::now(),
    );
    if before.as_deref() != Some(error.reason()) {
        publish(
            ctx,
            target.sync,
            EventType::Warning,
            error.reason(),
            "Forge",
            &note,
        )
        .await;
    }
}
