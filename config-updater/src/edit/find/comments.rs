//! Marker comments: the one directly after a value, and the ones no value claimed.

use super::Finder;
use crate::edit::markers::{MARKER_KEY, SetterMarker, parse_marker};
use crate::edit::scalar::trailing_comment;
use crate::edit::{Reference, SkipReason};

impl Finder<'_, '_> {
    /// The marker comment directly after a token ending at `end`, claimed so the final scan does
    /// not report it as unattached.
    pub(super) fn marker_after(&mut self, end: usize) -> Option<Result<SetterMarker, String>> {
        let (offset, comment) = trailing_comment(self.parsed.rest_of_line(end))?;
        let marker = parse_marker(comment)?;
        self.claimed_comments.insert(end + offset);
        Some(marker)
    }

    /// Report marker comments that no value claimed: after a key whose value is on the next line,
    /// after a flow collection, on a block scalar's header...
    pub(super) fn report_unattached_markers(&mut self) {
        let text = self.parsed.text;
        let mut last_line_start = None;
        for (at, _) in text.match_indices(MARKER_KEY) {
            let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            if last_line_start == Some(line_start) {
                continue;
            }
            last_line_start = Some(line_start);
            let Some(comment) = self.comment_start(line_start, at) else {
                continue;
            };
            if self.claimed_comments.contains(&comment) {
                continue;
            }
            let Some(marker) = parse_marker(&self.parsed.rest_of_line(comment)[1..]) else {
                continue;
            };
            let next_block = {
                let i = self.scalar_ranges.partition_point(|r| r.0 < comment);
                self.scalar_ranges.get(i).filter(|r| r.2).map(|r| r.0)
            };
            let next_is_block = next_block.is_some();
            let already_reported = next_block.and_then(|start| self.skipped_blocks.get(&start));
            if let (Some(&index), Ok(m)) = (already_reported, &marker)
                && let Reference::Skipped(skipped) = &mut self.refs[index]
            {
                skipped.marker = Some(m.clone());
                continue;
            }
            let reference = match marker {
                Err(detail) => {
                    self.skipped(comment, None, None, SkipReason::MalformedMarker { detail })
                }
                Ok(m) if next_is_block => {
                    self.skipped(comment, None, Some(m), SkipReason::BlockScalar)
                }
                Ok(m) => self.skipped(comment, None, Some(m), SkipReason::MarkerNotAttached),
            };
            self.refs.push(reference);
        }
    }

    /// The byte offset of the comment on the line starting at `line_start`, if it starts before
    /// `before`: the first `#` after a blank (or at the line start) that is not inside a scalar.
    fn comment_start(&self, line_start: usize, before: usize) -> Option<usize> {
        let bytes = self.parsed.text.as_bytes();
        (line_start..before).find(|&i| {
            bytes[i] == b'#'
                && (i == line_start || matches!(bytes[i - 1], b' ' | b'\t'))
                && !self.inside_scalar(i)
        })
    }

    fn inside_scalar(&self, byte: usize) -> bool {
        let i = self.scalar_ranges.partition_point(|r| r.0 <= byte);
        i > 0 && byte < self.scalar_ranges[i - 1].1
    }
}
