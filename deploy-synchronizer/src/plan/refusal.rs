//! Why a render is not applied. A refused plan applies nothing and deletes nothing: a partial
//! apply of a render the user did not intend is worse than none. All refusals of a render are
//! collected, so one status update tells the user everything to fix.

use std::fmt;

use crate::object::ObjectRef;

/// One reason the render cannot be applied, naming the object and the file it came from.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "the render has no objects, but the {inventory} objects applied before would all be \
         pruned; if removing everything is intended set `spec.allowEmpty: true` on GitSync \
         {sync}, otherwise check the source's path and ref"
    )]
    EmptyRender { sync: String, inventory: usize },

    #[error(
        "{id} (from {origin}) belongs to GitSync {owner}, not to {sync}: one object must have \
         one source of truth; remove it from one of the two, and to move it, remove it from \
         {owner} first (with `sluice.dev/prune: disabled` on it to keep it running meanwhile)"
    )]
    OwnedByOther {
        id: ObjectRef,
        origin: String,
        owner: String,
        sync: String,
    },

    #[error(
        "{id} (from {origin}) is in namespace {namespace}, where GitSync {sync} may not write \
         (it may write to: {}); add {namespace} to `spec.allowedNamespaces` or change the \
         manifest's namespace",
        allowed.join(", ")
    )]
    NamespaceNotAllowed {
        id: ObjectRef,
        origin: String,
        namespace: String,
        sync: String,
        allowed: Vec<String>,
    },

    #[error(
        "{id} (from {origin}) is cluster-scoped, and GitSync {sync} may not apply cluster-scoped \
         objects; set `spec.allowClusterScoped: true` or move it to a sync that may"
    )]
    ClusterScopedNotAllowed {
        id: ObjectRef,
        origin: String,
        sync: String,
    },

    #[error(
        "{id} (from {origin}): the cluster serves no kind {kind} in group {group} and no \
         CustomResourceDefinition in this render declares it; check apiVersion and kind for \
         typos, or add the CRD to the source (or install it) first",
        kind = id.kind,
        group = if id.group.is_empty() { "core" } else { &id.group }
    )]
    UnknownKind { id: ObjectRef, origin: String },

    #[error("{id} is defined twice, in {first} and in {second}; keep one")]
    Duplicate {
        id: ObjectRef,
        first: String,
        second: String,
    },
}

/// The render was refused: nothing was applied or deleted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("GitSync {sync} refused to apply the render: {}", Numbered(refusals))]
    Refused {
        sync: String,
        refusals: Vec<Refusal>,
    },
}

impl PlanError {
    pub fn refusals(&self) -> &[Refusal] {
        match self {
            Self::Refused { refusals, .. } => refusals,
        }
    }
}

/// `1) … 2) …`, or the one refusal alone.
struct Numbered<'a>(&'a [Refusal]);

impl fmt::Display for Numbered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [only] = self.0 {
            return write!(f, "{only}");
        }
        for (n, refusal) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}) {refusal}", n + 1)?;
        }
        Ok(())
    }
}
