//! What went wrong talking to a git remote, in the words an operator needs: which host key,
//! which URL (never with its credentials), which reference.

use git2::{ErrorClass, ErrorCode};

/// A failed git operation. URLs in it are redacted ([`super::url::redact`]) and the source's
/// secrets are scrubbed from every message.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// Bad input before any connection: an unusable URL, branch name, path or CA file.
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
    /// The SSH server's host key is not the one in known_hosts, or there is no known_hosts.
    #[error("SSH host key of {host} refused: {reason}")]
    HostKey { host: String, reason: String },
    /// The https server's certificate is not trusted.
    #[error("TLS certificate of {url} refused: {reason}")]
    Tls { url: String, reason: String },
    /// The server refused the credentials, or wants some the source does not have.
    #[error("authentication to {url} failed: {reason}")]
    Auth { url: String, reason: String },
    /// No connection: refused, no route, name not resolved, timed out.
    #[error("{url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    /// The server answers but has no such repository.
    #[error("no repository at {url}: {reason}")]
    RepoNotFound { url: String, reason: String },
    /// The branch, tag or commit is not in the repository.
    #[error("{reference} not found at {url}")]
    RefNotFound { url: String, reference: String },
    /// The server refused the update of `reference` (a hook, a protected branch…).
    #[error("push of {reference} rejected: {message}")]
    PushRejected { reference: String, message: String },
    /// Someone else pushed first: fetch, re-apply and push again (never force).
    #[error("push of {reference} is not a fast-forward ({message}); fetch and re-apply")]
    NonFastForward { reference: String, message: String },
    /// A file of the work tree or the checkout could not be written or read.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("git: {0}")]
    Other(#[source] git2::Error),
}

impl GitError {
    /// A short, stable name of the kind of failure, for metric labels and conditions.
    pub fn kind(&self) -> &'static str {
        match self {
            GitError::Invalid { .. } => "invalid",
            GitError::HostKey { .. } => "host_key",
            GitError::Tls { .. } => "tls",
            GitError::Auth { .. } => "auth",
            GitError::Unreachable { .. } => "unreachable",
            GitError::RepoNotFound { .. } => "repo_not_found",
            GitError::RefNotFound { .. } => "ref_not_found",
            GitError::PushRejected { .. } => "push_rejected",
            GitError::NonFastForward { .. } => "non_fast_forward",
            GitError::Io { .. } => "io",
            GitError::Other(_) => "other",
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> GitError {
        GitError::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<git2::Error> for GitError {
    /// A git2 error with no remote involved (local object and reference work).
    fn from(e: git2::Error) -> GitError {
        GitError::Other(e)
    }
}

/// What the callbacks of one remote operation learnt, that libgit2's error leaves out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refusals {
    /// `(host, reason)`: the host key was refused (libgit2 only says "invalid or unknown remote
    /// ssh hostkey").
    pub host_key: Option<(String, String)>,
    /// Why the source's own CAs did not vouch for the server's certificate.
    pub tls: Option<String>,
    /// Why the credential callback gave up (asked again after an answer: rejected).
    pub auth: Option<String>,
}

/// Turns libgit2's error of an operation on `url` (already redacted) into a [`GitError`].
/// `reference`: the ref being pushed, if any. `secrets` are scrubbed from messages.
pub fn classify(
    err: git2::Error,
    url: &str,
    reference: Option<&str>,
    refusals: &Refusals,
    secrets: &[&str],
) -> GitError {
    let message = scrub(err.message(), secrets);
    let lower = message.to_ascii_lowercase();
    let url = url.to_string();
    if let Some((host, reason)) = &refusals.host_key {
        return GitError::HostKey {
            host: host.clone(),
            reason: reason.clone(),
        };
    }
    match err.code() {
        ErrorCode::Certificate if err.class() == ErrorClass::Ssh => {
            return GitError::HostKey {
                host: url,
                reason: message,
            };
        }
        // With a certificate callback that passes through, libgit2 reports an untrusted
        // certificate as a generic SSL error.
        code if code == ErrorCode::Certificate
            || (err.class() == ErrorClass::Ssl && lower.contains("certificate")) =>
        {
            let reason = match &refusals.tls {
                Some(why) => format!("{why}; nor is it trusted by the system's CAs ({message})"),
                None => format!(
                    "{message}; not trusted by the system's CAs (a private CA goes in the Secret's ca.crt)"
                ),
            };
            return GitError::Tls { url, reason };
        }
        ErrorCode::Auth => {
            let reason = refusals.auth.clone().unwrap_or(message);
            return GitError::Auth { url, reason };
        }
        ErrorCode::Timeout => {
            return GitError::Unreachable {
                url,
                reason: message,
            };
        }
        ErrorCode::NotFastForward => {
            return GitError::NonFastForward {
                reference: reference.unwrap_or("the branch").to_string(),
                message,
            };
        }
        _ => {}
    }
    // libssh2 refusing a key it cannot use (wrong passphrase, unknown format) or the server
    // ending the user-auth exchange.
    if err.class() == ErrorClass::Ssh && lower.contains("failed to authenticate") {
        let reason = refusals.auth.clone().unwrap_or(message);
        return GitError::Auth { url, reason };
    }
    if let Some(reason) = &refusals.auth {
        return GitError::Auth {
            url,
            reason: reason.clone(),
        };
    }
    const UNREACHABLE: [&str; 10] = [
        "failed to connect",
        "connection refused",
        "could not resolve",
        "failed to resolve",
        "name or service not known",
        "timed out",
        "no route to host",
        "network is unreachable",
        "connection reset",
        "unexpected eof",
    ];
    if matches!(
        err.class(),
        ErrorClass::Net | ErrorClass::Os | ErrorClass::Http | ErrorClass::Ssh | ErrorClass::Ssl
    ) && UNREACHABLE.iter().any(|m| lower.contains(m))
    {
        return GitError::Unreachable {
            url,
            reason: message,
        };
    }
    if lower.contains("status code: 404")
        || lower.contains("repository not found")
        || lower.contains("does not appear to be a git repository")
        || lower.contains("not a git repository")
    {
        return GitError::RepoNotFound {
            url,
            reason: message,
        };
    }
    GitError::Other(git2::Error::new(err.code(), err.class(), message))
}

/// The error for a ref update the server answered with `status` (push_update_reference).
pub fn push_refused(reference: &str, status: &str, remote_said: &[String]) -> GitError {
    let lower = status.to_ascii_lowercase();
    let mut message = status.to_string();
    if !remote_said.is_empty() {
        message = format!("{message}; remote: {}", remote_said.join(" | "));
    }
    let reference = reference.to_string();
    if [
        "non-fast-forward",
        "fetch first",
        "not a fast forward",
        "stale info",
    ]
    .iter()
    .any(|m| lower.contains(m))
    {
        GitError::NonFastForward { reference, message }
    } else {
        GitError::PushRejected { reference, message }
    }
}

/// `text` with every secret replaced by `<redacted>`.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| s.len() >= 4)
        .fold(text.to_string(), |t, s| t.replace(s, "<redacted>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: ErrorCode, class: ErrorClass, msg: &str) -> git2::Error {
        git2::Error::new(code, class, msg)
    }

    const URL: &str = "https://git.example/x.git";

    #[test]
    fn classifies_connection_failures_as_unreachable() {
        for (class, msg) in [
            (
                ErrorClass::Net,
                "failed to connect to 127.0.0.1: Connection refused",
            ),
            (
                ErrorClass::Net,
                "failed to resolve address for nowhere.invalid: Name or service not known",
            ),
            (
                ErrorClass::Os,
                "failed to connect to 10.0.0.1: Connection timed out",
            ),
            (ErrorClass::Net, "could not read from socket: timed out"),
        ] {
            let code = if msg.contains("socket") {
                ErrorCode::Timeout
            } else {
                ErrorCode::GenericError
            };
            let e = classify(err(code, class, msg), URL, None, &Refusals::default(), &[]);
            assert!(
                matches!(&e, GitError::Unreachable { url, .. } if url == URL),
                "{msg}: {e:?}"
            );
            assert_eq!(e.kind(), "unreachable");
        }
    }

    #[test]
    fn keeps_the_recorded_reason_of_a_refused_host_key() {
        let refusals = Refusals {
            host_key: Some(("[git.example]:2222".into(), "is not in known_hosts".into())),
            ..Refusals::default()
        };
        let e = classify(
            err(
                ErrorCode::Certificate,
                ErrorClass::Ssh,
                "invalid or unknown remote ssh hostkey",
            ),
            "ssh://git@git.example:2222/x.git",
            None,
            &refusals,
            &[],
        );
        assert_eq!(
            e.to_string(),
            "SSH host key of [git.example]:2222 refused: is not in known_hosts"
        );
    }

    #[test]
    fn classifies_tls_auth_and_fast_forward_failures() {
        let tls = classify(
            // What libgit2 1.9 reports when the certificate callback passes through.
            err(
                ErrorCode::GenericError,
                ErrorClass::Ssl,
                "the SSL certificate is invalid",
            ),
            URL,
            None,
            &Refusals::default(),
            &[],
        );
        assert!(
            matches!(&tls, GitError::Tls { reason, .. } if reason.contains("ca.crt")),
            "{tls:?}"
        );

        let refusals = Refusals {
            auth: Some("the server rejected the password of user \"sluice\"".into()),
            ..Refusals::default()
        };
        let auth = classify(
            err(ErrorCode::Auth, ErrorClass::Http, "x"),
            URL,
            None,
            &refusals,
            &[],
        );
        assert_eq!(
            auth.to_string(),
            format!(
                "authentication to {URL} failed: the server rejected the password of user \"sluice\""
            )
        );

        let key = classify(
            err(
                ErrorCode::GenericError,
                ErrorClass::Ssh,
                "Failed to authenticate SSH session: Unable to extract public key from private key file: Wrong passphrase or invalid/unrecognized private key file format",
            ),
            "ssh://git@git.example/x.git",
            None,
            &Refusals::default(),
            &[],
        );
        assert_eq!(key.kind(), "auth", "{key:?}");

        let nff = classify(
            err(
                ErrorCode::NotFastForward,
                ErrorClass::Reference,
                "cannot push non-fastforwardable reference",
            ),
            URL,
            Some("refs/heads/main"),
            &Refusals::default(),
            &[],
        );
        assert!(
            matches!(&nff, GitError::NonFastForward { reference, .. } if reference == "refs/heads/main")
        );

        let missing = classify(
            err(
                ErrorCode::GenericError,
                ErrorClass::Http,
                "unexpected http status code: 404",
            ),
            URL,
            None,
            &Refusals::default(),
            &[],
        );
        assert_eq!(missing.kind(), "repo_not_found");
    }

    #[test]
    fn scrubs_secrets_from_messages_it_does_not_know() {
        let e = classify(
            err(
                ErrorCode::GenericError,
                ErrorClass::Odb,
                "weird failure mentioning hunter2hunter2",
            ),
            URL,
            None,
            &Refusals::default(),
            &["hunter2hunter2"],
        );
        assert!(matches!(&e, GitError::Other(_)));
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains("<redacted>"), "{e}");
    }

    #[test]
    fn tells_non_fast_forward_from_other_push_refusals() {
        let e = push_refused("refs/heads/main", "fetch first", &[]);
        assert_eq!(e.kind(), "non_fast_forward");
        let e = push_refused(
            "refs/heads/main",
            "pre-receive hook declined",
            &["main is protected".into()],
        );
        assert!(
            matches!(&e, GitError::PushRejected { message, .. } if message.contains("main is protected")),
            "{e:?}"
        );
    }
}
