//! Semver ranges in the dialect Flux users write (Masterminds `semver/v3`), evaluated by hand.
//!
//! The `semver` crate's `VersionReq` speaks Cargo's dialect, which differs in ways that would
//! silently change what users' existing ranges select: a bare `1.2.3` is `^1.2.3` there but exact
//! here; it has no `||`, no hyphen ranges, and needs commas between comparators; and it admits a
//! pre-release only through a comparator with the same `major.minor.patch`. So we parse the range
//! ourselves into bounds over semver *precedence* (build metadata ignored) and use the crate only
//! for versions.
//!
//! Grammar: alternatives separated by `||`; each alternative is comparators separated by spaces
//! and/or commas (all must hold), or a hyphen range `A - B`. A comparator is an optional operator
//! (`=`, `!=`, `>`, `>=`/`=>`, `<`, `<=`/`=<`, `~`/`~>`, `^`), optional spaces, and a version that
//! may have a leading `v`, may be partial (`1`, `1.2`) and may use `x`, `X` or `*` wildcards.
//!
//! Lowering (the pre-release part is documented on [`super::SemverPolicy`]):
//!
//! | written       | means                         |
//! | ------------- | ----------------------------- |
//! | `1.2.3`, `=1.2.3` | exactly `1.2.3`           |
//! | `1.2`, `1.2.x` | `>=1.2.0-0 <1.3.0-0`         |
//! | `*`, `x`      | anything                      |
//! | `>1.2`        | `>=1.3.0-0` (above all of 1.2.x) |
//! | `<=1.2`       | `<1.3.0-0`                    |
//! | `<2.0.0`      | `<2.0.0-0`                    |
//! | `~1.2.3`      | `>=1.2.3 <1.3.0-0`            |
//! | `^1.2.3` / `^0.2.3` / `^0.0.3` | `>=v <2.0.0-0` / `<0.3.0-0` / `<0.0.4-0` |
//! | `1.2 - 1.4.5` | `>=1.2.0-0 <=1.4.5`           |

use std::cmp::Ordering;
use std::fmt;

use semver::{Prerelease, Version};

/// A compiled semver range: alternatives of conjunctions of bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemverRange {
    alternatives: Vec<Vec<Bound>>,
    names_prerelease: bool,
    text: String,
}

/// Why a range does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("the range is empty (use `*` for any version)")]
    Empty,
    #[error("an alternative between `||` is empty in {range:?}")]
    EmptyAlternative { range: String },
    #[error("operator {op:?} is not followed by a version")]
    DanglingOperator { op: String },
    #[error("{token:?} is not a version: {reason}")]
    BadVersion { token: String, reason: String },
    #[error("a hyphen range needs a plain version on each side: {text:?}")]
    BadHyphen { text: String },
}

/// One bound, compared by semver precedence.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bound {
    AtLeast(Version),
    Above(Version),
    AtMost(Version),
    Below(Version),
    Exactly(Version),
    Not(Version),
    /// Outside `[from, below)`; `below: None` is unbounded. From `!=1.2.x`.
    Outside {
        from: Version,
        below: Option<Version>,
    },
    /// From `>*`, `<*`, `!=*`.
    Never,
}

impl Bound {
    fn admits(&self, v: &Version) -> bool {
        match self {
            Bound::AtLeast(b) => v.cmp_precedence(b) != Ordering::Less,
            Bound::Above(b) => v.cmp_precedence(b) == Ordering::Greater,
            Bound::AtMost(b) => v.cmp_precedence(b) != Ordering::Greater,
            Bound::Below(b) => v.cmp_precedence(b) == Ordering::Less,
            Bound::Exactly(b) => v.cmp_precedence(b) == Ordering::Equal,
            Bound::Not(b) => v.cmp_precedence(b) != Ordering::Equal,
            Bound::Outside { from, below } => {
                v.cmp_precedence(from) == Ordering::Less
                    || below
                        .as_ref()
                        .is_some_and(|b| v.cmp_precedence(b) != Ordering::Less)
            }
            Bound::Never => false,
        }
    }
}

impl SemverRange {
    /// Parses a range such as `>=1.2.0 <2.0.0 || ^3.1`.
    pub fn parse(text: &str) -> Result<Self, RangeError> {
        if text.trim().is_empty() {
            return Err(RangeError::Empty);
        }
        let mut alternatives = Vec::new();
        let mut names_prerelease = false;
        for alt in text.split("||") {
            let tokens: Vec<&str> = alt
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|t| !t.is_empty())
                .collect();
            if tokens.is_empty() {
                return Err(RangeError::EmptyAlternative {
                    range: text.to_owned(),
                });
            }
            let mut bounds = Vec::new();
            if let Some(dash) = tokens.iter().position(|t| *t == "-") {
                let bad_hyphen = || RangeError::BadHyphen {
                    text: alt.trim().to_owned(),
                };
                let (lo, hi) = match (dash, tokens.len()) {
                    (1, 3) => (tokens[0], tokens[2]),
                    _ => return Err(bad_hyphen()),
                };
                if Op::split(lo).1 != lo || Op::split(hi).1 != hi {
                    return Err(bad_hyphen());
                }
                let (lo, hi) = (Partial::parse(lo)?, Partial::parse(hi)?);
                names_prerelease |= !lo.pre.is_empty() || !hi.pre.is_empty();
                lower(Op::Ge, &lo, &mut bounds);
                lower(Op::Le, &hi, &mut bounds);
            } else {
                let mut i = 0;
                while i < tokens.len() {
                    let (op, mut rest) = Op::split(tokens[i]);
                    if rest.is_empty() {
                        // `>= 1.2.3`: the operator stands alone; the version is the next token.
                        i += 1;
                        rest =
                            tokens
                                .get(i)
                                .copied()
                                .ok_or_else(|| RangeError::DanglingOperator {
                                    op: tokens[i - 1].to_owned(),
                                })?;
                    }
                    let partial = Partial::parse(rest)?;
                    names_prerelease |= !partial.pre.is_empty();
                    lower(op, &partial, &mut bounds);
                    i += 1;
                }
            }
            alternatives.push(bounds);
        }
        Ok(SemverRange {
            alternatives,
            names_prerelease,
            text: text.to_owned(),
        })
    }

    /// Whether `version` is inside the range (by precedence; pre-release gating is the caller's).
    pub fn admits(&self, version: &Version) -> bool {
        self.alternatives
            .iter()
            .any(|bounds| bounds.iter().all(|b| b.admits(version)))
    }

    /// Whether any comparator spells a pre-release (`>=1.0.0-0`), which opts into pre-releases.
    pub fn names_prerelease(&self) -> bool {
        self.names_prerelease
    }
}

impl fmt::Display for SemverRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Tilde,
    Caret,
}

impl Op {
    /// Splits a leading operator off a token (no operator means `=`).
    fn split(token: &str) -> (Op, &str) {
        const OPS: &[(&str, Op)] = &[
            (">=", Op::Ge),
            ("=>", Op::Ge),
            ("<=", Op::Le),
            ("=<", Op::Le),
            ("!=", Op::Ne),
            ("~>", Op::Tilde),
            (">", Op::Gt),
            ("<", Op::Lt),
            ("=", Op::Eq),
            ("~", Op::Tilde),
            ("^", Op::Caret),
        ];
        for (text, op) in OPS {
            if let Some(rest) = token.strip_prefix(text) {
                return (*op, rest);
            }
        }
        (Op::Eq, token)
    }
}

/// A possibly partial version from a range: `None` components are wildcards or missing.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Partial {
    major: Option<u64>,
    minor: Option<u64>,
    patch: Option<u64>,
    pre: Prerelease,
}

impl Partial {
    fn parse(token: &str) -> Result<Self, RangeError> {
        let bad = |reason: &str| RangeError::BadVersion {
            token: token.to_owned(),
            reason: reason.to_owned(),
        };
        let text = token.strip_prefix(['v', 'V']).unwrap_or(token);
        // Build metadata never affects precedence; validate it and drop it.
        let (text, build) = match text.split_once('+') {
            Some((t, b)) => (t, Some(b)),
            None => (text, None),
        };
        if let Some(build) = build {
            if build.is_empty() {
                return Err(bad("empty build metadata"));
            }
            semver::BuildMetadata::new(build).map_err(|e| bad(&e.to_string()))?;
        }
        let (core, pre) = match text.split_once('-') {
            Some((_, "")) => return Err(bad("empty pre-release")),
            Some((c, p)) => (c, Prerelease::new(p).map_err(|e| bad(&e.to_string()))?),
            None => (text, Prerelease::EMPTY),
        };
        let mut parts = [None; 3];
        let mut seen_wildcard = false;
        let mut count = 0;
        for (i, part) in core.split('.').enumerate() {
            if i >= 3 {
                return Err(bad("more than three components"));
            }
            count = i + 1;
            if matches!(part, "x" | "X" | "*") {
                seen_wildcard = true;
                continue;
            }
            if seen_wildcard {
                return Err(bad("a number after a wildcard"));
            }
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("components must be numbers or x, X, *"));
            }
            parts[i] = Some(part.parse::<u64>().map_err(|_| bad("number too large"))?);
        }
        let partial = Partial {
            major: parts[0],
            minor: parts[1],
            patch: parts[2],
            pre,
        };
        if !partial.pre.is_empty() && (count < 3 || seen_wildcard) {
            return Err(bad("a pre-release needs a full MAJOR.MINOR.PATCH"));
        }
        Ok(partial)
    }

    /// The full version, if no component is missing.
    fn full(&self) -> Option<Version> {
        Some(Version {
            major: self.major?,
            minor: self.minor?,
            patch: self.patch?,
            pre: self.pre.clone(),
            build: semver::BuildMetadata::EMPTY,
        })
    }

    /// The first version of the release line a partial names: `1.2` → `1.2.0-0`. `None` for `*`.
    fn line_start(&self) -> Option<Version> {
        Some(lowest(self.major?, self.minor.unwrap_or(0), 0))
    }

    /// The first version after the release line a partial names: `1.2` → `1.3.0-0`,
    /// `1` → `2.0.0-0`. `None` for `*` or on overflow (unbounded).
    fn line_end(&self) -> Option<Version> {
        match (self.major?, self.minor) {
            (major, Some(minor)) => Some(lowest(major, minor.checked_add(1)?, 0)),
            (major, None) => Some(lowest(major.checked_add(1)?, 0, 0)),
        }
    }
}

/// `M.m.p-0`, the lowest version with that release tuple.
fn lowest(major: u64, minor: u64, patch: u64) -> Version {
    Version {
        major,
        minor,
        patch,
        pre: Prerelease::new("0").expect("`0` is a valid pre-release"),
        build: semver::BuildMetadata::EMPTY,
    }
}

/// An exclusive upper bound that also shuts out the bound's own pre-releases, unless it names one.
fn below(v: Version) -> Bound {
    if v.pre.is_empty() {
        Bound::Below(lowest(v.major, v.minor, v.patch))
    } else {
        Bound::Below(v)
    }
}

/// Lowers one comparator into bounds, appended to `out`.
fn lower(op: Op, p: &Partial, out: &mut Vec<Bound>) {
    if let Some(v) = p.full() {
        match op {
            Op::Eq => out.push(Bound::Exactly(v)),
            Op::Ne => out.push(Bound::Not(v)),
            Op::Gt => out.push(Bound::Above(v)),
            Op::Ge => out.push(Bound::AtLeast(v)),
            Op::Lt => out.push(below(v)),
            Op::Le => out.push(Bound::AtMost(v)),
            Op::Tilde => {
                let end = v.minor.checked_add(1).map(|m| lowest(v.major, m, 0));
                out.push(Bound::AtLeast(v));
                out.extend(end.map(Bound::Below));
            }
            Op::Caret => {
                let end = if v.major > 0 {
                    v.major.checked_add(1).map(|m| lowest(m, 0, 0))
                } else if v.minor > 0 {
                    v.minor.checked_add(1).map(|m| lowest(0, m, 0))
                } else {
                    v.patch.checked_add(1).map(|p| lowest(0, 0, p))
                };
                out.push(Bound::AtLeast(v));
                out.extend(end.map(Bound::Below));
            }
        }
        return;
    }
    // A partial version or wildcard names a whole release line.
    let (start, end) = (p.line_start(), p.line_end());
    match op {
        Op::Eq | Op::Tilde => {
            out.extend(start.map(Bound::AtLeast));
            out.extend(end.map(Bound::Below));
        }
        Op::Caret => {
            // `^1.2` → `<2.0.0-0`; `^0.2` → `<0.3.0-0`; `^0` → `<1.0.0-0`; `^0.0` → `<0.1.0-0`.
            let end = match (p.major, p.minor) {
                (Some(0), Some(minor)) => minor.checked_add(1).map(|m| lowest(0, m, 0)),
                (Some(major), _) => major.checked_add(1).map(|m| lowest(m, 0, 0)),
                (None, _) => None,
            };
            out.extend(start.map(Bound::AtLeast));
            out.extend(end.map(Bound::Below));
        }
        Op::Ne => match start {
            Some(from) => out.push(Bound::Outside { from, below: end }),
            None => out.push(Bound::Never),
        },
        // Nothing is above `*`, nor above a line that ends past `u64::MAX`.
        Op::Gt => out.push(end.map_or(Bound::Never, Bound::AtLeast)),
        Op::Ge => out.extend(start.map(Bound::AtLeast)),
        Op::Lt => out.push(start.map_or(Bound::Never, Bound::Below)),
        Op::Le => out.extend(end.map(Bound::Below)),
    }
}

#[cfg(test)]
#[path = "semver_range_tests.rs"]
mod tests;
