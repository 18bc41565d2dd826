//! Compiling a [`Policy`] and choosing one tag with it.

use std::cmp::Ordering;
use std::collections::HashSet;

use semver::Version;

use super::digest::Platform;
use super::filter::{CompiledFilter, Exclusions, is_valid_tag};
use super::numeric::Decimal;
use super::semver_range::SemverRange;
use super::{Policy, PolicyError, Rule, SortOrder};

/// A [`Policy`] checked and compiled once, ready to choose from any number of tag lists.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    rule: CompiledRule,
    filter: Option<CompiledFilter>,
    exclusions: Exclusions,
}

#[derive(Debug, Clone)]
enum CompiledRule {
    Semver {
        range: SemverRange,
        prereleases: bool,
    },
    Alphabetical(SortOrder),
    Numerical(SortOrder),
    Digest {
        tag: String,
        platforms: Vec<Platform>,
    },
}

/// The outcome of [`CompiledPolicy::choose`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// The policy allows `tag`, which ranks above every other eligible tag.
    Chosen {
        tag: String,
        /// What `tag` was ranked by (the parsed version, number, or text).
        key: SortKey,
        /// The caller must resolve the tag's digest and pin it (`digest` policies); see
        /// [`super::pick_index_digest`].
        resolve_digest: bool,
        tally: Tally,
        /// Blocked tags that would have ranked above `tag`, best first.
        blocked_skipped: Vec<String>,
    },
    /// No tag is allowed.
    NoMatch { tally: Tally, reason: NoMatchReason },
}

impl Choice {
    /// The chosen tag, if any.
    pub fn tag(&self) -> Option<&str> {
        match self {
            Choice::Chosen { tag, .. } => Some(tag),
            Choice::NoMatch { .. } => None,
        }
    }

    /// Where the listed tags dropped out.
    pub fn tally(&self) -> &Tally {
        match self {
            Choice::Chosen { tally, .. } | Choice::NoMatch { tally, .. } => tally,
        }
    }
}

/// Why nothing was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoMatchReason {
    /// The registry listed no tags at all.
    NoTags,
    /// Tags were listed, but none passed the gates; the [`Tally`] says where they dropped out.
    NoneEligible,
    /// Every eligible tag is blocked (rolled back in git). Best first.
    AllBlocked { blocked_skipped: Vec<String> },
    /// A `digest` policy's tag is not listed (or was excluded or filtered out).
    TagMissing { tag: String },
}

/// The key a tag was ranked by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKey {
    /// From a `semver` policy; build metadata (`_build` in a tag) is kept but never ranks.
    Version(Version),
    /// From a `numerical` policy, normalized: `007` → `7`.
    Number(String),
    /// From an `alphabetical` or `digest` policy.
    Text(String),
}

/// Counts of where the listed tags went. `considered` is every listed tag; each of the others
/// counts the tags that stopped at that gate, in this order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub considered: usize,
    /// Not a tag by the OCI grammar (empty, over 128 characters, bad characters).
    pub malformed: usize,
    /// Matched the exclusion list.
    pub excluded: usize,
    /// Did not match `filterTags.pattern`, or its `extract` group was empty; for `digest`
    /// policies, any tag other than the followed one.
    pub unmatched: usize,
    /// The key did not parse (semver, number), was a pre-release not asked for, or lay outside
    /// the range.
    pub rejected: usize,
    /// Eligible but blocked.
    pub blocked: usize,
}

/// A tag that passed every gate, with its key borrowed where possible.
#[derive(Debug, Clone)]
struct Candidate<'t> {
    tag: &'t str,
    key: Key<'t>,
}

#[derive(Debug, Clone)]
enum Key<'t> {
    Version(Version),
    Number(Decimal<'t>),
    Text(&'t str),
}

impl CompiledPolicy {
    /// Checks and compiles `policy`: its regexes, its range, its digest tag and platforms.
    pub fn new(policy: &Policy) -> Result<Self, PolicyError> {
        let rule = match &policy.rule {
            Rule::Semver(s) => CompiledRule::Semver {
                range: SemverRange::parse(&s.range)?,
                prereleases: s.prereleases,
            },
            Rule::Alphabetical(o) => CompiledRule::Alphabetical(o.order),
            Rule::Numerical(o) => CompiledRule::Numerical(o.order),
            Rule::Digest(d) => {
                if !is_valid_tag(&d.tag) {
                    return Err(PolicyError::InvalidDigestTag { tag: d.tag.clone() });
                }
                let platforms = d
                    .platforms
                    .iter()
                    .map(|p| {
                        p.parse::<Platform>()
                            .map_err(|e| PolicyError::InvalidPlatform(e.to_string()))
                    })
                    .collect::<Result<_, _>>()?;
                CompiledRule::Digest {
                    tag: d.tag.clone(),
                    platforms,
                }
            }
        };
        let filter = policy
            .filter_tags
            .as_ref()
            .map(CompiledFilter::compile)
            .transpose()?;
        let exclusions = Exclusions::compile(&policy.exclusions())?;
        Ok(CompiledPolicy {
            rule,
            filter,
            exclusions,
        })
    }

    /// The platforms a `digest` policy requires (empty for other rules).
    pub fn platforms(&self) -> &[Platform] {
        match &self.rule {
            CompiledRule::Digest { platforms, .. } => platforms,
            _ => &[],
        }
    }

    /// Chooses the best tag in `tags` that is not in `blocked`.
    ///
    /// One pass, no sorting: each tag is gated, keyed and compared with the best so far. Blocked
    /// candidates are kept aside so the choice can report those that would have won.
    pub fn choose<S: AsRef<str>>(&self, tags: &[S], blocked: &HashSet<String>) -> Choice {
        let mut tally = Tally {
            considered: tags.len(),
            ..Tally::default()
        };
        let mut best: Option<Candidate<'_>> = None;
        let mut blocked_candidates: Vec<Candidate<'_>> = Vec::new();
        let mut scratch = self.filter.as_ref().map(CompiledFilter::scratch);

        for tag in tags {
            let tag = tag.as_ref();
            if !is_valid_tag(tag) {
                tally.malformed += 1;
                continue;
            }
            if self.exclusions.excludes(tag) {
                tally.excluded += 1;
                continue;
            }
            let text = match (&self.filter, scratch.as_mut()) {
                (Some(filter), Some(scratch)) => match filter.key(tag, scratch) {
                    Some(text) => text,
                    None => {
                        tally.unmatched += 1;
                        continue;
                    }
                },
                _ => tag,
            };
            let key = match self.key(tag, text) {
                Ok(key) => key,
                Err(Gate::Unmatched) => {
                    tally.unmatched += 1;
                    continue;
                }
                Err(Gate::Rejected) => {
                    tally.rejected += 1;
                    continue;
                }
            };
            let candidate = Candidate { tag, key };
            if blocked.contains(tag) {
                tally.blocked += 1;
                blocked_candidates.push(candidate);
                continue;
            }
            if best
                .as_ref()
                .is_none_or(|b| self.rank(&candidate, b) == Ordering::Greater)
            {
                best = Some(candidate);
            }
        }

        // Blocked tags that outrank the choice (all of them when there is none), best first.
        blocked_candidates.retain(|c| {
            best.as_ref()
                .is_none_or(|b| self.rank(c, b) == Ordering::Greater)
        });
        blocked_candidates.sort_by(|a, b| self.rank(b, a));
        let mut blocked_skipped: Vec<String> = blocked_candidates
            .iter()
            .map(|c| c.tag.to_owned())
            .collect();
        blocked_skipped.dedup();

        match best {
            Some(Candidate { tag, key }) => Choice::Chosen {
                tag: tag.to_owned(),
                key: match key {
                    Key::Version(v) => SortKey::Version(v),
                    Key::Number(n) => SortKey::Number(n.normalized()),
                    Key::Text(t) => SortKey::Text(t.to_owned()),
                },
                resolve_digest: matches!(self.rule, CompiledRule::Digest { .. }),
                tally,
                blocked_skipped,
            },
            None if !blocked_skipped.is_empty() => Choice::NoMatch {
                tally,
                reason: NoMatchReason::AllBlocked { blocked_skipped },
            },
            None => {
                let reason = match &self.rule {
                    CompiledRule::Digest { tag, .. } => {
                        NoMatchReason::TagMissing { tag: tag.clone() }
                    }
                    _ if tags.is_empty() => NoMatchReason::NoTags,
                    _ => NoMatchReason::NoneEligible,
                };
                Choice::NoMatch { tally, reason }
            }
        }
    }

    /// The key of a tag whose filtered text is `text`, or the gate it stops at.
    fn key<'t>(&self, tag: &'t str, text: &'t str) -> Result<Key<'t>, Gate> {
        match &self.rule {
            CompiledRule::Semver { range, prereleases } => {
                let version = parse_tag_version(text).ok_or(Gate::Rejected)?;
                let pre_ok = version.pre.is_empty() || *prereleases || range.names_prerelease();
                if pre_ok && range.admits(&version) {
                    Ok(Key::Version(version))
                } else {
                    Err(Gate::Rejected)
                }
            }
            CompiledRule::Numerical(_) => {
                Decimal::parse(text).map(Key::Number).ok_or(Gate::Rejected)
            }
            CompiledRule::Alphabetical(_) => Ok(Key::Text(text)),
            CompiledRule::Digest { tag: followed, .. } => {
                if tag == followed {
                    Ok(Key::Text(tag))
                } else {
                    Err(Gate::Unmatched)
                }
            }
        }
    }

    /// `Greater` when `a` should be chosen over `b`. Equal keys go to the tag whose text sorts
    /// first, so the choice never depends on the order the registry listed tags in.
    fn rank(&self, a: &Candidate<'_>, b: &Candidate<'_>) -> Ordering {
        let by_key = match (&a.key, &b.key) {
            (Key::Version(x), Key::Version(y)) => x.cmp_precedence(y),
            (Key::Number(x), Key::Number(y)) => x.cmp(y),
            (Key::Text(x), Key::Text(y)) => x.cmp(y),
            _ => Ordering::Equal, // one rule makes one kind of key
        };
        let by_key = match self.rule {
            CompiledRule::Alphabetical(SortOrder::Desc)
            | CompiledRule::Numerical(SortOrder::Desc) => by_key.reverse(),
            _ => by_key,
        };
        by_key.then_with(|| b.tag.cmp(a.tag))
    }
}

/// The gate a tag stopped at while being keyed.
enum Gate {
    Unmatched,
    Rejected,
}

/// Reads a tag (or extracted text) as a version: `[v]MAJOR.MINOR.PATCH[-pre][_build]`.
///
/// `_` stands for `+`, which OCI tags cannot contain (Helm's convention for chart tags).
/// Partial versions (`1.2`) are refused: they are floating aliases, not releases.
pub(super) fn parse_tag_version(text: &str) -> Option<Version> {
    let text = text.strip_prefix('v').unwrap_or(text);
    // Most non-version tags (`latest`, `main-…`, `sha256-….sig`) stop here, without parsing.
    if !text.as_bytes().first()?.is_ascii_digit() {
        return None;
    }
    match text.split_once('_') {
        Some((core, build)) => Version::parse(&format!("{core}+{build}")).ok(),
        None => Version::parse(text).ok(),
    }
}
