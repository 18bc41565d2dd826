//! Which repository a git URL names, as both daemons compare them: a webhook's repository (a
//! forge names it by its https, ssh and web URLs) against a resource's `url`.
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

/// A repository as the matchers compare it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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

/// Whether `url` and any of `others` name one repository (see the module doc); never for a
/// local `url`.
pub fn same_repository<S: AsRef<str>>(url: &str, others: &[S]) -> bool {
    let Some(key) = normalize_repo_url(url) else {
        return false;
    };
    others
        .iter()
        .filter_map(|u| normalize_repo_url(u.as_ref()))
        .any(|k| k == key)
}

/// The host of `[user[:password]@]host[:port]`, without brackets or port.
fn host_of(authority: &str) -> String {
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(rest) = hostport.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default().to_string();
    }
    hostport.split(':').next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(url: &str) -> Option<String> {
        normalize_repo_url(url).map(|k| format!("{}|{}", k.host, k.path))
    }

    #[test]
    fn url_normalization() {
        let same = Some("host.example|org/repo".to_string());
        for u in [
            "https://host.example/org/repo.git",
            "https://user:token@HOST.example:8443/org/repo.git/",
            "http://host.example/org/repo/",
            "ssh://git@host.example:2222/org/repo.git",
            "git+ssh://git@host.example/org/Repo",
            "git@host.example:org/repo.git",
            "host.example:/org/repo",
            "git://host.example/org//repo.git",
            "https://host.example/org/repo?x=1#frag",
        ] {
            assert_eq!(key(u), same, "{u}");
        }
        assert_eq!(key("ssh://[::1]:22/org/repo"), Some("::1|org/repo".into()));
        assert_eq!(key("/srv/git/repo.git"), None);
        assert_eq!(key("file:///srv/git/repo.git"), None);
        assert_eq!(key("https://host.example/"), None);
        assert_eq!(key("./relative:path"), None);
    }

    #[test]
    fn same_repository_by_any_of_its_urls() {
        let named = [
            "https://gitea.example.org:3000/ops/config.git",
            "ssh://git@gitea.example.org:2222/ops/config.git",
        ];
        assert!(same_repository("git@Gitea.Example.org:ops/config", &named));
        assert!(same_repository(
            "http://gitea.example.org/ops/config/",
            &named
        ));
        assert!(!same_repository(
            "https://gitea.example.org/ops/other",
            &named
        ));
        assert!(
            !same_repository("https://other.example.org/ops/config", &named),
            "hosts must match; ports do not count"
        );
        assert!(!same_repository("/srv/git/ops/config.git", &named));
        assert!(!same_repository::<&str>(
            "https://gitea.example.org/ops/config",
            &[]
        ));
    }
}
