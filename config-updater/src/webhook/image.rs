//! Does a registry event concern a watched image? Pure, with Docker's naming rules:
//! - a first path component with a `.` or `:`, or `localhost`, is a registry host; anything else
//!   is on Docker Hub (`docker.io`);
//! - Docker Hub's aliases (`index.docker.io`, `registry-1.docker.io`, `registry.hub.docker.com`)
//!   are `docker.io`, and a one-component Docker Hub path is under `library/`
//!   (`nginx` → `docker.io/library/nginx`);
//! - hosts compare case-insensitively and with their port (`127.0.0.1:15000` and
//!   `127.0.0.1:15443` are two registries); paths compare exactly (they are lowercase).

use super::RegistryEvent;
use sluice_shared::registry_auth::DOCKER_HUB;

/// A repository as the matcher compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageKey {
    pub host: String,
    pub path: String,
}

fn normalize_host(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_string()
        }
        _ => host,
    }
}

fn normalize_path(host: &str, path: &str) -> String {
    let path = path.trim().trim_matches('/');
    if host == DOCKER_HUB && !path.is_empty() && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_string()
    }
}

/// `registry/path/repo` (a tag or digest, if any, is dropped) → host and path; `None` for an
/// empty name.
pub fn normalize_image(image: &str) -> Option<ImageKey> {
    let image = image.trim();
    let image = image.split_once('@').map_or(image, |(name, _)| name);
    // A tag is a colon after the last slash (a colon before it is a port).
    let image = match (image.rfind(':'), image.rfind('/')) {
        (Some(colon), slash) if slash.is_none_or(|s| colon > s) => &image[..colon],
        _ => image,
    };
    let (host, path) = match image.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (normalize_host(first), rest)
        }
        _ => (DOCKER_HUB.to_string(), image),
    };
    let path = normalize_path(&host, path);
    (!path.is_empty() && !host.is_empty()).then_some(ImageKey { host, path })
}

/// Whether `event` is a push to the repository of `watched` (`registry/path/repo`). An event
/// that names no host matches on the path alone.
pub fn matches(watched: &str, event: &RegistryEvent) -> bool {
    let Some(watched) = normalize_image(watched) else {
        return false;
    };
    match &event.registry_host {
        Some(host) => {
            let host = normalize_host(host);
            host == watched.host && normalize_path(&host, &event.repository) == watched.path
        }
        None => event.repository.trim().trim_matches('/') == watched.path,
    }
}
