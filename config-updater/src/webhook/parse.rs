//! Each registry's verification and payload. Verify first, then parse: nothing of an unverified
//! body is read.

use serde::Deserialize;
use sluice_shared::webhook::{Delivery, Secret, WebhookError, verify_bearer};

use super::RegistryEvent;
use super::image::normalize_image;

fn json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, WebhookError> {
    serde_json::from_slice(body).map_err(WebhookError::malformed)
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// `host[:port]` of `http(s)://host[:port]/…` or of `host[:port]/…`.
fn host_of_url(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split('/').next()?.rsplit('@').next()?;
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The media type distribution sends its event envelopes as (`application/json` is accepted too).
pub const ENVELOPE_MEDIA_TYPE: &str = "application/vnd.docker.distribution.events.v1+json";
/// The media type of distribution 3's envelopes: the same envelope under a new name.
pub const ENVELOPE_V2_MEDIA_TYPE: &str = "application/vnd.docker.distribution.events.v2+json";

#[derive(Deserialize)]
struct Envelope {
    events: Vec<DistributionEvent>,
}

#[derive(Deserialize)]
struct DistributionEvent {
    action: Option<String>,
    #[serde(default)]
    target: DistributionTarget,
    #[serde(default)]
    request: DistributionRequest,
}

#[derive(Deserialize, Default)]
struct DistributionTarget {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    digest: Option<String>,
    repository: Option<String>,
    tag: Option<String>,
    url: Option<String>,
}

#[derive(Deserialize, Default)]
struct DistributionRequest {
    host: Option<String>,
}

/// The CNCF distribution registry's notifications: `Authorization: Bearer <secret>`, an envelope
/// of events; each tagged manifest push is an event, with the host from `request.host` (the
/// host clients pushed to) or else `target.url`.
pub fn parse_distribution(
    secret: &Secret,
    d: &Delivery<'_>,
) -> Result<Vec<RegistryEvent>, WebhookError> {
    verify_bearer(secret.expose(), d.signature_header("Authorization")?)?;
    let content_type = d.header("content-type").unwrap_or(ENVELOPE_MEDIA_TYPE);
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    if ![
        ENVELOPE_MEDIA_TYPE,
        ENVELOPE_V2_MEDIA_TYPE,
        "application/json",
    ]
    .iter()
    .any(|m| media_type.eq_ignore_ascii_case(m))
    {
        return Err(WebhookError::Malformed(format!(
            "content type {media_type:?} is not {ENVELOPE_MEDIA_TYPE}"
        )));
    }
    let envelope: Envelope = json(d.body)?;
    Ok(envelope
        .events
        .into_iter()
        .filter(|e| e.action.as_deref() == Some("push"))
        .filter(|e| {
            // Layers have no tag either; this only guards against a tagged non-manifest.
            e.target
                .media_type
                .as_deref()
                .is_none_or(|m| m.contains("manifest") || m.contains("index"))
        })
        .filter_map(|e| {
            let tag = non_empty(e.target.tag)?;
            let repository = non_empty(e.target.repository)?;
            let host = non_empty(e.request.host)
                .map(|h| h.to_ascii_lowercase())
                .or_else(|| e.target.url.as_deref().and_then(host_of_url));
            Some(RegistryEvent {
                registry_host: host,
                repository,
                tag: Some(tag),
                digest: non_empty(e.target.digest),
            })
        })
        .collect())
}

#[derive(Deserialize)]
struct DockerHubPush {
    push_data: DockerHubPushData,
    repository: DockerHubRepo,
}

#[derive(Deserialize)]
struct DockerHubPushData {
    tag: Option<String>,
}

#[derive(Deserialize)]
struct DockerHubRepo {
    repo_name: Option<String>,
}

/// Docker Hub: no signature exists, so the webhook URL carries `?token=<secret>`.
pub fn parse_dockerhub(
    secret: &Secret,
    d: &Delivery<'_>,
) -> Result<Vec<RegistryEvent>, WebhookError> {
    d.verify_token_query(secret, "token")?;
    let push: DockerHubPush = json(d.body)?;
    let repo = non_empty(push.repository.repo_name)
        .ok_or_else(|| WebhookError::Malformed("no repository.repo_name".into()))?;
    let Some(tag) = non_empty(push.push_data.tag) else {
        return Ok(vec![]);
    };
    let key = normalize_image(&format!("docker.io/{repo}"))
        .ok_or_else(|| WebhookError::Malformed(format!("bad repository {repo:?}")))?;
    Ok(vec![RegistryEvent {
        registry_host: Some(key.host),
        repository: key.path,
        tag: Some(tag),
        digest: None,
    }])
}

#[derive(Deserialize)]
struct HarborEvent {
    #[serde(rename = "type")]
    kind: Option<String>,
    event_data: Option<HarborData>,
}

#[derive(Deserialize)]
struct HarborData {
    #[serde(default)]
    resources: Vec<HarborResource>,
    repository: HarborRepo,
}

#[derive(Deserialize)]
struct HarborResource {
    digest: Option<String>,
    tag: Option<String>,
    resource_url: Option<String>,
}

#[derive(Deserialize)]
struct HarborRepo {
    repo_full_name: Option<String>,
}

/// Harbor: the configured "Auth Header" arrives as `Authorization: <secret>`; `PUSH_ARTIFACT`
/// events name the repository and each pushed resource (host from its `resource_url`).
pub fn parse_harbor(secret: &Secret, d: &Delivery<'_>) -> Result<Vec<RegistryEvent>, WebhookError> {
    d.verify_token_header(secret, "Authorization")?;
    let event: HarborEvent = json(d.body)?;
    if event.kind.as_deref() != Some("PUSH_ARTIFACT") {
        return Ok(vec![]);
    }
    let data = event
        .event_data
        .ok_or_else(|| WebhookError::Malformed("no event_data".into()))?;
    let repository = non_empty(data.repository.repo_full_name)
        .ok_or_else(|| WebhookError::Malformed("no event_data.repository.repo_full_name".into()))?;
    Ok(data
        .resources
        .into_iter()
        .filter_map(|r| {
            let tag = non_empty(r.tag)?;
            Some(RegistryEvent {
                registry_host: r.resource_url.as_deref().and_then(host_of_url),
                repository: repository.clone(),
                tag: Some(tag),
                digest: non_empty(r.digest),
            })
        })
        .collect())
}

#[derive(Deserialize)]
struct QuayPush {
    repository: Option<String>,
    docker_url: Option<String>,
    #[serde(default)]
    updated_tags: Vec<String>,
}

/// Quay: no signature exists, so the webhook URL carries `?token=<secret>`; a repository push
/// lists `updated_tags`, and `docker_url` (`quay.io/org/repo`) gives the host.
pub fn parse_quay(secret: &Secret, d: &Delivery<'_>) -> Result<Vec<RegistryEvent>, WebhookError> {
    d.verify_token_query(secret, "token")?;
    let push: QuayPush = json(d.body)?;
    let repository = non_empty(push.repository)
        .ok_or_else(|| WebhookError::Malformed("no repository".into()))?;
    let host = push.docker_url.as_deref().and_then(host_of_url);
    Ok(push
        .updated_tags
        .into_iter()
        .filter_map(|t| non_empty(Some(t)))
        .map(|tag| RegistryEvent {
            registry_host: host.clone(),
            repository: repository.clone(),
            tag: Some(tag),
            digest: None,
        })
        .collect())
}

#[derive(Deserialize)]
struct GithubPackageEvent {
    action: Option<String>,
    package: GithubPackage,
}

#[derive(Deserialize)]
struct GithubPackage {
    name: String,
    namespace: String,
    package_type: Option<String>,
    package_version: Option<GithubPackageVersion>,
    registry: Option<GithubRegistry>,
}

#[derive(Deserialize)]
struct GithubPackageVersion {
    version: Option<String>,
    container_metadata: Option<GithubContainerMetadata>,
}

#[derive(Deserialize)]
struct GithubContainerMetadata {
    tag: Option<GithubTag>,
}

#[derive(Deserialize)]
struct GithubTag {
    name: Option<String>,
    digest: Option<String>,
}

#[derive(Deserialize)]
struct GithubRegistry {
    url: Option<String>,
}

/// GitHub's `package` event: `X-Hub-Signature-256`, then a published or updated container
/// version with a tag; GHCR paths are lowercase `namespace/name`.
pub fn parse_github_package(
    secret: &Secret,
    d: &Delivery<'_>,
) -> Result<Vec<RegistryEvent>, WebhookError> {
    d.verify_hmac_sha256(secret, "X-Hub-Signature-256")?;
    let kind = d
        .header("x-github-event")
        .ok_or_else(|| WebhookError::UnknownEvent("no X-GitHub-Event header".into()))?;
    if kind.trim() != "package" {
        return Ok(vec![]);
    }
    let event: GithubPackageEvent = json(d.body)?;
    let package = event.package;
    let is_container = package
        .package_type
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("container"));
    if !matches!(event.action.as_deref(), Some("published" | "updated")) || !is_container {
        return Ok(vec![]);
    }
    let Some(version) = package.package_version else {
        return Ok(vec![]);
    };
    let tag = version.container_metadata.and_then(|m| m.tag);
    let (tag, tag_digest) = tag.map_or((None, None), |t| (non_empty(t.name), non_empty(t.digest)));
    let Some(tag) = tag else {
        return Ok(vec![]);
    };
    let digest = tag_digest.or(non_empty(version.version).filter(|v| v.starts_with("sha256:")));
    let host = package
        .registry
        .and_then(|r| r.url)
        .as_deref()
        .and_then(host_of_url)
        .unwrap_or_else(|| "ghcr.io".to_string());
    Ok(vec![RegistryEvent {
        registry_host: Some(host),
        repository: format!("{}/{}", package.namespace, package.name).to_ascii_lowercase(),
        tag: Some(tag),
        digest,
    }])
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenericPush {
    image: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// Generic: `X-Signature-256: sha256=<hex>`, then `{"image", "tag", "digest"}`.
pub fn parse_generic(
    secret: &Secret,
    d: &Delivery<'_>,
) -> Result<Vec<RegistryEvent>, WebhookError> {
    d.verify_hmac_sha256(secret, "X-Signature-256")?;
    let push: GenericPush = json(d.body)?;
    let key = normalize_image(&push.image)
        .ok_or_else(|| WebhookError::Malformed(format!("bad image {:?}", push.image)))?;
    Ok(vec![RegistryEvent {
        registry_host: Some(key.host),
        repository: key.path,
        tag: non_empty(push.tag),
        digest: non_empty(push.digest),
    }])
}
