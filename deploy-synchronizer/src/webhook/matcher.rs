//! Does a push concern a GitSync's source? Pure: a source URL and ref against a [`PushEvent`].
//!
//! The repository is compared as [`sluice_shared::repo_url`] normalizes URLs (the https, ssh and
//! scp-like forms of one repository are equal; a local path never matches); the ref as below.

use super::PushEvent;
use crate::resource::GitRef;
use sluice_shared::repo_url::same_repository;

/// Whether `event` concerns the source `source_url` at `source_ref` (default: branch `main`):
/// - a branch or tag matches a push of that very ref;
/// - a commit pin matches only a push whose new revision is that commit (at least 7 hex
///   digits given): nothing else can change what it checks out.
pub fn matches(source_url: &str, source_ref: Option<&GitRef>, event: &PushEvent) -> bool {
    same_repository(source_url, &event.repo_urls) && ref_matches(source_ref, event)
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
