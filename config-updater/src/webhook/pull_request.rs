//! A forge's own pull-request webhooks (Gitea, GitHub, GitLab): verified payload -> which pull
//! request was closed, merged or reopened, so the `ImageUpdate`s proposing from its head branch
//! read it at once instead of at their next round. Verify first, then parse: nothing of an
//! unverified body is read.
//!
//! Only what changes what the updater does is an event; every other action (opened, edited,
//! synchronized, labelled, approved…) is ignored (`Ok(None)`, 204):
//!
//! | forge | event header | actions | [`PullRequestEvent::action`] |
//! | --- | --- | --- | --- |
//! | Gitea | `X-Gitea-Event: pull_request` | `closed` (`merged` tells which), `reopened` | `closed`, `merged`, `reopened` |
//! | GitHub | `X-GitHub-Event: pull_request` | `closed` (`merged` tells which), `reopened` | `closed`, `merged`, `reopened` |
//! | GitLab | `X-Gitlab-Event: Merge Request Hook` | `close`, `merge`, `reopen` | `closed`, `merged`, `reopened` |

use serde::Deserialize;
use sluice_shared::repo_url::same_repository;
use sluice_shared::webhook::{Delivery, Secret, WebhookError};

/// A verified change of a pull request's state: its repository (as every URL the payload names
/// it by), its head and base branches, and what happened.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PullRequestEvent {
    pub repository_urls: Vec<String>,
    /// The branch it proposes to merge (an `ImageUpdate`'s `pushBranch`).
    pub head: String,
    /// The branch it proposes to merge into (an `ImageUpdate`'s `branch`).
    pub base: String,
    /// `closed` (without merge), `merged` or `reopened`, whatever the forge calls it.
    pub action: String,
}

/// The actions [`PullRequestEvent::action`] takes.
pub const ACTIONS: &[&str] = &["closed", "merged", "reopened"];

impl PullRequestEvent {
    /// Whether this is a pull request of the repository `url` (compared as
    /// [`sluice_shared::repo_url`] normalizes URLs) from `push_branch` into `branch`: what an
    /// `ImageUpdate` whose `git` says so proposes.
    pub fn concerns(&self, url: &str, branch: &str, push_branch: &str) -> bool {
        let bare = |b: &str| {
            let b = b.trim();
            b.strip_prefix("refs/heads/").unwrap_or(b).to_owned()
        };
        bare(push_branch) == bare(&self.head)
            && bare(branch) == bare(&self.base)
            && same_repository(url, &self.repository_urls)
    }
}

fn json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, WebhookError> {
    serde_json::from_slice(body).map_err(WebhookError::malformed)
}

/// The event type header, required: without it we cannot tell a pull request from anything else.
fn event_header<'a>(d: &Delivery<'a>, name: &str) -> Result<&'a str, WebhookError> {
    d.header(name)
        .map(str::trim)
        .ok_or_else(|| WebhookError::UnknownEvent(format!("no {name} header")))
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A branch name from a payload's `ref` (a bare name, or `refs/heads/…`), or from its `label`
/// when the ref is no branch (Gitea names `refs/pull/<n>/head` once the branch is gone).
fn branch(reference: &Option<String>, label: &Option<String>) -> Option<String> {
    match non_empty(reference) {
        Some(r) if r.starts_with("refs/heads/") => Some(r["refs/heads/".len()..].to_owned()),
        Some(r) if !r.starts_with("refs/") => Some(r.to_owned()),
        _ => non_empty(label).map(str::to_owned),
    }
}

/// Builds the event; a payload without repository URL or branches is malformed.
fn event(
    urls: &[&Option<String>],
    head: Option<String>,
    base: Option<String>,
    action: &str,
) -> Result<Option<PullRequestEvent>, WebhookError> {
    let mut repository_urls: Vec<String> = Vec::new();
    for url in urls.iter().filter_map(|u| non_empty(u)) {
        if !repository_urls.iter().any(|u| u == url) {
            repository_urls.push(url.to_owned());
        }
    }
    if repository_urls.is_empty() {
        return Err(WebhookError::Malformed(
            "the payload names no repository URL".into(),
        ));
    }
    let head = head.ok_or_else(|| WebhookError::Malformed("no head branch".into()))?;
    let base = base.ok_or_else(|| WebhookError::Malformed("no base branch".into()))?;
    Ok(Some(PullRequestEvent {
        repository_urls,
        head,
        base,
        action: action.to_owned(),
    }))
}

/// Gitea's and GitHub's payload (Gitea's is GitHub's shape).
#[derive(Deserialize)]
struct HubPayload {
    action: Option<String>,
    pull_request: Option<HubPullRequest>,
    repository: Option<HubRepo>,
}

#[derive(Deserialize)]
struct HubPullRequest {
    #[serde(default)]
    merged: bool,
    head: Option<HubBranch>,
    base: Option<HubBranch>,
}

#[derive(Deserialize)]
struct HubBranch {
    #[serde(rename = "ref")]
    reference: Option<String>,
    label: Option<String>,
}

#[derive(Deserialize)]
struct HubRepo {
    clone_url: Option<String>,
    ssh_url: Option<String>,
    html_url: Option<String>,
}

/// The shared part of Gitea and GitHub once verified and known to be `pull_request`.
fn hub_event(
    d: &Delivery<'_>,
    label_is_branch: bool,
) -> Result<Option<PullRequestEvent>, WebhookError> {
    let payload: HubPayload = json(d.body)?;
    let pr = payload
        .pull_request
        .ok_or_else(|| WebhookError::Malformed("no pull_request".into()))?;
    let action = match payload.action.as_deref().map(str::trim) {
        Some("closed") if pr.merged => "merged",
        Some("closed") => "closed",
        Some("reopened") => "reopened",
        _ => return Ok(None),
    };
    let repo = payload
        .repository
        .ok_or_else(|| WebhookError::Malformed("no repository".into()))?;
    // GitHub's label is `owner:branch`, never a branch name of its own.
    let side = |b: Option<HubBranch>| {
        b.and_then(|b| {
            let label = if label_is_branch { b.label } else { None };
            branch(&b.reference, &label)
        })
    };
    event(
        &[&repo.clone_url, &repo.ssh_url, &repo.html_url],
        side(pr.head),
        side(pr.base),
        action,
    )
}

/// Gitea (and Forgejo): `X-Gitea-Signature` (bare hex HMAC-SHA256), then
/// `X-Gitea-Event: pull_request` closed (merged or not) or reopened.
pub fn parse_gitea_pull_request(
    secret: &Secret,
    d: &Delivery<'_>,
) -> Result<Option<PullRequestEvent>, WebhookError> {
    d.verify_hmac_sha256(secret, "X-Gitea-Signature")?;
    if event_header(d, "x-gitea-event")? != "pull_request" {
        return Ok(None);
    }
    hub_event(d, true)
}

/// GitHub: `X-Hub-Signature-256`, then `X-GitHub-Event: pull_request` closed (merged or not)
/// or reopened.
pub fn parse_github_pull_request(
    secret: &Secret,
    d: &Delivery<'_>,
) -> Result<Option<PullRequestEvent>, WebhookError> {
    d.verify_hmac_sha256(secret, "X-Hub-Signature-256")?;
    if event_header(d, "x-github-event")? != "pull_request" {
        return Ok(None);
    }
    hub_event(d, false)
}

#[derive(Deserialize)]
struct GitlabMergeRequest {
    object_kind: Option<String>,
    project: Option<GitlabProject>,
    object_attributes: Option<GitlabAttributes>,
}

#[derive(Deserialize)]
struct GitlabProject {
    git_http_url: Option<String>,
    git_ssh_url: Option<String>,
    web_url: Option<String>,
}

#[derive(Deserialize)]
struct GitlabAttributes {
    source_branch: Option<String>,
    target_branch: Option<String>,
    action: Option<String>,
    state: Option<String>,
}

/// GitLab: `X-Gitlab-Token`, then `X-Gitlab-Event: Merge Request Hook` (or a `System Hook`
/// whose `object_kind` is `merge_request`) with action `close`, `merge` or `reopen` (without an
/// action, as old GitLab sends, a `closed` or `merged` state).
pub fn parse_gitlab_merge_request(
    secret: &Secret,
    d: &Delivery<'_>,
) -> Result<Option<PullRequestEvent>, WebhookError> {
    d.verify_token_header(secret, "X-Gitlab-Token")?;
    let kind = event_header(d, "x-gitlab-event")?;
    if !matches!(kind, "Merge Request Hook" | "System Hook") {
        return Ok(None);
    }
    let payload: GitlabMergeRequest = json(d.body)?;
    if payload.object_kind.as_deref() != Some("merge_request") {
        return Ok(None);
    }
    let attributes = payload
        .object_attributes
        .ok_or_else(|| WebhookError::Malformed("no object_attributes".into()))?;
    let action = match (non_empty(&attributes.action), non_empty(&attributes.state)) {
        (Some("close"), _) | (None, Some("closed")) => "closed",
        (Some("merge"), _) | (None, Some("merged")) => "merged",
        (Some("reopen"), _) => "reopened",
        _ => return Ok(None),
    };
    let project = payload
        .project
        .ok_or_else(|| WebhookError::Malformed("no project".into()))?;
    let name = |b: &Option<String>| branch(b, &None);
    event(
        &[
            &project.git_http_url,
            &project.git_ssh_url,
            &project.web_url,
        ],
        name(&attributes.source_branch),
        name(&attributes.target_branch),
        action,
    )
}

#[cfg(test)]
#[path = "pull_request_tests.rs"]
mod tests;
