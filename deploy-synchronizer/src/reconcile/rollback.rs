//! The shell of a rollback proposal: after a revision failed its health check, push its revert
//! to a branch (see [`crate::rollback`]), record the branch in the revision's history entry and
//! say so in an event. A failure to propose is reported, never fatal to the sync.

use kube::runtime::events::EventType;

use super::Target;
use super::report::publish;
use crate::context::Context;
use crate::resource::GitSyncStatus;
use crate::rollback::{self, RollbackError, Skip};
use crate::status::short;

/// Proposes the rollback of the revision that just failed (the first history entry), if the
/// spec asks for one. Returns whether `status` changed.
pub(super) async fn propose(
    ctx: &Context,
    target: &Target<'_>,
    status: &mut GitSyncStatus,
    reason: &str,
) -> bool {
    let Some(failed) = status.history.first().cloned() else {
        return false;
    };
    let plan = match rollback::plan(&target.sync.spec, &failed, reason) {
        Ok(plan) => plan,
        Err(Skip::Disabled | Skip::AlreadyProposed) => return false,
        Err(Skip::NotABranch) => {
            tracing::info!(sync = %target.key, "rollback: the source is pinned to a tag or commit; nothing to propose");
            return false;
        }
    };
    let sync = (&ctx.client, ctx.options.cache_dir.as_path());
    let branch = match rollback::push_revert(
        sync,
        &target.namespace,
        &target.name,
        &target.sync.spec,
        plan,
    )
    .await
    {
        Ok(proposal) => {
            let note = format!(
                "revision {} failed its health check; its revert ({}) is on branch {}: merge it to roll back",
                short(&failed.revision),
                short(&proposal.commit),
                proposal.branch
            );
            tracing::warn!(sync = %target.key, branch = %proposal.branch, "rollback proposed");
            publish(
                ctx,
                target.sync,
                EventType::Warning,
                "RollbackProposed",
                "Rollback",
                &note,
            )
            .await;
            proposal.branch
        }
        Err(RollbackError::BranchTaken { branch }) => {
            // Most likely our own proposal, pushed before a restart lost the status write.
            tracing::info!(sync = %target.key, %branch, "rollback branch exists already");
            branch
        }
        Err(RollbackError::Superseded { .. }) => return false,
        Err(error) => {
            let note = format!(
                "cannot propose the rollback of {}: {error}",
                short(&failed.revision)
            );
            tracing::warn!(sync = %target.key, %error, "rollback failed");
            publish(
                ctx,
                target.sync,
                EventType::Warning,
                "RollbackFailed",
                "Rollback",
                &note,
            )
            .await;
            return false;
        }
    };
    match status.history.first_mut() {
        Some(entry) if entry.revision == failed.revision => {
            entry.rollback_branch = Some(branch);
            true
        }
        _ => false,
    }
}
