//! Exact-byte edits of YAML files in the config repository: `(file bytes, edits) -> bytes`.
//!
//! Users were burnt by image updaters that re-serialised their YAML: lists re-indented, comments
//! moved, a leading `---` dropped. Our promise is that an update changes **only the bytes of the
//! value being replaced**. So this module never re-emits YAML. It parses to learn *where* values
//! are, then splices new bytes into the original file and checks its own work:
//!
//! 1. [`find`] parses a file once and reports every place an image could be updated
//!    ([`Reference`]): values carrying a Flux setter marker, kustomize `images:` entries and plain
//!    `image:` fields. Places that exist but cannot be edited in place (block scalars, multi-line
//!    values, markers that are not attached to a value...) come back as [`Reference::Skipped`]
//!    with a reason, so the caller can report them instead of silently ignoring them.
//! 2. [`apply`] replaces the bytes of the targeted scalars, keeping each scalar's quote style,
//!    then re-parses the result and verifies that the YAML documents are identical except for
//!    exactly the edited scalars, and that every byte outside the edited spans is untouched.
//!
//! [`Document`] does both on one parse, for a caller that finds and then edits the same bytes:
//! a find-then-edit round parses the file once and the edited documents once more.
//!
//! Everything here is pure: bytes in, bytes or an [`EditError`] out. The daemon reads and writes
//! files and decides which new value each reference gets (with [`ImageRef`] to compose values).
//!
//! # Decisions
//!
//! - **Markers need a namespace**, exactly like Flux: `ns:name`, `ns:name:tag`, `ns:name:name`,
//!   `ns:name:digest`. A namespace-less `"$imagepolicy": "web"` is reported as a malformed marker:
//!   allowing it would make `a:tag` ambiguous (policy `tag` in namespace `a`, or the tag of
//!   policy `a`?), and a Flux repository never contains it.
//! - **A marker belongs to the value it directly follows** on the same line (only blanks
//!   between). `{name: web, image: "x:1"}  # {"$imagepolicy": ...}` follows a flow mapping, not
//!   a value, so it is reported as not attached rather than guessed. Values *inside* flow
//!   collections are edited normally (the new value must then avoid `,[]{}` when plain).
//! - **Anchors and aliases**: an alias is never edited; the anchor's scalar is edited once and the
//!   lines of the aliases are listed in [`ScalarValue::aliased_at`] so the caller can report that
//!   those places change too. A marker written after an alias is refused (put it on the anchor).
//! - **Block scalars** (`|`, `>`) and **multi-line flow scalars** are refused: their bytes are
//!   not the value (indentation and folding), so an in-place edit could not be exact.

mod apply;
mod enclosing;
mod find;
mod image_ref;
mod markers;
mod scalar;
mod source;
mod verify;

#[cfg(test)]
mod tests;

use std::fmt;

pub use apply::apply;
pub use find::find;

pub use image_ref::{ImageRef, ImageRefError};
pub use markers::{ImagePart, PolicyId, SetterMarker};
use source::Parsed;

/// A half-open byte range `start..end` in the file as given (a UTF-8 BOM, if any, included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSpan {
    pub start: usize,
    pub end: usize,
}

impl ByteSpan {
    pub fn new(start: usize, end: usize) -> Self {
        ByteSpan { start, end }
    }

    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub fn range(&self) -> std::ops::Range<usize> {
        self.start..self.end
    }
}

impl fmt::Display for ByteSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bytes {}..{}", self.start, self.end)
    }
}

/// How a scalar is written. An edit keeps the style, because changing it would change bytes the
/// user did not ask us to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuoteStyle {
    Plain,
    SingleQuoted,
    DoubleQuoted,
}

impl fmt::Display for QuoteStyle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QuoteStyle::Plain => "plain (unquoted)",
            QuoteStyle::SingleQuoted => "single-quoted",
            QuoteStyle::DoubleQuoted => "double-quoted",
        })
    }
}

/// One editable scalar value in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalarValue {
    /// The value as YAML reads it (quotes removed, escapes resolved).
    pub value: String,
    /// The bytes holding the value: inside the quotes for quoted scalars. Replacing exactly these
    /// bytes is the whole edit.
    pub span: ByteSpan,
    pub style: QuoteStyle,
    /// 1-based line of the value.
    pub line: usize,
    /// 1-based column of the value, in characters.
    pub column: usize,
    /// 0-based index of the YAML document (`---`) in the file.
    pub document: usize,
    /// Where the value sits, for messages: `spec.template.spec.containers[0].image`.
    pub path: String,
    /// Lines of aliases (`*name`) of this value's anchor: editing the value changes them too.
    pub aliased_at: Vec<usize>,
}

/// A kustomize `images:` entry without markers, for the caller to match `name` against the
/// repositories it watches. Absent fields cannot be edited in place (that would insert a line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KustomizeImage {
    /// The `name:` field: the image name the entry applies to.
    pub name: ScalarValue,
    pub new_name: Option<ScalarValue>,
    pub new_tag: Option<ScalarValue>,
    pub digest: Option<ScalarValue>,
}

/// A place that looks like an image reference but cannot be edited in place, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub line: usize,
    pub column: usize,
    pub document: usize,
    /// The marker, when one was found and parsed.
    pub marker: Option<SetterMarker>,
    /// The value as YAML reads it, when there is one (to match it against watched repositories
    /// before reporting).
    pub value: Option<String>,
    pub reason: SkipReason,
}

/// Why a place was not offered for editing. The messages say what the user can change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    #[error(
        "the value is a block scalar (`|` or `>`); write it on one line to let Sluice update it"
    )]
    BlockScalar,
    #[error("the value spans several lines; write it on one line to let Sluice update it")]
    MultiLineScalar,
    #[error("the marked value is empty; write the current image reference before the marker")]
    EmptyValue,
    #[error(
        "the marker follows an alias; put the marker on the anchor's value at line {anchor_line}"
    )]
    MarkerOnAlias { anchor_line: usize },
    #[error(
        "the marker comment does not directly follow a value on its line (a value on the next \
         line, a mapping or a flow collection); put it right after the value it updates"
    )]
    MarkerNotAttached,
    #[error("malformed image policy marker: {detail}")]
    MalformedMarker { detail: String },
}

/// A place in a file where an image can be updated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A value followed by a Flux setter marker `# {"$imagepolicy": "ns:name[:part]"}`. The
    /// marker is authoritative: a marked value is never also reported as `Image` or as part of a
    /// `KustomizeImage`. The policy may be unknown to the caller; the caller decides.
    Marked {
        marker: SetterMarker,
        scalar: ScalarValue,
    },
    /// An unmarked kustomize `images:` entry (boxed: it holds up to four values).
    KustomizeImage(Box<KustomizeImage>),
    /// An unmarked `image:` field whose value is a string (containers, initContainers, cronjob
    /// templates, Helm values...), holding a whole image reference.
    Image(ScalarValue),
    /// A place that cannot be edited in place; report it.
    Skipped(Skipped),
}

impl Reference {
    /// 1-based line, for ordering and messages.
    pub fn line(&self) -> usize {
        match self {
            Reference::Marked { scalar, .. } | Reference::Image(scalar) => scalar.line,
            Reference::KustomizeImage(k) => k.name.line,
            Reference::Skipped(s) => s.line,
        }
    }

    /// The part of an image reference the value holds, for `Marked` and `Image`.
    pub fn part(&self) -> Option<ImagePart> {
        match self {
            Reference::Marked { marker, .. } => Some(marker.part),
            Reference::Image(_) => Some(ImagePart::Whole),
            _ => None,
        }
    }
}

/// A file parsed once, to find references and then apply edits to the same bytes.
pub struct Document<'a> {
    parsed: Parsed<'a>,
}

impl<'a> Document<'a> {
    /// Parse a file; see [`find`] for the errors.
    pub fn parse(file: &'a [u8]) -> Result<Self, EditError> {
        Ok(Document {
            parsed: Parsed::parse(file)?,
        })
    }

    /// The same as [`find`] on this file.
    pub fn references(&self) -> Vec<Reference> {
        find::references(&self.parsed)
    }

    /// The same as [`apply`] on this file, without parsing the original again.
    pub fn apply(&self, edits: &[Edit]) -> Result<Vec<u8>, EditError> {
        apply::apply_parsed(&self.parsed, edits)
    }
}

/// Replace the value of one scalar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// The scalar's [`ScalarValue::span`], as [`find`] reported it.
    pub span: ByteSpan,
    /// The value [`find`] saw. If the file now holds something else, the plan is stale and
    /// [`apply`] refuses rather than overwrite a change it did not plan for.
    pub expected: String,
    /// The new value, unquoted and unescaped: [`apply`] writes it in the scalar's style.
    pub replacement: String,
}

impl Edit {
    pub fn new(scalar: &ScalarValue, replacement: impl Into<String>) -> Self {
        Edit {
            span: scalar.span,
            expected: scalar.value.clone(),
            replacement: replacement.into(),
        }
    }
}

/// Why a file could not be searched or edited. Lines and columns are 1-based and relative to the
/// file; columns count characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error(
        "the file is not valid YAML at line {line}, column {column}: {message}; fix or skip the file"
    )]
    Parse {
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "edit at line {line}, column {column} ({span}) does not cover exactly one scalar value; \
         plan edits from `find` on the current file"
    )]
    NotAScalar {
        line: usize,
        column: usize,
        span: ByteSpan,
    },
    #[error(
        "stale edit at line {line}: expected the value {expected:?} but the file holds {found:?}; \
         re-read the file and plan again"
    )]
    Stale {
        line: usize,
        expected: String,
        found: String,
    },
    #[error("edits overlap at line {line} ({first} and {second}); plan one edit per value")]
    Overlap {
        line: usize,
        first: ByteSpan,
        second: ByteSpan,
    },
    #[error("the value at line {line} cannot be edited in place: {reason}")]
    Unsupported { line: usize, reason: SkipReason },
    #[error(
        "cannot write {value:?} as the {style} value at line {line}: {reason}; \
         quote the value in the file (e.g. \"...\") so Sluice can update it"
    )]
    NeedsQuoting {
        line: usize,
        value: String,
        style: QuoteStyle,
        reason: String,
    },
    #[error("self-check failed at line {line}: {detail}; the file was left unchanged")]
    Verification { line: usize, detail: String },
}
