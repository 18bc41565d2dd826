//! The `ImagePolicy` reconciler: choose from the repository's last scanned tags (minus
//! `status.blockedTags`), pin the digest for `digest` policies, write `status.latestRef`.
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
use crate::policy::{Choice, CompiledPolicy, NoMatchReason, Tally, pick_index_digest};
use crate::resource::{ImagePolicy, ImagePolicyStatus, ImageRefStatus, ImageRepository};
use crate::scan::resolve_digest;

pub async fn reconcile(policy: Arc<ImagePolicy>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let key = key_of(policy.as_ref());
    let result = reconcile_inner(&policy, &ctx).await;
    ctx.finish("ImagePolicy", &key, started, result)
}

async fn reconcile_inner(policy: &ImagePolicy, ctx: &Context) -> Result<Action, Error> {
    let ns = policy.namespace().unwrap_or_default();
    let generation = policy.metadata.generation;
    let status = policy.status.clone().unwrap_or_default();
    let mut next = status.clone();
    next.observed_generation = generation;

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

    let blocked: HashSet<String> = status.blocked_tags.iter().cloned().collect();
    let choice = compiled.choose(scanned.tags.as_slice(), &blocked);
    next.last_scan_time = last_scan;
    next.tags_seen = Some(choice.tally().considered as i64);
    match choice {
        Choice::Chosen {
            tag,
            resolve_digest: pin,
            blocked_skipped,
            ..
        } => {
            let digest = if pin {
                let client = scanned
                    .client
                    .clone()
                    .ok_or_else(|| Error::Digest("no registry client yet".to_owned()))?;
                let resolved = resolve_digest(&client, &tag).await?;
                let picked = pick_index_digest(
                    &resolved.manifest,
                    &resolved.media_type,
                    &resolved.digest,
                    compiled.platforms(),
                );
                match picked {
                    Ok(p) => Some(p.digest),
                    Err(e) => {
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
                }
            } else {
                None
            };
            let latest = ImageRefStatus {
                name: scanned.image.clone(),
                tag: tag.clone(),
                digest,
            };
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
        Choice::NoMatch { tally, reason } => {
            let message = no_match_message(&tally, &reason);
            next.conditions = set_ready(&status.conditions, false, "NoMatch", &message, generation);
        }
    }
    write(ctx, policy, &status, &next).await?;
    Ok(Action::await_change())
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

/// Writes `next` when it differs from `current`.
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
        &Patch::Merge(json!({ "status": next })),
    )
    .await?;
    Ok(())
}

/// Adds `tags` to the policy's `status.blockedTags` (a person rolled them back in git).
pub async fn block_tags(ctx: &Context, ns: &str, name: &str, tags: &[String]) -> Result<(), Error> {
    let api: Api<ImagePolicy> = Api::namespaced(ctx.client.clone(), ns);
    let Some(policy) = api.get_opt(name).await? else {
        return Ok(());
    };
    let mut blocked = policy.status.clone().unwrap_or_default().blocked_tags;
    let before = blocked.len();
    for tag in tags {
        if !blocked.contains(tag) {
            blocked.push(tag.clone());
        }
    }
    if blocked.len() == before {
        return Ok(());
    }
    blocked.sort();
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": { "blockedTags": blocked } })),
    )
    .await?;
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
