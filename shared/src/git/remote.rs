//! A remote with its credentials and trust, and the libgit2 callbacks of one operation on it.
//!
//! The callbacks are where Sluice's rules live: credentials are offered once (asked again means
//! the server refused them: an [`GitError::Auth`] instead of libgit2's endless retries), SSH host
//! keys must be in known_hosts (always; no trust on first use), https certificates may be vouched
//! for by the source's own CAs, and every ref update of a push is recorded, because libgit2's
//! `push()` returns OK even when the server refused the update. libgit2 replaces a callback's
//! error message with its own, so the reasons are kept here and put into the [`GitError`].

use std::cell::RefCell;
use std::sync::Mutex;
use std::time::Duration;

use git2::{
    AutotagOption, CertificateCheckStatus, Cred, CredentialType, ErrorClass, ErrorCode,
    FetchOptions, Oid, PushOptions, RemoteCallbacks,
};

use super::auth::{Credentials, GitAuth};
use super::error::{GitError, Refusals, classify};
use super::known_hosts::host_pattern;
use super::url::{RemoteUrl, Transport, redact};

/// A git remote: its URL, how to authenticate and whom to trust.
pub struct Remote {
    url: String,
    parsed: RemoteUrl,
    auth: GitAuth,
    last: Mutex<Transcript>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("url", &self.display_url())
            .field("auth", &self.auth)
            .finish()
    }
}

/// Sets how long libgit2 waits to connect to a git server and for each read or write, for every
/// remote of the process (libgit2 has no per-remote setting). Without it a server that accepts
/// the connection and then stalls blocks a fetch for good. Call once at start-up; a timeout is
/// reported as [`GitError::Unreachable`].
pub fn set_network_timeouts(connect: Duration, read_write: Duration) -> Result<(), GitError> {
    let ms = |d: Duration| i32::try_from(d.as_millis()).unwrap_or(i32::MAX).max(1);
    // SAFETY: two integers in libgit2's global settings, read when a stream is opened.
    unsafe {
        git2::opts::set_server_connect_timeout_in_milliseconds(ms(connect))?;
        git2::opts::set_server_timeout_in_milliseconds(ms(read_write))?;
    }
    super::socket::set_timeouts(ms(connect), ms(read_write));
    Ok(())
}

/// What happened in the last operation on a [`Remote`]: for logs, metrics and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transcript {
    /// How often the server asked for credentials (twice or more: it refused them).
    pub credentials_asked: u32,
    /// How often an SSH host key was checked against known_hosts.
    pub host_keys_checked: u32,
    /// Objects received by a fetch (0: nothing new).
    pub received_objects: usize,
    /// Each ref update of a push as the server answered it: `None` accepted, `Some(why)` refused.
    pub pushed: Vec<(String, Option<String>)>,
    /// Lines the server printed (`remote: …`), e.g. from a hook that declined a push.
    pub remote_messages: Vec<String>,
}

impl Remote {
    /// Refuses, before any connection, an unusable URL and an ssh URL without known_hosts.
    pub fn new(url: impl Into<String>, auth: GitAuth) -> Result<Remote, GitError> {
        let url = url.into();
        let parsed = RemoteUrl::parse(&url).map_err(|reason| GitError::Invalid {
            what: redact(&url),
            reason,
        })?;
        if parsed.transport == Transport::Ssh && auth.known_hosts.is_none() {
            return Err(GitError::HostKey {
                host: host_pattern(&parsed.host, parsed.port),
                reason: "no known_hosts is given for this ssh remote, and Sluice never trusts a host key on first use; add the server's key (`ssh-keyscan`) as known_hosts to the Secret".into(),
            });
        }
        Ok(Remote {
            url,
            parsed,
            auth,
            last: Mutex::new(Transcript::default()),
        })
    }

    /// The URL as given (may hold credentials: never log it; see [`Remote::display_url`]).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL without credentials, for messages.
    pub fn display_url(&self) -> String {
        redact(&self.url)
    }

    pub fn auth(&self) -> &GitAuth {
        &self.auth
    }

    /// What the last operation on this remote did.
    pub fn last_transcript(&self) -> Transcript {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Callbacks and record for one operation. Every network operation starts here, so this is
    /// where libgit2 is given Sluice's socket stream (`TCP_NODELAY`; see `socket.rs`).
    pub(crate) fn session(&self) -> Session<'_> {
        super::socket::install();
        Session {
            remote: self,
            state: RefCell::new(State::default()),
        }
    }
}

#[derive(Default)]
struct State {
    transcript: Transcript,
    refusals: Refusals,
    password_offered: bool,
    key_offered: bool,
    lease_broken: Option<Oid>,
}

/// One operation on a [`Remote`]: builds its libgit2 options, then turns the outcome into a
/// [`GitError`] with the reasons the callbacks recorded.
pub(crate) struct Session<'r> {
    remote: &'r Remote,
    state: RefCell<State>,
}

impl<'r> Session<'r> {
    pub(crate) fn fetch_options(&self) -> FetchOptions<'_> {
        let mut o = FetchOptions::new();
        o.remote_callbacks(self.callbacks());
        o.download_tags(AutotagOption::None);
        o
    }

    pub(crate) fn push_options(&self) -> PushOptions<'_> {
        self.push_options_leased(None)
    }

    /// Push options that refuse, before anything is sent, to update `reference` unless the
    /// remote still points it at `expected` (git's `--force-with-lease=reference:expected`).
    /// Whether the lease held: [`Session::lease_broken`].
    pub(crate) fn push_options_leased(&self, lease: Option<(&str, Oid)>) -> PushOptions<'_> {
        let mut cb = self.callbacks();
        if let Some((reference, expected)) = lease {
            let reference = reference.to_owned();
            cb.push_negotiation(move |updates| {
                for update in updates {
                    if update.dst_refname_bytes() == reference.as_bytes()
                        && update.src() != expected
                    {
                        self.state.borrow_mut().lease_broken = Some(update.src());
                        return Err(git2::Error::from_str("the lease on the branch is broken"));
                    }
                }
                Ok(())
            });
        }
        let mut o = PushOptions::new();
        o.remote_callbacks(cb);
        o
    }

    /// The remote's value of the leased reference, when it was not the expected one.
    pub(crate) fn lease_broken(&self) -> Option<Oid> {
        self.state.borrow().lease_broken
    }

    /// Records the transcript on the remote and classifies a failure.
    pub(crate) fn finish<T>(
        &self,
        result: Result<T, git2::Error>,
        reference: Option<&str>,
    ) -> Result<T, GitError> {
        let state = self.state.borrow();
        *self.remote.last.lock().unwrap_or_else(|p| p.into_inner()) = state.transcript.clone();
        result.map_err(|e| {
            classify(
                e,
                &self.remote.display_url(),
                reference,
                &state.refusals,
                &self.remote.auth.secrets(),
            )
        })
    }

    pub(crate) fn transcript(&self) -> Transcript {
        self.state.borrow().transcript.clone()
    }

    fn callbacks(&self) -> RemoteCallbacks<'_> {
        let mut cb = RemoteCallbacks::new();
        cb.credentials(|_url, user_from_url, allowed| self.credentials(user_from_url, allowed));
        cb.certificate_check(|cert, host| self.certificate_check(cert, host));
        cb.push_update_reference(|refname, status| {
            let mut s = self.state.borrow_mut();
            s.transcript
                .pushed
                .push((refname.to_string(), status.map(str::to_string)));
            Ok(())
        });
        cb.sideband_progress(|data| {
            let text = String::from_utf8_lossy(data);
            let mut s = self.state.borrow_mut();
            for line in text
                .split(['\n', '\r'])
                .map(str::trim)
                .filter(|l| !l.is_empty())
            {
                if s.transcript.remote_messages.len() < 20 {
                    s.transcript.remote_messages.push(line.to_string());
                }
            }
            true
        });
        cb.transfer_progress(|p| {
            self.state.borrow_mut().transcript.received_objects = p.received_objects();
            true
        });
        cb
    }

    fn refuse_auth(&self, reason: String) -> Result<Cred, git2::Error> {
        self.state.borrow_mut().refusals.auth = Some(reason.clone());
        Err(git2::Error::new(
            ErrorCode::Auth,
            ErrorClass::Callback,
            reason,
        ))
    }

    fn credentials(
        &self,
        user_from_url: Option<&str>,
        allowed: CredentialType,
    ) -> Result<Cred, git2::Error> {
        self.state.borrow_mut().transcript.credentials_asked += 1;
        let auth = &self.remote.auth;
        match &auth.credentials {
            Credentials::Ssh(key) => {
                let user = key
                    .username
                    .as_deref()
                    .or(user_from_url)
                    .or(self.remote.parsed.username.as_deref())
                    .unwrap_or("git");
                if allowed.contains(CredentialType::USERNAME) {
                    return Cred::username(user);
                }
                if !allowed.contains(CredentialType::SSH_KEY) {
                    return self.refuse_auth(format!(
                        "the server wants {allowed:?} credentials, but the source has an ssh key"
                    ));
                }
                if std::mem::replace(&mut self.state.borrow_mut().key_offered, true) {
                    return self.refuse_auth(format!(
                        "the server rejected the ssh key of user {user:?}"
                    ));
                }
                Cred::ssh_key_from_memory(
                    user,
                    key.public_key.as_deref(),
                    &key.private_key,
                    key.passphrase.as_deref(),
                )
            }
            _ => match auth.userpass() {
                Some((user, password)) if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) => {
                    if std::mem::replace(&mut self.state.borrow_mut().password_offered, true) {
                        let what = match auth.credentials {
                            Credentials::Token(_) => "token".to_string(),
                            _ => format!("password of user {user:?}"),
                        };
                        return self.refuse_auth(format!("the server rejected the {what}"));
                    }
                    Cred::userpass_plaintext(user, password)
                }
                Some(_) => self.refuse_auth(format!(
                    "the server wants {allowed:?} credentials, but the source has a user and password"
                )),
                None => self.refuse_auth(format!(
                    "the server requires authentication ({allowed:?}), but the source has no credentials"
                )),
            },
        }
    }

    fn certificate_check(
        &self,
        cert: &git2::cert::Cert<'_>,
        host: &str,
    ) -> Result<CertificateCheckStatus, git2::Error> {
        let parsed = &self.remote.parsed;
        if let Some(hostkey) = cert.as_hostkey() {
            self.state.borrow_mut().transcript.host_keys_checked += 1;
            let name = host_pattern(host, parsed.port);
            let verdict = match &self.remote.auth.known_hosts {
                Some(kh) => kh.verify(host, parsed.port, hostkey),
                None => Err(format!("no known_hosts is given for {name}")),
            };
            return verdict
                .map(|()| CertificateCheckStatus::CertificateOk)
                .map_err(|why| {
                    self.state.borrow_mut().refusals.host_key = Some((name, why.clone()));
                    git2::Error::new(ErrorCode::Certificate, ErrorClass::Ssh, why)
                });
        }
        if let (Some(x509), Some(ca)) = (cert.as_x509(), &self.remote.auth.ca) {
            return match ca.verify_server(x509.data(), host) {
                Ok(()) => Ok(CertificateCheckStatus::CertificateOk),
                Err(why) => {
                    // The system's CAs may still vouch for it: libgit2's own verdict stands.
                    self.state.borrow_mut().refusals.tls = Some(why);
                    Ok(CertificateCheckStatus::CertificatePassthrough)
                }
            };
        }
        Ok(CertificateCheckStatus::CertificatePassthrough)
    }
}
