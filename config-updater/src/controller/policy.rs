//! The `ImagePolicy` reconciler: choose from the repository's last scanned tags (minus
//! `status.blockedTags`), pin the digest for `digest` policies ([`choose_and_pin`], shared with
//! `scan --dry-run`), write `status.latestRef`.
//! Runs whenever its `ImageRepository` changes (the controller watches them); writes status
//! only when something changed, so its own status updates settle.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::status::{publish, set_ready};
use super::{Context, Error, key_of};
use crate::policy::{
    Choice, CompiledPolicy, NoMatchReason, PlatformError, Tally, pick_index_digest,
};
use crate::resource::{ImagePolicy, ImagePolicyStatus, ImageRefStatus, ImageRepository};
use crate::scan::{RegistryClient, ScanError, resolve_digest};

pub async fn reconcile(policy: Arc<ImagePolicy>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let key = key_of(policy.as_ref());
    let result = reconcile_inner(&policy, &ctx, &[]).await;
    ctx.finish("ImagePolicy", &key, started, result)
}

/// Chooses for `policy` with `block` added to its `status.blockedTags`, and writes both in one
/// status write, so no reader sees a tag blocked yet still chosen.
async fn reconcile_inner(
    policy: &ImagePolicy,
    ctx: &Context,
    block: &[String],
) -> Result<Action, Error> {
    let ns = policy.namespace().unwrap_or_default();
    let generation = policy.metadata.generation;
    let status = policy.status.clone().unwrap_or_default();
    let mut next = status.clone();
    next.observed_generation = generation;
    next.blocked_tags = with_blocked(&status.blocked_tags, block);

    let compiled = match CompiledPolicy::new(&policy.spec.policy) {
        Ok(c) => c,
        Err(e) => {
            next.conditions = set_ready(
                &status.conditions,
                false,
                "InvalidPolicy",
                &e.to_string(),
                generation,
            );
            write(ctx, policy, &status, &next).await?;
            return Err(Error::Policy(e));
        }
    };
    let repo_name = &policy.spec.image_repository_ref.name;
    let repo_key = format!("{ns}/{repo_name}");
    let Some(scanned) = ctx.state.scanned(&repo_key) else {
        let repos: Api<ImageRepository> = Api::namespaced(ctx.client.clone(), &ns);
        let repo = repos.get_opt(repo_name).await?;
        let (reason, message) = waiting_for_scan(repo_name, repo.as_ref());
        next.conditions = set_ready(&status.conditions, false, reason, &message, generation);
        write(ctx, policy, &status, &next).await?;
        // The repository's first scan triggers this again; poll as a fallback.
        return Ok(Action::requeue(Duration::from_secs(60)));
    };
    let repos: Api<ImageRepository> = Api::namespaced(ctx.client.clone(), &ns);
    let last_scan = repos
        .get_opt(repo_name)
        .await?
        .and_then(|r| r.status)
        .and_then(|s| s.last_scan_time);

    let blocked: HashSet<String> = next.blocked_tags.iter().cloned().collect();
    let picked = choose_and_pin(
        &compiled,
        &scanned.image,
        scanned.tags.as_slice(),
        &blocked,
        scanned.client.as_deref(),
    )
    .await;
    next.last_scan_time = last_scan;
    next.tags_seen = Some(picked.tally().considered as i64);
    match picked {
        Picked::Chosen {
            latest,
            blocked_skipped,
            ..
        } => {
            if status.latest_ref.as_ref() != Some(&latest) {
                next.observed_previous_ref = status.latest_ref.clone();
                next.latest_ref = Some(latest.clone());
            }
            let mut message = format!("chose {}:{}", latest.name, latest.tag);
            if !blocked_skipped.is_empty() {
                message.push_str(&format!(
                    " (blocked, rolled back in git: {})",
                    blocked_skipped.join(", ")
                ));
            }
            next.conditions = set_ready(&status.conditions, true, "Chosen", &message, generation);
            if status.latest_ref.as_ref() != next.latest_ref.as_ref() {
                tracing::info!(policy = %key_of(policy), tag = %latest.tag, "chose a new image");
                publish(ctx, policy, false, "Chosen", &message).await;
            }
        }
        Picked::NoMatch { tally, reason } => {
            let message = no_match_message(&tally, &reason);
            next.conditions = set_ready(&status.conditions, false, "NoMatch", &message, generation);
        }
        Picked::Unpinned { error, .. } => match error {
            PinError::NoClient => return Err(Error::Digest("no registry client yet".to_owned())),
            PinError::Registry(e) => return Err(e.into()),
            PinError::Refused(e) => {
                next.conditions = set_ready(
                    &status.conditions,
                    false,
                    "DigestRefused",
                    &e.to_string(),
                    generation,
                );
                write(ctx, policy, &status, &next).await?;
                return Err(Error::Digest(e.to_string()));
            }
        },
    }
    write(ctx, policy, &status, &next).await?;
    Ok(Action::await_change())
}

/// What a policy decides on its repository's tags: the policy controller writes it into
/// `status.latestRef`, `scan --dry-run` plans with it.
#[derive(Debug)]
pub(crate) enum Picked {
    /// The image chosen: the tag, with the digest pinned for `digest` policies.
    Chosen {
        latest: ImageRefStatus,
        tally: Tally,
        /// Blocked tags (rolled back in git) that would have ranked above the chosen one.
        blocked_skipped: Vec<String>,
    },
    /// No tag is allowed.
    NoMatch { tally: Tally, reason: NoMatchReason },
    /// A tag was chosen but its digest could not be pinned.
    Unpinned { tally: Tally, error: PinError },
}

impl Picked {
    /// How the tags fared.
    pub(crate) fn tally(&self) -> &Tally {
        match self {
            Picked::Chosen { tally, .. }
            | Picked::NoMatch { tally, .. }
            | Picked::Unpinned { tally, .. } => tally,
        }
    }
}

/// Why a chosen tag's digest could not be pinned.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PinError {
    /// The repository has not been scanned by this process yet: no client to ask.
    #[error("no registry client yet")]
    NoClient,
    /// The registry could not say what the tag points at.
    #[error(transparent)]
    Registry(#[from] ScanError),
    /// The manifest does not satisfy the policy (a required platform missing, no digest).
    #[error(transparent)]
    Refused(#[from] PlatformError),
}

/// The policy's decision: chooses from `tags` of the repository `image` (minus `blocked`, see
/// [`CompiledPolicy::choose`], pure), then for `digest` policies asks the registry through
/// `client` what the tag points at and pins the digest [`pick_index_digest`] picks. The one
/// place a policy decides, for the controller and for `scan --dry-run`.
pub(crate) async fn choose_and_pin(
    compiled: &CompiledPolicy,
    image: &str,
    tags: &[String],
    blocked: &HashSet<String>,
    client: Option<&RegistryClient>,
) -> Picked {
    let (tag, pin, tally, blocked_skipped) = match compiled.choose(tags, blocked) {
        Choice::Chosen {
            tag,
            resolve_digest,
            tally,
            blocked_skipped,
            ..
        } => (tag, resolve_digest, tally, blocked_skipped),
        Choice::NoMatch { tally, reason } => return Picked::NoMatch { tally, reason },
    };
    let digest = if pin {
        match pin_digest(compiled, &tag, client).await {
            Ok(digest) => Some(digest),
            Err(error) => return Picked::Unpinned { tally, error },
        }
    } else {
        None
    };
    let latest = ImageRefStatus {
        name: image.to_owned(),
        tag,
        digest,
    };
    Picked::Chosen {
        latest,
        tally,
        blocked_skipped,
    }
}

/// The digest of `tag` to pin, as [`pick_index_digest`] picks it from what the registry says.
async fn pin_digest(
    compiled: &CompiledPolicy,
    tag: &str,
    client: Option<&RegistryClient>,
) -> Result<String, PinError> {
    let client = client.ok_or(PinError::NoClient)?;
    let resolved = resolve_digest(client, tag).await?;
    let picked = pick_index_digest(
        &resolved.manifest,
        &resolved.media_type,
        &resolved.digest,
        compiled.platforms(),
    )?;
    Ok(picked.digest)
}

/// Why there are no tags to choose from: the repository is missing, cannot be scanned (its
/// own failure, quoted), or has not been scanned yet.
fn waiting_for_scan(name: &str, repo: Option<&ImageRepository>) -> (&'static str, String) {
    let Some(repo) = repo else {
        return (
            "RepositoryNotFound",
            format!("the ImageRepository {name} does not exist"),
        );
    };
    let failed = repo
        .status
        .as_ref()
        .and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.type_ == super::status::READY)
        })
        .filter(|c| c.status == "False");
    match failed {
        Some(c) => (
            "RepositoryNotReady",
            format!(
                "the ImageRepository {name} cannot be scanned ({}): {}",
                c.reason, c.message
            ),
        ),
        None => (
            "WaitingForScan",
            format!("the ImageRepository {name} has not been scanned yet"),
        ),
    }
}

fn no_match_message(tally: &Tally, reason: &NoMatchReason) -> String {
    let why = match reason {
        NoMatchReason::NoTags => "the repository has no tags".to_owned(),
        NoMatchReason::NoneEligible => "no tag passes the policy".to_owned(),
        NoMatchReason::AllBlocked { blocked_skipped } => {
            format!(
                "every eligible tag is blocked: {}",
                blocked_skipped.join(", ")
            )
        }
        NoMatchReason::TagMissing { tag } => format!("the tag {tag} is not listed"),
    };
    format!(
        "{why} ({} listed: {} malformed, {} excluded, {} unmatched, {} rejected, {} blocked)",
        tally.considered,
        tally.malformed,
        tally.excluded,
        tally.unmatched,
        tally.rejected,
        tally.blocked
    )
}

/// `blocked` with `block` added: sorted, each tag once.
fn with_blocked(blocked: &[String], block: &[String]) -> Vec<String> {
    if block.iter().all(|t| blocked.contains(t)) {
        return blocked.to_vec();
    }
    let mut all: Vec<String> = blocked.iter().chain(block).cloned().collect();
    all.sort();
    all.dedup();
    all
}

/// Writes `next` when it differs from `current`, only over the version of the policy it was
/// decided from: the update controller blocks tags on the same status, and a write from a stale
/// read would drop them (the API server answers 409, and the caller decides again).
async fn write(
    ctx: &Context,
    policy: &ImagePolicy,
    current: &ImagePolicyStatus,
    next: &ImagePolicyStatus,
) -> Result<(), Error> {
    if current == next {
        return Ok(());
    }
    let api: Api<ImagePolicy> =
        Api::namespaced(ctx.client.clone(), &policy.namespace().unwrap_or_default());
    api.patch_status(
        &policy.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({
            "metadata": { "resourceVersion": policy.resource_version() },
            "status": next,
        })),
    )
    .await?;
    Ok(())
}

/// How often [`block_tags`] decides again when the policy changed under it.
const BLOCK_ATTEMPTS: usize = 4;

/// Adds `tags` to the policy's `status.blockedTags` (a person rolled them back in git) and
/// chooses again without them, in one status write.
pub async fn block_tags(ctx: &Context, ns: &str, name: &str, tags: &[String]) -> Result<(), Error> {
    let api: Api<ImagePolicy> = Api::namespaced(ctx.client.clone(), ns);
    for attempt in 1..=BLOCK_ATTEMPTS {
        let Some(policy) = api.get_opt(name).await? else {
            return Ok(());
        };
        let blocked = policy.status.clone().unwrap_or_default().blocked_tags;
        if tags.iter().all(|t| blocked.contains(t)) {
            return Ok(());
        }
        match reconcile_inner(&policy, ctx, tags).await {
            Ok(_) => {}
            Err(Error::Kube(kube::Error::Api(e))) if e.code == 409 && attempt < BLOCK_ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(50 * attempt as u64)).await;
                continue;
            }
            // The choice failed (the registry, no scan yet): the block alone must not be lost;
            // the policy's own reconcile chooses again once it can.
            Err(e) => {
                tracing::warn!(policy = %key_of(&policy), error = %e, "blocked tags written before a new choice");
                api.patch_status(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({
                        "status": { "blockedTags": with_blocked(&blocked, tags) }
                    })),
                )
                .await?;
            }
        }
        publish(
            ctx,
            &policy,
            true,
            "Blocked",
            &format!(
                "rolled back in git, never chosen again: {}",
                tags.join(", ")
            ),
        )
        .await;
        return Ok(());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(status: serde_json::Value) -> ImageRepository {
        serde_json::from_value(json!({
            "apiVersion": "sluice.dev/v1alpha1", "kind": "ImageRepository",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"image": "registry.example/shop/web"},
            "status": status
        }))
        .unwrap()
    }

    #[test]
    fn blocking_adds_each_tag_once_in_order() {
        let s = |v: &[&str]| v.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        assert_eq!(
            with_blocked(&s(&["1.2.0"]), &s(&["1.1.0", "1.2.0"])),
            s(&["1.1.0", "1.2.0"])
        );
        assert_eq!(with_blocked(&s(&["1.2.0"]), &[]), s(&["1.2.0"]));
        // Nothing new keeps the stored order, so the status does not change.
        assert_eq!(
            with_blocked(&s(&["2.0.0", "1.0.0"]), &s(&["1.0.0"])),
            s(&["2.0.0", "1.0.0"])
        );
    }

    #[test]
    fn a_policy_says_why_its_repository_has_no_tags() {
        let (reason, message) = waiting_for_scan("web", None);
        assert_eq!(reason, "RepositoryNotFound");
        assert_eq!(message, "the ImageRepository web does not exist");

        let failing = repo(json!({"conditions": [{
            "type": "Ready", "status": "False", "reason": "Unauthorized",
            "message": "registry registry.example refused the credentials for shop/web (401/403); check the dockerconfigjson Secret",
            "lastTransitionTime": "2026-11-23T10:00:00Z"
        }]}));
        let (reason, message) = waiting_for_scan("web", Some(&failing));
        assert_eq!(reason, "RepositoryNotReady");
        assert!(
            message.starts_with("the ImageRepository web cannot be scanned (Unauthorized): registry registry.example refused"),
            "{message}"
        );

        let (reason, _) = waiting_for_scan("web", Some(&repo(json!({}))));
        assert_eq!(reason, "WaitingForScan");
    }
}
