//! Image policies: `(tags, policy) -> Choice`.
//!
//! A [`Policy`] is what a user writes in an `ImagePolicy` (Flux's shape, so existing `ImagePolicy`
//! specs carry over: `policy: {semver|alphabetical|numerical}`, `filterTags: {pattern, extract}`,
//! `exclusionList`), plus a `digest` rule that follows one mutable tag and pins its digest.
//! [`CompiledPolicy::new`] checks and compiles it once (regexes, the semver range); then
//! [`CompiledPolicy::choose`] picks a tag from a registry's tag list. Choosing does no I/O and
//! allocates only for what it reports, so a 10 000-tag repository costs about a millisecond.
//!
//! Each tag goes through the same steps, and the [`Tally`] counts where tags dropped out:
//!
//! 1. **Malformed**: not a tag by the OCI grammar `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`. Ignored;
//!    a registry should never list one, and we would never be able to write it into a manifest.
//! 2. **Excluded**: matches one of the exclusion regexes (default `^.*\.sig$`, cosign signatures).
//! 3. **Unmatched**: the `filterTags.pattern` does not match, or its `extract` group is empty.
//! 4. **Rejected**: the sort key does not parse (semver, number) or is outside the semver range.
//! 5. **Blocked**: the tag is in the caller's block list (a tag someone rolled back in git). It is
//!    never chosen; if it would have won, the choice reports it in `blocked_skipped`.
//!
//! Ties (equal keys, e.g. `1.2.3` and `v1.2.3`, or two tags with the same extracted timestamp) go
//! to the tag whose text sorts first, so the answer never depends on the registry's list order.

mod choose;
mod digest;
mod filter;
mod numeric;
mod semver_range;

#[cfg(test)]
mod tests;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use choose::{Choice, CompiledPolicy, NoMatchReason, SortKey, Tally};
pub use digest::{DigestPin, Platform, PlatformError, pick_index_digest};
pub use filter::is_valid_tag;
pub use semver_range::{RangeError, SemverRange};

/// The exclusion list used when a policy does not set `exclusionList`: cosign signature tags
/// (`sha256-<digest>.sig`), which every signed repository is full of and which are never images
/// anyone wants to deploy.
pub const DEFAULT_EXCLUSIONS: &[&str] = &[r"^.*\.sig$"];

/// How one image's tags are narrowed down to one tag.
///
/// `exclusionList`, when given, *replaces* [`DEFAULT_EXCLUSIONS`] (as Flux's `exclusionList` does),
/// so a user who writes their own list and still wants signatures skipped must list `^.*\.sig$`
/// themselves; `exclusionList: []` turns exclusions off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// The rule that orders candidate tags (or, for `digest`, names the one tag to follow).
    #[serde(rename = "policy")]
    pub rule: Rule,
    /// Keep only tags matching a regex, optionally sorting on a part of the tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_tags: Option<TagFilter>,
    /// Regexes of tags to ignore; replaces the default `["^.*\\.sig$"]` when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusion_list: Option<Vec<String>>,
}

impl Policy {
    /// A policy with just a rule: no filter, default exclusions.
    pub fn new(rule: Rule) -> Self {
        Policy {
            rule,
            filter_tags: None,
            exclusion_list: None,
        }
    }

    /// The exclusion regexes in force: the user's list, or the defaults.
    pub fn exclusions(&self) -> Vec<String> {
        match &self.exclusion_list {
            Some(list) => list.clone(),
            None => DEFAULT_EXCLUSIONS.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// The ordering rule. Exactly one is set, as in Flux: `{semver: {...}}`, `{alphabetical: {...}}`,
/// `{numerical: {...}}`, or Sluice's `{digest: {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Rule {
    /// The highest version inside a semver range.
    Semver(SemverPolicy),
    /// Byte-wise string order: `asc` picks the last tag (greatest), `desc` the first (least).
    Alphabetical(OrderPolicy),
    /// Decimal number order: `asc` picks the greatest number, `desc` the least. Keys that are not
    /// plain decimals (`-?digits[.digits]`) are skipped.
    Numerical(OrderPolicy),
    /// Follow one mutable tag (`latest`, `stable`) and pin whatever digest it points at.
    Digest(DigestPolicy),
}

/// `semver: {range, prereleases}`.
///
/// The range uses the Masterminds/Flux dialect (see [`SemverRange`]): `>=1.2.0 <2.0.0`,
/// `>=1.0.0, <2.0.0`, `^1.2`, `~1.2.3`, `1.2.x`, `*`, `1.2 - 1.4`, alternatives with `||`.
/// A bare version (`1.2.3`) means exactly that version, as in Masterminds (not Cargo's caret).
///
/// Tags are read as `MAJOR.MINOR.PATCH[-pre][_build]`, optionally with a leading `v`. Partial
/// tags such as `1.2` or `1` are *not* versions here: they are usually floating aliases of the
/// newest patch, and reading them as `1.2.0` (as Masterminds does) would pin a moving tag. OCI
/// tags cannot contain `+`, so build metadata is written `_` (Helm's convention); it never
/// affects the order.
///
/// Pre-release tags (`1.3.0-rc.1`) are considered only when `prereleases: true`, or when the range
/// itself spells a pre-release (`>=1.0.0-0`, the Flux idiom). When considered, they are placed by
/// semver precedence against the range's bounds, with one rule to keep "the next major's release
/// candidates" out: an exclusive upper bound `<X.Y.Z` written without a pre-release (including the
/// ones `^`, `~`, `x` and partial versions imply) also excludes `X.Y.Z`'s own pre-releases. Bounds
/// implied by wildcards and partial versions cover whole release lines: `1.2.x` admits
/// `1.2.0-rc.1`; `>=1.2.0` does not (write `>=1.2.0-0`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SemverPolicy {
    /// The semver range, e.g. `>=1.2.0 <2.0.0` or `^1.2`.
    pub range: String,
    /// Consider pre-release tags too (implied when the range spells a pre-release).
    #[serde(default)]
    pub prereleases: bool,
}

/// `alphabetical: {order}` and `numerical: {order}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderPolicy {
    /// `asc` (default): sort ascending and take the last, i.e. the greatest. `desc`: the least.
    #[serde(default)]
    pub order: SortOrder,
}

/// The direction a list is sorted in before its *last* element is taken (Flux's meaning).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    /// Ascending: the greatest key wins.
    #[default]
    Asc,
    /// Descending: the least key wins.
    Desc,
}

/// `digest: {tag, platforms}`: follow a mutable tag and pin its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DigestPolicy {
    /// The tag to follow, e.g. `latest` or `stable`.
    pub tag: String,
    /// Platforms (`os/arch[/variant]`, e.g. `linux/arm64`) the tag must be an index for; a digest
    /// that lacks one of them is refused, so a single-arch push to `latest` cannot take down the
    /// arm nodes. Empty: no check, and single-platform images are fine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
}

/// `filterTags: {pattern, extract}`: keep tags matching `pattern`; sort on `extract`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagFilter {
    /// A regex (Rust `regex` syntax, unanchored: write `^…$` to match whole tags).
    pub pattern: String,
    /// The capture group whose text is the sort key: `$ts`, `${ts}`, `ts` or `$1`. Without it,
    /// the whole tag is the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<String>,
}

/// Why a policy does not compile. Each names the field at fault, for the `ImagePolicy` status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("filterTags.pattern {pattern:?} is not a valid regex: {reason}")]
    InvalidPattern { pattern: String, reason: String },
    #[error("exclusionList entry {pattern:?} is not a valid regex: {reason}")]
    InvalidExclusion { pattern: String, reason: String },
    #[error("filterTags.extract {extract:?} names no capture group of pattern {pattern:?}")]
    UnknownExtractGroup { extract: String, pattern: String },
    #[error(
        "filterTags.extract {extract:?} must name one capture group: `$name`, `${{name}}`, `name` or `$1`"
    )]
    InvalidExtract { extract: String },
    #[error("filterTags.extract is set but filterTags.pattern has no capture groups")]
    ExtractWithoutGroups,
    #[error("policy.semver.range: {0}")]
    InvalidRange(#[from] RangeError),
    #[error("policy.digest.tag {tag:?} is not a valid OCI tag")]
    InvalidDigestTag { tag: String },
    #[error("policy.digest.platforms: {0}")]
    InvalidPlatform(String),
}
