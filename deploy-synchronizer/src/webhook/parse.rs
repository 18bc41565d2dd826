//! Each provider's verification and push payload. Verify first, then parse: nothing of an
//! unverified body is read.

use serde::Deserialize;
use sluice_shared::webhook::{Delivery, Secret, WebhookError, verify_hmac_sha1};

use super::PushEvent;

const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

/// Builds the event from a payload's parts; `None` for a deletion (the ref now points nowhere).
fn push_event<'a>(
    urls: impl IntoIterator<Item = &'a Option<String>>,
    reference: Option<String>,
    revision: Option<String>,
) -> Result<Option<PushEvent>, WebhookError> {
    let mut repo_urls: Vec<String> = Vec::new();
    for url in urls.into_iter().flatten() {
        let url = url.trim();
        if !url.is_empty() && !repo_urls.iter().any(|u| u == url) {
            repo_urls.push(url.to_string());
        }
    }
    if repo_urls.is_empty() {
        return Err(WebhookError::Malformed(
            "the payload names no repository URL".into(),
        ));
    }
    let reference = reference
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .ok_or_else(|| WebhookError::Malformed("the payload names no ref".into()))?;
    let reference = if reference.starts_with("refs/") {
        reference
    } else {
        format!("refs/heads/{reference}")
    };
    let revision = revision
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    if revision
        .as_deref()
        .is_some_and(|r| r.bytes().all(|b| b == b'0'))
    {
        return Ok(None);
    }
    Ok(Some(PushEvent {
        repo_urls,
        reference,
        revision,
    }))
}

fn json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, WebhookError> {
    serde_json::from_slice(body).map_err(WebhookError::malformed)
}

/// The event type header, required: without it we cannot tell a push from anything else.
fn event_header<'a>(d: &Delivery<'a>, name: &str) -> Result<&'a str, WebhookError> {
    d.header(name)
        .map(str::trim)
        .ok_or_else(|| WebhookError::UnknownEvent(format!("no {name} header")))
}

#[derive(Deserialize)]
struct GithubPush {
    #[serde(rename = "ref")]
    reference: Option<String>,
    after: Option<String>,
    #[serde(default)]
    deleted: bool,
    repository: Option<GithubRepo>,
}

#[derive(Deserialize)]
struct GithubRepo {
    clone_url: Option<String>,
    ssh_url: Option<String>,
    html_url: Option<String>,
    git_url: Option<String>,
}

/// GitHub: `X-Hub-Signature-256` (or the legacy SHA-1 `X-Hub-Signature` when only that one is
/// sent), then `X-GitHub-Event: push`.
pub fn parse_github(secret: &Secret, d: &Delivery<'_>) -> Result<Option<PushEvent>, WebhookError> {
    match (d.header("x-hub-signature-256"), d.header("x-hub-signature")) {
        (None, Some(legacy)) => verify_hmac_sha1(secret.expose(), d.body, legacy)?,
        _ => d.verify_hmac_sha256(secret, "X-Hub-Signature-256")?,
    }
    if event_header(d, "x-github-event")? != "push" {
        return Ok(None);
    }
    let push: GithubPush = json(d.body)?;
    let repo = push
        .repository
        .ok_or_else(|| WebhookError::Malformed("no repository".into()))?;
    if push.deleted {
        return Ok(None);
    }
    push_event(
        [
            &repo.clone_url,
            &repo.ssh_url,
            &repo.html_url,
            &repo.git_url,
        ],
        push.reference,
        push.after,
    )
}

#[derive(Deserialize)]
struct GitlabPush {
    object_kind: Option<String>,
    #[serde(rename = "ref")]
    reference: Option<String>,
    after: Option<String>,
    checkout_sha: Option<String>,
    project: Option<GitlabRepo>,
    repository: Option<GitlabRepo>,
}

#[derive(Deserialize, Default)]
struct GitlabRepo {
    git_http_url: Option<String>,
    git_ssh_url: Option<String>,
    web_url: Option<String>,
    homepage: Option<String>,
}

/// GitLab: `X-Gitlab-Token`, then `X-Gitlab-Event: Push Hook` / `Tag Push Hook` (or a
/// `System Hook` whose `object_kind` is `push` / `tag_push`).
pub fn parse_gitlab(secret: &Secret, d: &Delivery<'_>) -> Result<Option<PushEvent>, WebhookError> {
    d.verify_token_header(secret, "X-Gitlab-Token")?;
    let event = event_header(d, "x-gitlab-event")?;
    if !matches!(event, "Push Hook" | "Tag Push Hook" | "System Hook") {
        return Ok(None);
    }
    let push: GitlabPush = json(d.body)?;
    if !matches!(push.object_kind.as_deref(), Some("push" | "tag_push")) {
        return Ok(None);
    }
    let project = push.project.unwrap_or_default();
    let repository = push.repository.unwrap_or_default();
    // A deletion has checkout_sha null and after all zeros; prefer checkout_sha otherwise.
    let revision = push.checkout_sha.or(push.after);
    push_event(
        [
            &project.git_http_url,
            &project.git_ssh_url,
            &project.web_url,
            &repository.git_http_url,
            &repository.git_ssh_url,
            &repository.homepage,
        ],
        push.reference,
        Some(revision.unwrap_or_else(|| ZERO_SHA.to_string())),
    )
}

/// Gitea (and Forgejo, which sends the same headers): `X-Gitea-Signature` (bare hex
/// HMAC-SHA256), then `X-Gitea-Event: push`. The payload is GitHub's shape.
pub fn parse_gitea(secret: &Secret, d: &Delivery<'_>) -> Result<Option<PushEvent>, WebhookError> {
    d.verify_hmac_sha256(secret, "X-Gitea-Signature")?;
    if event_header(d, "x-gitea-event")? != "push" {
        return Ok(None);
    }
    let push: GithubPush = json(d.body)?;
    let repo = push
        .repository
        .ok_or_else(|| WebhookError::Malformed("no repository".into()))?;
    push_event(
        [&repo.clone_url, &repo.ssh_url, &repo.html_url],
        push.reference,
        push.after,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenericPush {
    url: Option<String>,
    #[serde(default)]
    urls: Vec<Option<String>>,
    #[serde(rename = "ref")]
    reference: Option<String>,
    revision: Option<String>,
}

/// Generic: `X-Signature-256: sha256=<hex>`, then `{ "url", "ref", "revision" }`.
pub fn parse_generic(secret: &Secret, d: &Delivery<'_>) -> Result<Option<PushEvent>, WebhookError> {
    d.verify_hmac_sha256(secret, "X-Signature-256")?;
    let push: GenericPush = json(d.body)?;
    push_event(
        std::iter::once(&push.url).chain(push.urls.iter()),
        push.reference,
        push.revision,
    )
}
