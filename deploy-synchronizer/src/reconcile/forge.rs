//! The shell that tells the forge what the status says (see [`crate::forge`], which decides):
//! commit statuses, revert pull requests with their diagnosis, and the closing of reverts a
//! healthy newer revision made unneeded. Runs before each status write, so what it records
//! (`commitStatus`, `rollbackPullRequest`) is written with the rest; a forge that fails is
//! reported in an event and asked again at the next write — never fatal to the sync.

use std::time::Duration;

use kube::runtime::events::EventType;
use sluice_shared::forge::{
    CommitStatus, Forge, ForgeError, NewPullRequest, PullRequestState, PullRequestStatus,
    read_token,
};

use super::Target;
use super::diagnose::diagnose;
use super::report::publish;
use crate::apply::Kinds;
use crate::context::Context;
use crate::forge::{Step, steps, superseded_comment};
use crate::plan::Inventory;
use crate::resource::GitSyncStatus;
use crate::rollback::{CommitFacts, Diagnosis, base_branch, body, failed_commit, title, work_dir};
use crate::status::short;

/// How long one call to the forge may take.
const FORGE_TIMEOUT: Duration = Duration::from_secs(10);

/// The label on every revert pull request.
pub const ROLLBACK_LABEL: &str = "rollback";

/// Tells the forge of `spec.forge` what `status` says that it has not been told, recording each
/// success in `status`.
pub(super) async fn tell(ctx: &Context, target: &Target<'_>, status: &mut GitSyncStatus) {
    let Some(spec) = &target.sync.spec.forge else {
        return;
    };
    let todo = steps(status);
    if todo.is_empty() {
        return;
    }
    let forge = match connect(ctx, target, spec).await {
        Ok(forge) => forge,
        Err(error) => return refused(ctx, target, &error).await,
    };
    for step in todo {
        if let Err(error) = take(ctx, target, &forge, status, &step).await {
            // The rest waits for the next write: a forge that fails once fails again now.
            return refused(ctx, target, &error).await;
        }
    }
}

async fn connect(
    ctx: &Context,
    target: &Target<'_>,
    spec: &sluice_shared::forge::ForgeSpec,
) -> Result<Forge, ForgeError> {
    let sync = &target.sync.spec;
    let git_secret = sync
        .rollback
        .as_ref()
        .and_then(|r| r.secret_ref.as_ref())
        .or(sync.source.secret_ref.as_ref())
        .map(|r| r.name.as_str());
    let token = read_token(
        &ctx.client,
        &target.namespace,
        spec.secret_ref.as_deref(),
        git_secret,
    )
    .await?;
    Forge::new(&sync.source.url, spec, token, FORGE_TIMEOUT)
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
            let pr = open_revert(ctx, target, forge, status, revision, branch).await?;
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

/// Opens (or finds, when an earlier attempt opened it) the pull request of the revert on
/// `branch`, with the diagnosis of what failed as its body.
async fn open_revert(
    ctx: &Context,
    target: &Target<'_>,
    forge: &Forge,
    status: &GitSyncStatus,
    revision: &str,
    branch: &str,
) -> Result<PullRequestStatus, ForgeError> {
    let base = base_branch(&target.sync.spec).unwrap_or_else(|| "main".to_owned());
    if let Some(pr) = forge.latest_pull_request(branch, &base).await?
        && pr.state == PullRequestState::Open
    {
        return Ok(PullRequestStatus::of(&pr));
    }
    let entry = status.history.iter().find(|h| h.revision == revision);
    let reason = entry.and_then(|h| h.reason.clone()).unwrap_or_default();
    let subject = entry.map(|h| h.subject.clone()).unwrap_or_default();
    let work_dir = work_dir(&ctx.options.cache_dir, &target.namespace, &target.name);
    let failed = revision.to_owned();
    let commit: Option<CommitFacts> =
        tokio::task::spawn_blocking(move || failed_commit(&work_dir, &failed))
            .await
            .ok()
            .flatten();
    let inventory: Inventory = status.inventory.iter().cloned().collect();
    let diagnosis = match Kinds::discover(&ctx.client).await {
        Ok(kinds) => {
            diagnose(
                &ctx.client,
                &kinds,
                &inventory,
                revision,
                &base,
                &reason,
                commit,
            )
            .await
        }
        Err(error) => Diagnosis {
            revision: revision.to_owned(),
            base: base.clone(),
            reason: reason.clone(),
            commit,
            notes: vec![format!("could not discover the cluster's kinds: {error}")],
            ..Diagnosis::default()
        },
    };
    let new = NewPullRequest {
        head: branch.to_owned(),
        base,
        title: title(&subject),
        body: body(&diagnosis),
        labels: vec![ROLLBACK_LABEL.to_owned()],
    };
    let pr = forge.open_pull_request(&new).await?;
    Ok(PullRequestStatus::of(&pr))
}

async fn refused(ctx: &Context, target: &Target<'_>, error: &ForgeError) {
    tracing::warn!(sync = %target.key, reason = error.reason(), %error, "the forge refused; will ask again at the next status write");
    let note = format!("cannot update the forge: {error}");
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
