//! Write-back: the chosen images go into the config repository as exact-byte edits, one commit
//! per round, pushed without ever losing or overwriting someone else's commit.
//!
//! - [`plan`] (pure): the files under the configured paths and the image chosen per policy in,
//!   a [`WritePlan`] out: the new bytes of each changed file, the [`Change`]s, and the
//!   [`Problem`]s to report (a file that does not parse, a marker naming an unknown policy, a
//!   value that cannot be edited in place). A value already at the chosen image is no change,
//!   so an up-to-date repository plans nothing and nothing is committed.
//! - [`commit_message`] (pure): the template with `{{changes}}` expanded, then the trailers.
//! - [`parse_trailers`] and [`reverted_changes`] (pure): what later tooling reads back, and the
//!   changes a person rolled back with `git revert` (their tags go to `status.blockedTags`, so
//!   the updater never re-commits a rolled-back tag).
//! - `plan_round` (the shell's reading half): clone or open, read the files and the history,
//!   plan with the rolled-back versions left out; the push, the preview of `status.pending`
//!   and `scan --dry-run` all plan the round there.
//! - [`push_update`] (the shell): `plan_round`, commit, push; on a non-fast-forward it
//!   fetches, re-plans on the new head (the human's commit wins, our edits re-apply where still
//!   needed) and pushes again, a bounded number of times. Never forced. [`push_update_signed`]
//!   signs each commit with an SSH key (`spec.git.commit.signingKeyRef`). It also reads the
//!   branch's recent history: a chosen version that a person rolled back is not written again
//!   (reported as [`ProblemKind::RolledBack`]), and every rolled-back change is returned in the
//!   [`Outcome`] for the caller to put into `status.blockedTags`.
//! - [`pull_request`] (pure): pull-request mode: what the push branch proposes, the pull
//!   request's title and body, whether to open or refresh it, and what a pull request closed
//!   without merge rejects (blocked like a revert; the push branch starts again from the base).
//!
//! # Trailer grammar
//!
//! Every commit ends with one trailer line per change (after a blank line):
//!
//! ```text
//! trailer  = "Sluice-Change: policy=" ns "/" name " file=" value " image=" value
//!            " old=" value " new=" value
//! value    = *( unreserved / pct-encoded )     ; never a space
//! unreserved = ALPHA / DIGIT / "." / "_" / "-" / "/" / "~" / "+" / "@" / ":" / ","
//! pct-encoded = "%" HEXDIG HEXDIG              ; each other byte of the UTF-8 text, uppercase
//! ```
//!
//! - `ns` and `name` are the ImagePolicy's namespace and name (DNS names: never encoded).
//! - `file` is the path relative to the repository root, `/`-separated.
//! - `image` is the repository as the policy chose it (`127.0.0.1:5000/demo/app`).
//! - `old` and `new` are *versions*: a tag (`1.4.2`), a digest (`sha256:…`, recognisable by its
//!   `:`, which a tag never has) or both (`1.4.2@sha256:…`), as the edited field held them. A
//!   whole-image field gives `tag[@digest]`, a `:tag` field or kustomize `newTag` a tag, a
//!   `:digest` field or kustomize `digest` a digest. A `:name` field, the one exception, gives
//!   repository names. A field with neither tag nor digest gives an empty value.
//! - Keys come in this order; a parser ignores unknown `key=value` tokens (room to grow) and
//!   skips lines that lack one of the five keys. [`parse_trailers`] reads every line of a
//!   message that starts with `Sluice-Change: `, so trailers survive an added `Signed-off-by`.
//!
//! Identical trailers (the same change at several lines of one file) are written once.

mod message;
mod plan;
pub mod pull_request;
mod push;
mod round;

#[cfg(test)]
mod tests;

use std::fmt;

pub use message::{TrailerChange, commit_message, parse_trailers, reverted_changes, rolled_back};
pub use plan::{plan, plan_except};
pub use push::{
    MAX_ATTEMPTS, Outcome, RoundOptions, WriteBackError, push_update, push_update_observed,
    push_update_signed, push_update_with,
};
pub use round::HISTORY_LIMIT;
pub(crate) use round::plan_round;

use crate::edit::{ImageRef, PolicyId};

/// The image a policy chose: `name:tag`, with `@digest` when the policy pins digests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub image: ImageRef,
}

/// What one round writes: the changed files, the changes in them, and what to report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WritePlan {
    /// Only files whose bytes change, sorted by path.
    pub files: Vec<FileEdit>,
    /// Sorted by file and line.
    pub changes: Vec<Change>,
    pub problems: Vec<Problem>,
}

/// The new content of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEdit {
    pub path: String,
    pub new_bytes: Vec<u8>,
}

/// One value changed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    pub policy: PolicyId,
    pub file: String,
    /// 1-based line of the value.
    pub line: usize,
    /// The repository the policy chose from.
    pub image: String,
    /// The version before and after (see the trailer grammar in the module doc).
    pub old: String,
    pub new: String,
}

/// Something the user should fix; the rest of the plan goes ahead without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    /// 1-based, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The policy concerned, when known.
    pub policy: Option<PolicyId>,
    pub kind: ProblemKind,
}

/// Why a file or a value was left alone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProblemKind {
    /// The file is not valid YAML: skipped; every other file is still updated.
    #[error("the file is not valid YAML ({message}); it was skipped")]
    Unparsable { message: String },
    /// A marker names a policy that does not exist (or is not ready).
    #[error(
        "the marker names the image policy {policy}, which is unknown; the value was left alone"
    )]
    UnknownPolicy { policy: String },
    /// The value cannot be edited in place (block scalar, needs quoting, …).
    #[error("{reason}")]
    NotEditable { reason: String },
    /// The field wants a part the chosen image does not have (a `:digest` marker, a kustomize
    /// `digest:` while the policy pins no digest).
    #[error(
        "the field holds the {part} but the image chosen by {policy} has none ({image}); the value was left alone"
    )]
    MissingPart {
        policy: String,
        part: String,
        image: String,
    },
    /// A kustomize entry lacks the key the update needs; adding a key would reformat the file.
    #[error(
        "the kustomize images entry for {image} has no `{key}:`; add `{key}: <any>` to let Sluice update it"
    )]
    MissingKey { image: String, key: String },
    /// An unmarked value names a repository that several policies watch.
    #[error(
        "{image} is watched by several policies ({policies}); add a marker to say which one updates it"
    )]
    Ambiguous { image: String, policies: String },
    /// The policy chose a version a person rolled back with `git revert`: never re-committed.
    #[error(
        "the image policy {policy} chose {version}, which a person rolled back with a revert \
         commit; it is not written again (block it in the policy, or revert the revert)"
    )]
    RolledBack { policy: String, version: String },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.kind)
    }
}
