//! The tag-level gates before ordering: OCI tag grammar, exclusions, and `filterTags`.

use regex::{CaptureLocations, Regex, RegexSet};

use super::{PolicyError, TagFilter};

/// Whether `tag` is a tag by the OCI distribution grammar `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
///
/// Checked by hand rather than by regex: it runs once per listed tag, before anything else.
pub fn is_valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    match bytes.split_first() {
        Some((first, rest)) if rest.len() < 128 => {
            (first.is_ascii_alphanumeric() || *first == b'_')
                && rest
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        }
        _ => false,
    }
}

/// The exclusion list, compiled into one `RegexSet` so each tag is scanned once.
#[derive(Debug, Clone)]
pub(super) struct Exclusions(Option<RegexSet>);

impl Exclusions {
    pub(super) fn compile(patterns: &[String]) -> Result<Self, PolicyError> {
        if patterns.is_empty() {
            return Ok(Exclusions(None));
        }
        // Compile each alone first, so an error names the entry at fault.
        for pattern in patterns {
            Regex::new(pattern).map_err(|e| PolicyError::InvalidExclusion {
                pattern: pattern.clone(),
                reason: e.to_string(),
            })?;
        }
        let set = RegexSet::new(patterns).map_err(|e| PolicyError::InvalidExclusion {
            pattern: patterns.join(" | "),
            reason: e.to_string(),
        })?;
        Ok(Exclusions(Some(set)))
    }

    pub(super) fn excludes(&self, tag: &str) -> bool {
        self.0.as_ref().is_some_and(|set| set.is_match(tag))
    }
}

/// A compiled `filterTags`: the regex, and which capture group (if any) is the sort key.
#[derive(Debug, Clone)]
pub(super) struct CompiledFilter {
    regex: Regex,
    /// The index of the `extract` group, resolved once from its name.
    group: Option<usize>,
}

impl CompiledFilter {
    pub(super) fn compile(filter: &TagFilter) -> Result<Self, PolicyError> {
        let regex = Regex::new(&filter.pattern).map_err(|e| PolicyError::InvalidPattern {
            pattern: filter.pattern.clone(),
            reason: e.to_string(),
        })?;
        let group = match filter.extract.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(extract) => Some(Self::group(&regex, extract, &filter.pattern)?),
        };
        Ok(CompiledFilter { regex, group })
    }

    /// Reads `extract` as one group reference: `$ts`, `${ts}`, `ts`, or `$1`. Flux passes
    /// `extract` to Go's template expansion, so `$ts` is what its users write; templates that
    /// join several groups are refused rather than half-supported.
    fn group(regex: &Regex, extract: &str, pattern: &str) -> Result<usize, PolicyError> {
        let name = extract
            .strip_prefix("${")
            .and_then(|s| s.strip_suffix('}'))
            .or_else(|| extract.strip_prefix('$'))
            .unwrap_or(extract);
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(PolicyError::InvalidExtract {
                extract: extract.to_owned(),
            });
        }
        if regex.captures_len() <= 1 {
            return Err(PolicyError::ExtractWithoutGroups);
        }
        let unknown = || PolicyError::UnknownExtractGroup {
            extract: extract.to_owned(),
            pattern: pattern.to_owned(),
        };
        if name.bytes().all(|b| b.is_ascii_digit()) {
            let index: usize = name.parse().map_err(|_| unknown())?;
            return if index < regex.captures_len() {
                Ok(index)
            } else {
                Err(unknown())
            };
        }
        regex
            .capture_names()
            .position(|n| n == Some(name))
            .ok_or_else(unknown)
    }

    /// Reusable capture slots for [`CompiledFilter::key`], one set per `choose` call.
    pub(super) fn scratch(&self) -> CaptureLocations {
        self.regex.capture_locations()
    }

    /// The sort key of `tag`: the extracted group, or the whole tag when nothing is extracted.
    /// `None` when the pattern does not match or the group did not take part / is empty.
    pub(super) fn key<'t>(&self, tag: &'t str, scratch: &mut CaptureLocations) -> Option<&'t str> {
        let Some(group) = self.group else {
            return self.regex.is_match(tag).then_some(tag);
        };
        self.regex.captures_read(scratch, tag)?;
        let (start, end) = scratch.get(group)?;
        (start < end).then(|| &tag[start..end])
    }
}
