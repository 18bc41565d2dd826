//! Remote URLs: which transport, which host and port (for known_hosts), and how to print one
//! without the credentials it may carry.

/// How a remote is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Http,
    Https,
    Ssh,
    /// `file://` or a plain path: no network, no credentials.
    Local,
}

/// What Sluice needs to know of a remote URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUrl {
    pub transport: Transport,
    /// The host as libgit2 connects to it (IPv6 without brackets); empty for local paths.
    pub host: String,
    pub port: u16,
    /// The user named in the URL (`ssh://git@host/…`, `git@host:…`), if any.
    pub username: Option<String>,
}

impl RemoteUrl {
    /// Understands `http(s)://[user[:pass]@]host[:port]/path`,
    /// `ssh://[user@]host[:port]/path` (also `git+ssh://`, `ssh+git://`), scp-like
    /// `[user@]host:path`, `file://path` and plain paths.
    pub fn parse(url: &str) -> Result<RemoteUrl, String> {
        if let Some((scheme, rest)) = url.split_once("://") {
            let (transport, default_port) = match scheme.to_ascii_lowercase().as_str() {
                "http" => (Transport::Http, 80),
                "https" => (Transport::Https, 443),
                "ssh" | "git+ssh" | "ssh+git" => (Transport::Ssh, 22),
                "file" => {
                    return Ok(RemoteUrl {
                        transport: Transport::Local,
                        host: String::new(),
                        port: 0,
                        username: None,
                    });
                }
                other => {
                    return Err(format!(
                        "unsupported URL scheme {other:?} (use https or ssh)"
                    ));
                }
            };
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let (userinfo, hostport) = match authority.rsplit_once('@') {
                Some((u, h)) => (Some(u), h),
                None => (None, authority),
            };
            let username = userinfo
                .map(|u| u.split(':').next().unwrap_or_default().to_string())
                .filter(|u| !u.is_empty());
            let (host, port) = split_host_port(hostport)?;
            if host.is_empty() {
                return Err("the URL names no host".into());
            }
            return Ok(RemoteUrl {
                transport,
                host,
                port: port.unwrap_or(default_port),
                username,
            });
        }
        // scp-like `[user@]host:path`: a colon before any slash.
        match url.split_once(':') {
            Some((before, _)) if !before.is_empty() && !before.contains('/') => {
                let (username, host) = match before.rsplit_once('@') {
                    Some((u, h)) => (Some(u.to_string()).filter(|u| !u.is_empty()), h),
                    None => (None, before),
                };
                let host = host.trim_start_matches('[').trim_end_matches(']');
                if host.is_empty() {
                    return Err("the URL names no host".into());
                }
                Ok(RemoteUrl {
                    transport: Transport::Ssh,
                    host: host.to_string(),
                    port: 22,
                    username,
                })
            }
            _ => Ok(RemoteUrl {
                transport: Transport::Local,
                host: String::new(),
                port: 0,
                username: None,
            }),
        }
    }
}

fn split_host_port(hostport: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("unclosed '[' in {hostport:?}"))?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(p) => Some(p.parse().map_err(|_| format!("bad port {p:?}"))?),
    };
    Ok((host.to_string(), port))
}

/// `url` fit for messages and logs: no password anywhere, and for http(s) no user either (a
/// token is often given as the user). ssh users (`git@`) stay: they are no secret.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let Some((userinfo, hostport)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    let is_http = matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https");
    match userinfo.split_once(':') {
        _ if is_http => format!("{scheme}://{hostport}{path}"),
        Some((user, _)) => format!("{scheme}://{user}@{hostport}{path}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_url_forms_of_git() {
        let u = RemoteUrl::parse("ssh://root@127.0.0.1:12222/tmp/repos/x.git").unwrap();
        assert_eq!(
            u,
            RemoteUrl {
                transport: Transport::Ssh,
                host: "127.0.0.1".into(),
                port: 12222,
                username: Some("root".into())
            }
        );
        let u = RemoteUrl::parse("git@github.com:org/deploy.git").unwrap();
        assert_eq!(
            (u.transport, u.host.as_str(), u.port),
            (Transport::Ssh, "github.com", 22)
        );
        assert_eq!(u.username.as_deref(), Some("git"));
        let u = RemoteUrl::parse("https://user:pw@[::1]:8443/x.git").unwrap();
        assert_eq!(
            (u.transport, u.host.as_str(), u.port),
            (Transport::Https, "::1", 8443)
        );
        assert_eq!(u.username.as_deref(), Some("user"));
        let u = RemoteUrl::parse("http://127.0.0.1/x.git").unwrap();
        assert_eq!(
            (u.transport, u.port, u.username),
            (Transport::Http, 80, None)
        );
        assert_eq!(
            RemoteUrl::parse("/srv/git/x.git").unwrap().transport,
            Transport::Local
        );
        assert_eq!(
            RemoteUrl::parse("file:///srv/x.git").unwrap().transport,
            Transport::Local
        );
        assert!(RemoteUrl::parse("ftp://host/x").is_err());
        assert!(RemoteUrl::parse("https://host:notaport/x").is_err());
    }

    #[test]
    fn redacts_credentials_from_urls() {
        assert_eq!(
            redact("https://user:s3cret@git.example/org/x.git"),
            "https://git.example/org/x.git"
        );
        assert_eq!(
            redact("https://ghp_tokentoken@git.example/x.git?a=b"),
            "https://git.example/x.git?a=b"
        );
        assert_eq!(
            redact("ssh://git:pw@host:22/x.git"),
            "ssh://git@host:22/x.git"
        );
        assert_eq!(redact("ssh://git@host/x.git"), "ssh://git@host/x.git");
        assert_eq!(redact("git@host:org/x.git"), "git@host:org/x.git");
        assert_eq!(redact("https://host/x@y.git"), "https://host/x@y.git");
    }
}
