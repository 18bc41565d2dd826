//! Normalized desired-against-live diffs, with Secrets masked: what `sluice diff` prints and what
//! its exit code says (0 no difference, 1 differences, 2 error, as `kubectl diff`).
//!
//! # What to pass as `desired`
//!
//! The caller passes the **server-side dry-run result** of applying the manifest (with Sluice's
//! field manager), not the manifest itself. The dry-run returns the object as it would be after the
//! apply: with the API server's defaults filled in, and with the fields other managers own (an
//! HPA's `replicas`, a controller's annotations) kept as they are live. Diffing that against the
//! live object shows exactly what an apply would change, without a table of defaults or a guess at
//! field ownership here. Both sides are then [`normalize`]d and Secrets masked as a pair; that is
//! all this module does: `diff(normalize(dry_run), normalize(live))`.

mod mask;
mod normalize;
mod unified;

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

pub use mask::{MASK, MASK_CHANGED, is_secret, mask_secret_pair};
pub use normalize::{LAST_APPLIED_ANNOTATION, normalize};
pub use unified::to_yaml;

use crate::object::{ObjectRef, group_of};

/// Exit code of a diff that found nothing to change.
pub const EXIT_NO_DIFF: u8 = 0;
/// Exit code of a diff that found changes.
pub const EXIT_DIFF: u8 = 1;
/// Exit code of a diff that could not be made (the shared failure code).
pub const EXIT_ERROR: u8 = sluice_shared::exit::FAILURE;

/// What applying the desired state would do to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub enum Change {
    Unchanged,
    /// Desired but not live: the apply creates it.
    Created,
    Modified,
    /// Live but not desired: prune deletes it.
    Deleted,
}

/// The diff of one object. It holds only masked text: the unmasked values never leave
/// [`diff_objects`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObjectDiff {
    pub object_ref: ObjectRef,
    pub change: Change,
    /// Unified diff from `live/<ref>` to `desired/<ref>`; empty when unchanged.
    pub unified: String,
}

impl ObjectDiff {
    pub fn has_changes(&self) -> bool {
        self.change != Change::Unchanged
    }
}

/// Diffs one object: `desired` is the server-side dry-run result (`None` when the object is to
/// be pruned), `live` the cluster's object (`None` when it does not exist yet). Created and
/// deleted objects are shown whole.
pub fn diff_objects(desired: Option<&Value>, live: Option<&Value>) -> ObjectDiff {
    let object_ref = identity(desired, live);
    let mut desired = desired.map(normalize);
    let mut live = live.map(normalize);
    mask_secret_pair(desired.as_mut(), live.as_mut());

    let change = match (&desired, &live) {
        (None, None) => Change::Unchanged,
        (Some(_), None) => Change::Created,
        (None, Some(_)) => Change::Deleted,
        (Some(wanted), Some(current)) if wanted == current => Change::Unchanged,
        (Some(_), Some(_)) => Change::Modified,
    };
    let unified = if change == Change::Unchanged {
        String::new()
    } else {
        let text = |object: &Option<Value>| object.as_ref().map(to_yaml).unwrap_or_default();
        unified::unified_diff(
            &text(&live),
            &text(&desired),
            &format!("live/{object_ref}"),
            &format!("desired/{object_ref}"),
        )
    };
    ObjectDiff {
        object_ref,
        change,
        unified,
    }
}

/// The object's identity from whichever side has one. Rendered and live objects always have
/// one; a malformed object still gets a header built from what it has rather than no diff.
fn identity(desired: Option<&Value>, live: Option<&Value>) -> ObjectRef {
    desired
        .and_then(ObjectRef::of)
        .or_else(|| live.and_then(ObjectRef::of))
        .unwrap_or_else(|| {
            let object = desired.or(live);
            let text = |pointer: &str| {
                object
                    .and_then(|o| o.pointer(pointer))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            };
            ObjectRef {
                group: group_of(text("/apiVersion")).to_owned(),
                kind: text("/kind").to_owned(),
                namespace: text("/metadata/namespace").to_owned(),
                name: text("/metadata/name").to_owned(),
            }
        })
}

/// The diffs of a whole sync, sorted by object so the same states always print the same.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DiffReport {
    pub objects: Vec<ObjectDiff>,
}

impl DiffReport {
    pub fn new(mut objects: Vec<ObjectDiff>) -> Self {
        objects.sort_by(|a, b| a.object_ref.cmp(&b.object_ref));
        Self { objects }
    }

    pub fn has_changes(&self) -> bool {
        self.objects.iter().any(ObjectDiff::has_changes)
    }

    pub fn changed(&self) -> impl Iterator<Item = &ObjectDiff> {
        self.objects.iter().filter(|object| object.has_changes())
    }

    /// The unified diffs of the changed objects, one after another, as `kubectl diff` prints
    /// them; empty when nothing changes.
    pub fn render(&self) -> String {
        self.changed().fold(String::new(), |mut text, object| {
            text.push_str(&object.unified);
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text
        })
    }

    /// One line for logs and status: `3 objects: 1 created, 1 modified, 0 deleted, 1 unchanged`.
    pub fn summary(&self) -> String {
        let count = |change| {
            self.objects
                .iter()
                .filter(|object| object.change == change)
                .count()
        };
        let mut line = format!("{} objects:", self.objects.len());
        let parts = [
            (Change::Created, "created"),
            (Change::Modified, "modified"),
            (Change::Deleted, "deleted"),
            (Change::Unchanged, "unchanged"),
        ];
        for (at, (change, name)) in parts.into_iter().enumerate() {
            let separator = if at == 0 { " " } else { ", " };
            let _ = write!(line, "{separator}{} {name}", count(change));
        }
        line
    }

    /// [`EXIT_NO_DIFF`] or [`EXIT_DIFF`].
    pub fn exit_code(&self) -> u8 {
        if self.has_changes() {
            EXIT_DIFF
        } else {
            EXIT_NO_DIFF
        }
    }
}

/// The exit code of a diff command: 0 no diff, 1 diff, 2 when the diff could not be made (render,
/// dry-run or cluster read failed). An error wins over any partial result.
pub fn exit_code<E>(outcome: &Result<DiffReport, E>) -> u8 {
    outcome.as_ref().map_or(EXIT_ERROR, DiffReport::exit_code)
}

#[cfg(test)]
mod tests;
