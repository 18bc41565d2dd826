//! Does a push concern a GitSync's source? Pure: a source URL and ref against a [`PushEvent`].
//!
//! URLs are compared as (host, path) after normalization, so the https, ssh and scp-like forms of
//! one repository are equal:
//! - scheme, port and credentials are ignored (`https://user:tok@Host:8443/org/repo.git` and
//!   `ssh://git@host:2222/org/repo` and `git@host:org/repo` are one repository);
//! - the host is compared case-insensitively and must be equal;
//! - the path is compared without a trailing `/` or `.git`, and case-insensitively (GitHub and
//!   GitLab paths are; a false match costs only an early fetch, a missed one a poll interval).
//!
//! A local path or `file://` URL never matches: no one pushes to it through a webhook.

use super::PushEvent;
use crate::resource::GitRef;

/// A repository as the matcher compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoKey {
    pub host: String,
    pub path: String,
}

/// Normalizes `https://…`, `http://…`, `ssh://…`, `git://…`, `git+ssh://…` and scp-like
/// `[user@]host:path` URLs; `None` for local paths and URLs without a host or path.
pub fn normalize_repo_url(url: &str) -> Option<RepoKey> {
    let url = url.trim();
    let (authority, path) = if let Some((scheme, rest)) = url.split_once("://") {
        if scheme.eq_ignore_ascii_case("file") {
            return None;
        }
        let end = rest.find('/').unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        (host_of(authority), path)
    } else {
        // scp-like: a colon before any slash.
        let (before, path) = url.split_once(':')?;
        if before.is_empty() || before.contains('/') {
            return None;
        }
        let host = before.rsplit_once('@').map_or(before, |(_, h)| h);
        (
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            path,
        )
    };
    let host = authority.trim_end_matches('.').to_ascii_lowercase();
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let mut path = path.trim_matches('/').to_ascii_lowercase();
    if let Some(stripped) = path.strip_suffix(".git") {
        path = stripped.trim_end_matches('/').to_string();
    }
    let path = path
        .split('/')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/");
    (!host.is_empty() && !path.is_empty()).then_some(RepoKey { host, path })
}

/// The host of `[user[:password]@]host[:port]`, without brackets or port.
fn host_of(authority: &str) -> String {
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(rest) = hostport.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default().to_string();
    }
    hostport.split(':').next().unwrap_or_default().to_string()
}

/// Whether `event` concerns the source `source_url` at `source_ref` (default: branch `main`):
/// - a branch or tag matches a push of that very ref;
/// - a commit pin matches only a push whose new revision is that commit (at least 7 hex
///   digits given): nothing else can change what it checks out.
pub fn matches(source_url: &str, source_ref: Option<&GitRef>, event: &PushEvent) -> bool {
    let Some(source) = normalize_repo_url(source_url) else {
        return false;
    };
    let same_repo = event
        .repo_urls
        .iter()
        .filter_map(|u| normalize_repo_url(u))
        .any(|k| k == source);
    same_repo && ref_matches(source_ref, event)
}

fn ref_matches(source_ref: Option<&GitRef>, event: &PushEvent) -> bool {
    let full = |prefix: &str, name: &str| {
        if name.starts_with("refs/") {
            name.to_string()
        } else {
            format!("{prefix}{name}")
        }
    };
    match source_ref {
        None => event.reference == "refs/heads/main",
        Some(GitRef::Branch(b)) => event.reference == full("refs/heads/", b),
        Some(GitRef::Tag(t)) => event.reference == full("refs/tags/", t),
        Some(GitRef::Commit(c)) => {
            let c = c.trim();
            c.len() >= 7
                && event
                    .revision
                    .as_deref()
                    .is_some_and(|r| r.get(..c.len()).is_some_and(|p| p.eq_ignore_ascii_case(c)))
        }
    }
}
