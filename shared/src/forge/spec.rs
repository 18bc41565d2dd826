//! Which forge, where its API is and which repository: the CRD field ([`ForgeSpec`]) and what is
//! derived from the git URL when the field leaves it out.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ForgeError;
use crate::git::url::{RemoteUrl, Transport, redact};

/// The kind of forge, which decides the API's paths and JSON shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Gitea,
    GitHub,
    GitLab,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Gitea => "gitea",
            Provider::GitHub => "github",
            Provider::GitLab => "gitlab",
        }
    }

    /// The guess for a host: `github` in its name is GitHub, `gitlab` GitLab, anything else Gitea.
    pub fn guess(host: &str) -> Provider {
        let host = host.to_ascii_lowercase();
        if host.contains("github") {
            Provider::GitHub
        } else if host.contains("gitlab") {
            Provider::GitLab
        } else {
            Provider::Gitea
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = String;

    fn from_str(s: &str) -> Result<Provider, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "gitea" => Ok(Provider::Gitea),
            "github" => Ok(Provider::GitHub),
            "gitlab" => Ok(Provider::GitLab),
            other => Err(format!(
                "unknown forge provider {other:?} (gitea, github or gitlab)"
            )),
        }
    }
}

/// The forge (pull-request host) of a git repository. Every field is optional: what is left out
/// is derived from the repository's git URL.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForgeSpec {
    /// `gitea`, `github` or `gitlab`. Default: guessed from the git URL's host (`github` in the
    /// name: GitHub; `gitlab`: GitLab; anything else: Gitea).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    /// The API base URL, e.g. `https://git.example.com/api/v1`. Default, from the git URL's host
    /// (https for ssh URLs): Gitea `<host>/api/v1`; GitHub `https://api.github.com` for
    /// github.com, else `<host>/api/v3`; GitLab `<host>/api/v4`. Set it for a forge served
    /// below a path; the repository path is then read after that prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// The name of a Secret in this namespace whose key `token` holds the forge's API token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<String>,
}

/// A repository on a forge. On GitLab `owner` is the whole namespace (`group/subgroup`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Repo {
    pub owner: String,
    pub name: String,
}

impl fmt::Display for Repo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// What a git URL and a [`ForgeSpec`] resolve to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Target {
    pub provider: Provider,
    /// The API base, without a trailing `/`.
    pub api: String,
    pub repo: Repo,
}

/// Resolves the provider, API base and repository of `git_url` (https, http, ssh or scp-like).
pub(super) fn resolve(git_url: &str, spec: &ForgeSpec) -> Result<Target, ForgeError> {
    let config = |reason: String| ForgeError::Config { reason };
    let shown = redact(git_url);
    let remote = RemoteUrl::parse(git_url).map_err(|e| config(format!("git URL {shown}: {e}")))?;
    if remote.transport == Transport::Local || remote.host.is_empty() {
        return Err(config(format!(
            "git URL {shown} names no host: a forge needs the repository's https or ssh URL"
        )));
    }
    let provider = spec
        .provider
        .unwrap_or_else(|| Provider::guess(&remote.host));
    let api = match &spec.api_url {
        Some(url) => explicit_api(url)?,
        None => default_api(provider, &remote),
    };
    let repo = repo_of(provider, url_path(git_url), &api, spec.api_url.is_some())
        .map_err(|e| config(format!("git URL {shown}: {e}")))?;
    Ok(Target {
        provider,
        api,
        repo,
    })
}

fn explicit_api(url: &str) -> Result<String, ForgeError> {
    let trimmed = url.trim().trim_end_matches('/');
    let lower = trimmed.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Ok(trimmed.to_string()),
        _ => Err(ForgeError::Config {
            reason: format!(
                "forge apiUrl {:?} is not an http(s) URL with a host",
                redact(url)
            ),
        }),
    }
}

fn default_api(provider: Provider, remote: &RemoteUrl) -> String {
    let (scheme, port) = match remote.transport {
        Transport::Http => ("http", (remote.port != 80).then_some(remote.port)),
        Transport::Https => ("https", (remote.port != 443).then_some(remote.port)),
        // The API of an ssh remote is its host's https, on the default port.
        Transport::Ssh | Transport::Local => ("https", None),
    };
    let host = if remote.host.contains(':') {
        format!("[{}]", remote.host)
    } else {
        remote.host.clone()
    };
    let origin = match port {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    };
    match provider {
        Provider::Gitea => format!("{origin}/api/v1"),
        Provider::GitHub if remote.host.eq_ignore_ascii_case("github.com") => {
            "https://api.github.com".to_string()
        }
        Provider::GitHub => format!("{origin}/api/v3"),
        Provider::GitLab => format!("{origin}/api/v4"),
    }
}

/// The path of a git URL: after the authority (`scheme://…`) or after the host's `:` (scp-like).
fn url_path(url: &str) -> &str {
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None if url.starts_with('[') || url.contains("@[") => {
            url.split_once("]:").map_or("", |(_, path)| path)
        }
        None => url.split_once(':').map_or("", |(_, path)| path),
    };
    path.split(['?', '#']).next().unwrap_or_default()
}

/// `owner/name` from a URL path: the last segment (without `.git`) is the name, the ones before
/// it the owner. With an explicit API URL below a path (`https://host/git/api/v1`), that path
/// prefix (`/git`) is no part of the repository's.
fn repo_of(provider: Provider, path: &str, api: &str, explicit: bool) -> Result<Repo, String> {
    let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if let Some(last) = segments.last_mut() {
        *last = last.strip_suffix(".git").unwrap_or(last);
    }
    segments.retain(|s| !s.is_empty());
    if explicit {
        let prefix = api_prefix(api);
        if !prefix.is_empty() && segments.starts_with(&prefix) && segments.len() > prefix.len() {
            segments.drain(..prefix.len());
        }
    }
    if segments.len() < 2 {
        return Err("its path names no owner/repository".into());
    }
    if segments.len() > 2 && provider != Provider::GitLab {
        return Err(format!(
            "{provider} repositories are owner/name, but the path has {} parts; for a forge \
             served below a path, set the forge's apiUrl (e.g. https://host/<prefix>/api/v1)",
            segments.len()
        ));
    }
    let name = segments.pop().unwrap_or_default().to_string();
    Ok(Repo {
        owner: segments.join("/"),
        name,
    })
}

/// The path segments of an API URL before its `/api/…` part.
fn api_prefix(api: &str) -> Vec<&str> {
    let path = api
        .split_once("://")
        .map_or("", |(_, rest)| rest.find('/').map_or("", |i| &rest[i..]));
    let before_api = path.rfind("/api/").map_or("", |i| &path[..i]);
    before_api.split('/').filter(|s| !s.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Target {
        resolve(url, &ForgeSpec::default()).unwrap()
    }

    fn repo(owner: &str, name: &str) -> Repo {
        Repo {
            owner: owner.into(),
            name: name.into(),
        }
    }

    #[test]
    fn derives_the_api_from_https_and_http_urls() {
        let t = target("https://git.example.com:8443/team/config.git");
        assert_eq!(t.provider, Provider::Gitea);
        assert_eq!(t.api, "https://git.example.com:8443/api/v1");
        assert_eq!(t.repo, repo("team", "config"));
        let t = target("http://127.0.0.1:13000/sluice/demo-config.git");
        assert_eq!(t.api, "http://127.0.0.1:13000/api/v1");
        assert_eq!(t.repo, repo("sluice", "demo-config"));
        // Default ports, credentials and a trailing slash leave no trace.
        let t = target("https://user:s3cret@git.example.com:443/team/config/");
        assert_eq!(t.api, "https://git.example.com/api/v1");
        assert_eq!(t.repo, repo("team", "config"));
        let t = target("https://[::1]:3000/o/r");
        assert_eq!(t.api, "https://[::1]:3000/api/v1");
    }

    #[test]
    fn ssh_urls_use_the_hosts_https_without_the_port() {
        let t = target("ssh://git@git.example.com:2222/team/config.git");
        assert_eq!(t.api, "https://git.example.com/api/v1");
        assert_eq!(t.repo, repo("team", "config"));
        let t = target("git@github.com:octo/deploy.git");
        assert_eq!(t.provider, Provider::GitHub);
        assert_eq!(t.api, "https://api.github.com");
        assert_eq!(t.repo, repo("octo", "deploy"));
    }

    #[test]
    fn guesses_the_provider_from_the_host() {
        assert_eq!(
            target("https://github.com/o/r").api,
            "https://api.github.com"
        );
        let t = target("https://github.corp.example/o/r.git");
        assert_eq!(t.provider, Provider::GitHub);
        assert_eq!(t.api, "https://github.corp.example/api/v3");
        let t = target("https://gitlab.com/group/sub/deep/app.git");
        assert_eq!(t.provider, Provider::GitLab);
        assert_eq!(t.api, "https://gitlab.com/api/v4");
        assert_eq!(t.repo, repo("group/sub/deep", "app"));
        assert_eq!(
            target("git@gitlab.example.com:group/sub/app.git").repo,
            repo("group/sub", "app")
        );
    }

    #[test]
    fn the_spec_overrides_the_guesses() {
        let spec = ForgeSpec {
            provider: Some(Provider::GitLab),
            api_url: Some("https://code.example/gitlab/api/v4/".into()),
            secret_ref: None,
        };
        let t = resolve("https://code.example/gitlab/group/sub/app.git", &spec).unwrap();
        assert_eq!(t.provider, Provider::GitLab);
        assert_eq!(t.api, "https://code.example/gitlab/api/v4");
        assert_eq!(t.repo, repo("group/sub", "app"));
        // A Gitea below a path: the prefix is the API's, not the owner's.
        let spec = ForgeSpec {
            api_url: Some("https://code.example/git/api/v1".into()),
            ..ForgeSpec::default()
        };
        let t = resolve("https://code.example/git/team/config.git", &spec).unwrap();
        assert_eq!(t.repo, repo("team", "config"));
    }

    #[test]
    fn unusable_urls_are_config_errors() {
        let err = |url: &str, spec: &ForgeSpec| match resolve(url, spec) {
            Err(ForgeError::Config { reason }) => reason,
            other => panic!("{url}: {other:?}"),
        };
        let none = ForgeSpec::default();
        assert!(err("https://git.example.com/lonely.git", &none).contains("no owner/repository"));
        assert!(err("https://git.example.com/", &none).contains("no owner/repository"));
        assert!(err("/srv/git/config.git", &none).contains("names no host"));
        assert!(err("ftp://host/o/r", &none).contains("unsupported URL scheme"));
        let nested = err("https://git.example.com/a/b/c.git", &none);
        assert!(nested.contains("set the forge's apiUrl"), "{nested}");
        let bad_api = ForgeSpec {
            api_url: Some("git.example.com/api/v1".into()),
            ..ForgeSpec::default()
        };
        assert!(err("https://git.example.com/o/r", &bad_api).contains("not an http(s) URL"));
        // Credentials in the URL never reach a message.
        let reason = err("https://tok3n@git.example.com/lonely", &none);
        assert!(!reason.contains("tok3n"), "{reason}");
    }

    #[test]
    fn provider_names_round_trip() {
        for p in [Provider::Gitea, Provider::GitHub, Provider::GitLab] {
            assert_eq!(p.to_string().parse::<Provider>(), Ok(p));
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{p}\""));
            assert_eq!(serde_json::from_str::<Provider>(&json).unwrap(), p);
        }
        assert_eq!("GitHub".parse::<Provider>(), Ok(Provider::GitHub));
        assert!("bitbucket".parse::<Provider>().is_err());
    }

    #[test]
    fn the_spec_is_camel_case_and_optional() {
        let spec: ForgeSpec = serde_json::from_str(
            r#"{"provider":"gitlab","apiUrl":"https://gl.example/api/v4","secretRef":"forge"}"#,
        )
        .unwrap();
        assert_eq!(spec.provider, Some(Provider::GitLab));
        assert_eq!(spec.secret_ref.as_deref(), Some("forge"));
        assert_eq!(serde_json::to_string(&ForgeSpec::default()).unwrap(), "{}");
        let schema = serde_json::to_value(schemars::schema_for!(ForgeSpec)).unwrap();
        assert!(schema["properties"]["apiUrl"].is_object(), "{schema}");
    }
}
