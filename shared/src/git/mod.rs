//! The git layer both daemons use, over libgit2 (git2).
//!
//! - A [`Remote`] is a URL with its [`GitAuth`]: credentials ([`Credentials`]: basic, token,
//!   ssh key in memory), the SSH host keys trusted ([`KnownHosts`], always enforced; an ssh
//!   remote without them is refused) and extra CAs for https ([`CaCerts`], per source).
//! - The Deploy Synchronizer fetches with [`fetch_revision`] (a branch, a tag or a commit pin,
//!   into a bare cache reused across fetches) and writes the files to render with
//!   [`checkout_tree`].
//! - The Config Updater works in a clone: [`clone_or_open`] (at the remote's tip), [`commit`]
//!   (exactly the changed files, never an empty commit) and [`push`] (never forced; a success
//!   only when the server accepted the update; someone else's newer commits are a
//!   [`GitError::NonFastForward`], after which the caller fetches and re-applies).
//!   [`commit_signed`] signs the commit with an SSH key ([`CommitSigner`], as
//!   `git -c gpg.format=ssh commit -S` does).
//! - The Deploy Synchronizer's rollback proposals use the same write path: a revert's tree is
//!   committed with [`commit_tree`] (which every commit goes through, signed or not) and
//!   pushed with [`push`].
//!
//! - A merge commit's changes are in the commits it brought in: [`message_with_merged`] reads
//!   them as if its own message said them (a bump merged by pull request, then reverted).
//!
//! Process-wide settings, for start-up: [`set_network_timeouts`] (libgit2 waits forever on a
//! stalled server otherwise) and [`trust_ca_file_process_wide`] (a CA for every https remote,
//! e.g. `$SLUICE_CA_FILE` in the local world; a per-source [`CaCerts`] needs no global state).
//!
//! Every connection libgit2 opens (http, https, ssh) goes through Sluice's socket stream, which
//! turns Nagle's algorithm off: libgit2 writes a request's headers and body apart, and the body
//! used to wait ~40 ms for the server's delayed acknowledgement (`socket.rs`).
//!
//! Every failure is a [`GitError`] that says what went wrong in the operator's terms, with URLs
//! stripped of credentials and secrets scrubbed. All functions block: call them from
//! `tokio::task::spawn_blocking`.

mod auth;
mod error;
mod fetch;
pub mod known_hosts;
mod merges;
mod push;
mod remote;
mod sign;
mod socket;
mod tls;
pub mod url;

pub use auth::{Credentials, GitAuth, SecretError, SshKey, TOKEN_USERNAME};
pub use error::{GitError, Refusals, classify, push_refused, scrub};
pub use fetch::{Fetched, Revision, checkout_tree, fetch_revision};
pub use known_hosts::KnownHosts;
pub use merges::{merged_in_messages, message_with_merged};
pub use push::{
    Author, FileChange, clone_or_open, commit, commit_signed, commit_tree, push, push_refs,
    push_replacing,
};
pub use remote::{Remote, Transcript, set_network_timeouts};
pub use sign::{CommitSigner, GIT_NAMESPACE, SIGNATURE_HEADER};
pub use tls::{CaCerts, trust_ca_file_process_wide};
