//! How Sluice authenticates to a git remote and which servers it trusts.
//!
//! From a Kubernetes Secret, with the keys of Flux's GitRepository Secrets
//! ([`GitAuth::from_secret_data`]):
//!
//! | key | meaning |
//! | --- | --- |
//! | `username`, `password` | https basic auth |
//! | `password` alone | an https access token, sent as basic auth with user [`TOKEN_USERNAME`] |
//! | `identity` | ssh private key (OpenSSH or PEM text); `password` is then its passphrase |
//! | `identity.pub` | its public key (optional) |
//! | `known_hosts` | the ssh server's host keys, OpenSSH format; required for ssh |
//! | `ca.crt` (or `caFile`) | PEM CA bundle trusted for https besides the system's |
//!
//! `username` and `password` lose a trailing newline (files made with `echo` or an editor).

use std::collections::BTreeMap;
use std::fmt;

use super::known_hosts::KnownHosts;
use super::tls::CaCerts;

/// The user an access token is sent with. GitHub documents `x-access-token` (required for
/// app installation tokens); GitHub personal tokens, Gitea, GitLab personal/project tokens and
/// Azure DevOps accept any user name with the token as password. Give `username` to override
/// (GitLab OAuth tokens want `oauth2`, Bitbucket `x-token-auth`).
pub const TOKEN_USERNAME: &str = "x-access-token";

/// What to answer when a server asks who we are.
#[derive(Clone, Default)]
pub enum Credentials {
    /// Anonymous; a server that asks gets an [`super::GitError::Auth`].
    #[default]
    None,
    /// https basic auth.
    Basic { username: String, password: String },
    /// An https access token, sent as the password of [`TOKEN_USERNAME`].
    Token(String),
    /// An ssh key, held in memory (never written to disk).
    Ssh(SshKey),
}

/// An ssh private key as text (OpenSSH or PEM), from a Secret.
#[derive(Clone)]
pub struct SshKey {
    /// Default: the user of the URL (`git@…`), else `git`.
    pub username: Option<String>,
    pub private_key: String,
    pub public_key: Option<String>,
    pub passphrase: Option<String>,
}

const REDACTED: &str = "<redacted>";

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &REDACTED)
                .finish(),
            Credentials::Token(_) => f.debug_tuple("Token").field(&REDACTED).finish(),
            Credentials::Ssh(key) => key.fmt(f),
        }
    }
}

impl fmt::Debug for SshKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshKey")
            .field("username", &self.username)
            .field("private_key", &REDACTED)
            .field("public_key", &self.public_key.as_ref().map(|_| "<given>"))
            .field("passphrase", &self.passphrase.as_ref().map(|_| REDACTED))
            .finish()
    }
}

/// Credentials plus what the source trusts: known_hosts for ssh, extra CAs for https.
/// `Debug` prints no secret.
#[derive(Clone, Debug, Default)]
pub struct GitAuth {
    pub credentials: Credentials,
    /// Required for ssh remotes: Sluice never trusts a host key on first use.
    pub known_hosts: Option<KnownHosts>,
    /// Trusted for https besides the system's CAs.
    pub ca: Option<CaCerts>,
}

/// A Secret key Sluice cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Secret key {key:?}: {reason}")]
pub struct SecretError {
    pub key: String,
    pub reason: String,
}

impl GitAuth {
    /// Anonymous.
    pub fn none() -> GitAuth {
        GitAuth::default()
    }

    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> GitAuth {
        GitAuth {
            credentials: Credentials::Basic {
                username: username.into(),
                password: password.into(),
            },
            ..GitAuth::default()
        }
    }

    pub fn token(token: impl Into<String>) -> GitAuth {
        GitAuth {
            credentials: Credentials::Token(token.into()),
            ..GitAuth::default()
        }
    }

    /// An ssh key (OpenSSH or PEM text), without passphrase; add [`GitAuth::with_known_hosts`].
    pub fn ssh_key(private_key: impl Into<String>) -> GitAuth {
        GitAuth {
            credentials: Credentials::Ssh(SshKey {
                username: None,
                private_key: private_key.into(),
                public_key: None,
                passphrase: None,
            }),
            ..GitAuth::default()
        }
    }

    pub fn with_known_hosts(mut self, known_hosts: KnownHosts) -> GitAuth {
        self.known_hosts = Some(known_hosts);
        self
    }

    pub fn with_ca(mut self, ca: CaCerts) -> GitAuth {
        self.ca = Some(ca);
        self
    }

    /// From the `data` of a Kubernetes Secret; see the module docs for the keys.
    pub fn from_secret_data(data: &BTreeMap<String, Vec<u8>>) -> Result<GitAuth, SecretError> {
        let text = |key: &str| -> Result<Option<String>, SecretError> {
            data.get(key)
                .map(|v| {
                    String::from_utf8(v.clone()).map_err(|_| SecretError {
                        key: key.into(),
                        reason: "not UTF-8 text".into(),
                    })
                })
                .transpose()
        };
        let line = |key: &str| -> Result<Option<String>, SecretError> {
            Ok(text(key)?
                .map(|v| v.trim_end_matches(['\n', '\r']).to_string())
                .filter(|v| !v.is_empty()))
        };
        for key in ["bearerToken", "tls.crt", "tls.key"] {
            if data.contains_key(key) {
                return Err(SecretError {
                    key: key.into(),
                    reason: match key {
                        "bearerToken" => format!(
                            "bearer tokens are not supported; put the token in `password` (sent as basic auth with user {TOKEN_USERNAME})"
                        ),
                        _ => "https client certificates are not supported".into(),
                    },
                });
            }
        }
        let username = line("username")?;
        let password = line("password")?;
        let credentials = match (text("identity")?, username, password) {
            (Some(private_key), username, passphrase) => Credentials::Ssh(SshKey {
                username,
                private_key,
                public_key: text("identity.pub")?.filter(|k| !k.trim().is_empty()),
                passphrase,
            }),
            (None, Some(username), Some(password)) => Credentials::Basic { username, password },
            (None, None, Some(token)) => Credentials::Token(token),
            (None, Some(_), None) => {
                return Err(SecretError {
                    key: "password".into(),
                    reason: "`username` is given but no `password`".into(),
                });
            }
            (None, None, None) => Credentials::None,
        };
        let known_hosts = match text("known_hosts")? {
            Some(t) => {
                let kh = KnownHosts::parse(&t).with_source("the Secret's known_hosts");
                if kh.entries.is_empty() {
                    return Err(SecretError {
                        key: "known_hosts".into(),
                        reason: "no usable `host key-type key` line".into(),
                    });
                }
                Some(kh)
            }
            None => None,
        };
        let ca = match ["ca.crt", "caFile"]
            .iter()
            .find_map(|k| data.get(*k).map(|v| (k, v)))
        {
            Some((key, pem)) => Some(CaCerts::from_pem(pem).map_err(|reason| SecretError {
                key: key.to_string(),
                reason,
            })?),
            None => None,
        };
        Ok(GitAuth {
            credentials,
            known_hosts,
            ca,
        })
    }

    /// The secret strings of these credentials, to scrub from messages.
    pub(crate) fn secrets(&self) -> Vec<&str> {
        match &self.credentials {
            Credentials::None => vec![],
            Credentials::Basic { password, .. } => vec![password],
            Credentials::Token(t) => vec![t],
            Credentials::Ssh(k) => {
                let mut s = vec![k.private_key.as_str()];
                s.extend(k.passphrase.as_deref());
                s
            }
        }
    }

    /// The user and password for https basic auth, if these credentials are of that kind.
    pub fn userpass(&self) -> Option<(&str, &str)> {
        match &self.credentials {
            Credentials::Basic { username, password } => Some((username, password)),
            Credentials::Token(t) => Some((TOKEN_USERNAME, t)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    const KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
    const KNOWN: &str = "[git.example]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n";

    #[test]
    fn reads_flux_style_secrets() {
        let a = GitAuth::from_secret_data(&data(&[("username", "sluice\n"), ("password", "pw\n")]))
            .unwrap();
        assert_eq!(a.userpass(), Some(("sluice", "pw")));

        let a = GitAuth::from_secret_data(&data(&[("password", "ghp_abc")])).unwrap();
        assert!(matches!(&a.credentials, Credentials::Token(t) if t == "ghp_abc"));
        assert_eq!(a.userpass(), Some((TOKEN_USERNAME, "ghp_abc")));

        let a = GitAuth::from_secret_data(&data(&[
            ("identity", KEY),
            ("identity.pub", "ssh-ed25519 AAAA me"),
            ("password", "passphrase"),
            ("known_hosts", KNOWN),
        ]))
        .unwrap();
        let Credentials::Ssh(key) = &a.credentials else {
            panic!("{a:?}")
        };
        assert_eq!(key.private_key, KEY);
        assert_eq!(key.passphrase.as_deref(), Some("passphrase"));
        assert!(key.public_key.is_some() && key.username.is_none());
        let kh = a.known_hosts.as_ref().unwrap();
        assert_eq!(kh.entries_for("git.example", 2222).len(), 1);
        assert_eq!(kh.source_name(), "the Secret's known_hosts");
        assert_eq!(a.userpass(), None);

        assert!(matches!(
            GitAuth::from_secret_data(&BTreeMap::new())
                .unwrap()
                .credentials,
            Credentials::None
        ));
    }

    #[test]
    fn refuses_secrets_it_cannot_use() {
        let e = GitAuth::from_secret_data(&data(&[("username", "u")])).unwrap_err();
        assert_eq!(e.key, "password");
        let e = GitAuth::from_secret_data(&data(&[("bearerToken", "t")])).unwrap_err();
        assert!(e.reason.contains("password"), "{e}");
        let e = GitAuth::from_secret_data(&data(&[("known_hosts", "garbage")])).unwrap_err();
        assert_eq!(e.key, "known_hosts");
        let e = GitAuth::from_secret_data(&data(&[("ca.crt", "not pem")])).unwrap_err();
        assert_eq!(e.key, "ca.crt");
        let mut bad = data(&[]);
        bad.insert("password".into(), vec![0xff, 0xfe]);
        assert_eq!(
            GitAuth::from_secret_data(&bad).unwrap_err().reason,
            "not UTF-8 text"
        );
    }

    #[test]
    fn debug_never_prints_a_secret() {
        let basic = GitAuth::basic("sluice", "hunter2-password");
        let shown = format!("{basic:?} {:#?}", basic.credentials);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("sluice") && shown.contains("<redacted>"),
            "{shown}"
        );

        let token = format!("{:?}", GitAuth::token("ghp_secrettoken"));
        assert!(!token.contains("ghp_"), "{token}");

        let mut ssh = GitAuth::ssh_key(KEY);
        if let Credentials::Ssh(k) = &mut ssh.credentials {
            k.passphrase = Some("my-passphrase".into());
        }
        let shown = format!("{ssh:?}");
        assert!(
            !shown.contains("OPENSSH") && !shown.contains("b3Bl"),
            "{shown}"
        );
        assert!(!shown.contains("my-passphrase"), "{shown}");
    }
}
