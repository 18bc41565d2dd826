//! The parsed file: saphyr's event stream with positions converted to byte offsets.
//!
//! saphyr's markers count *characters* (a BOM and each `\r` included), while edits need *bytes*;
//! a non-ASCII comment before a value (`# é`, `# 日本`) would shift every later offset. Events come
//! out in nearly increasing order, so a cursor that walks from the previous position converts all
//! of them in linear time without a per-character table.

use std::ops::Range;

use saphyr_parser::{Event, Parser, ScanError, Span, SpannedEventReceiver};

use super::EditError;

/// One parser event and where it is, in bytes.
#[derive(Debug)]
pub(crate) struct Located<'a> {
    pub event: Event<'a>,
    /// Byte offset where saphyr says the event starts. For nodes with properties (`&anchor`,
    /// `!tag`) this is the first property, not the value.
    pub start: usize,
    /// Byte offset where saphyr says the event ends. Not reliable for quoted scalars (saphyr
    /// sometimes extends them over a trailing comment); the scalar lexer finds the real end.
    pub end: usize,
}

/// A file, or a run of whole documents of it, that parsed: the text, the events and a line
/// index. Offsets and lines are always relative to the whole file.
pub(crate) struct Parsed<'a> {
    pub text: &'a str,
    /// The bytes that were parsed: the whole file, or a run of whole documents.
    pub range: Range<usize>,
    pub events: Vec<Located<'a>>,
    /// Byte offset of the start of each line of the whole file.
    line_starts: Vec<usize>,
}

/// The file as text; a file that is not UTF-8 is not YAML we can edit.
pub(crate) fn utf8(file: &[u8]) -> Result<&str, EditError> {
    std::str::from_utf8(file).map_err(|e| not_utf8(file, e.valid_up_to()))
}

impl<'a> Parsed<'a> {
    /// Parse a whole file. A stream that fails anywhere fails as a whole: we never edit a file
    /// that YAML tools would reject.
    pub fn parse(file: &'a [u8]) -> Result<Self, EditError> {
        let text = utf8(file)?;
        Self::parse_range(text, 0..text.len())
    }

    /// Parse `text[range]` as a stream of its own. `range` must start and end at document
    /// boundaries (see [`document_cuts`]) for the events to be those of the whole file.
    pub fn parse_range(text: &'a str, range: Range<usize>) -> Result<Self, EditError> {
        let line_starts = line_starts(text);
        let mut collector = Collector {
            cursor: CharCursor::new(&text[range.clone()]),
            base: range.start,
            events: Vec::with_capacity(range.len() / 8),
        };
        // `load` (unlike iterating events) forgets anchors between documents, as YAML requires
        // and as saphyr's own loader does.
        let mut parser = Parser::new_from_str(&text[range.clone()]);
        if let Err(e) = parser.load(&mut collector, true) {
            let first_line = line_starts.partition_point(|&s| s <= range.start);
            return Err(parse_error(&e, first_line - 1));
        }
        Ok(Parsed {
            text,
            range,
            events: collector.events,
            line_starts,
        })
    }

    /// Indexes of the events of the documents that start in `range` (from the first one's
    /// `DocumentStart` to the last one's `DocumentEnd`), to compare runs of documents parsed
    /// as part of different streams.
    pub fn documents_in(&self, range: &Range<usize>) -> Range<usize> {
        let starts = self
            .events
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e.event, Event::DocumentStart(_)));
        let mut first = None;
        let mut end = None;
        for (i, e) in starts {
            if e.start >= range.end {
                end = Some(i);
                break;
            }
            if e.start >= range.start && first.is_none() {
                first = Some(i);
            }
        }
        // Without any document in range, the run is empty (just before stream end).
        let stream_end = self.events.len().saturating_sub(1);
        let end = end.unwrap_or(stream_end);
        first.unwrap_or(end).min(end)..end
    }

    /// 1-based line of a byte offset.
    pub fn line_of(&self, byte: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= byte)
    }

    /// 1-based column (in characters) of a byte offset.
    pub fn column_of(&self, byte: usize) -> usize {
        let line_start = self.line_starts[self.line_of(byte) - 1];
        let byte = byte.min(self.text.len());
        self.text
            .get(line_start..byte)
            .map_or(1, |s| s.chars().count() + 1)
    }

    /// The text of the line holding `byte`, from `byte` to the end of the line (without the line
    /// break, `\r` included).
    pub fn rest_of_line(&self, byte: usize) -> &'a str {
        let rest = &self.text[byte..];
        let end = rest.find('\n').unwrap_or(rest.len());
        rest[..end].strip_suffix('\r').unwrap_or(&rest[..end])
    }
}

/// Collects events, converting saphyr's character positions to byte offsets in the file.
struct Collector<'a> {
    cursor: CharCursor<'a>,
    base: usize,
    events: Vec<Located<'a>>,
}

impl<'a> SpannedEventReceiver<'a> for Collector<'a> {
    fn on_event(&mut self, event: Event<'a>, span: Span) {
        let start = self.base + self.cursor.byte_at(span.start.index());
        let end = self.base + self.cursor.byte_at(span.end.index());
        self.events.push(Located { event, start, end });
    }
}

/// The smallest run of whole documents holding the bytes `first..last`.
pub(crate) fn documents_around(text: &str, first: usize, last: usize) -> Range<usize> {
    let cuts = document_cuts(text);
    let (first, last) = (first.min(text.len()), last.min(text.len()));
    let start = cuts[cuts.partition_point(|&c| c <= first).saturating_sub(1)];
    let end = cuts
        .get(cuts.partition_point(|&c| c < last))
        .copied()
        .unwrap_or(text.len());
    start..end.max(start)
}

/// Byte offsets where documents may be parsed on their own: the start of each line that begins
/// with `---`, and of the line after one that begins with `...`, plus both ends of the file.
///
/// A document marker at column 0 ends whatever came before (block and plain scalars stop there;
/// quoted scalars and flow collections may not contain one), so these are real boundaries in a
/// valid file, and parsing one document needs nothing from the others: anchors and `%TAG`s do
/// not cross documents. A file with directives (`%YAML`, `%TAG`) is never cut: they belong to
/// the document after them.
pub(crate) fn document_cuts(text: &str) -> Vec<usize> {
    let mut cuts = vec![0];
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let marker = |m: &str| {
            line.strip_prefix(m)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
        };
        if line.starts_with('%') {
            return vec![0, text.len()];
        }
        if marker("---") && line_start > 0 {
            cuts.push(line_start);
        }
        line_start += line.len();
        if marker("...") && line_start < text.len() {
            cuts.push(line_start);
        }
    }
    cuts.push(text.len());
    cuts.dedup();
    cuts
}

fn line_starts(text: &str) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(
        text.bytes()
            .enumerate()
            .filter(|&(_, b)| b == b'\n')
            .map(|(i, _)| i + 1),
    );
    starts
}

/// `lines_before`: lines of the file before the parsed range.
fn parse_error(e: &ScanError, lines_before: usize) -> EditError {
    EditError::Parse {
        line: e.marker().line() + lines_before,
        column: e.marker().col() + 1,
        message: e.info().to_string(),
    }
}

fn not_utf8(file: &[u8], valid_up_to: usize) -> EditError {
    let before = &file[..valid_up_to];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    // `before` is valid UTF-8 by definition, so the column can count characters.
    let column = std::str::from_utf8(&before[line_start..]).map_or(1, |s| s.chars().count() + 1);
    EditError::Parse {
        line,
        column,
        message: "the file is not valid UTF-8".to_string(),
    }
}

/// Converts character indexes to byte offsets by walking from the last answer.
struct CharCursor<'a> {
    text: &'a str,
    ascii: bool,
    char_index: usize,
    byte: usize,
}

impl<'a> CharCursor<'a> {
    fn new(text: &'a str) -> Self {
        CharCursor {
            text,
            ascii: text.is_ascii(),
            char_index: 0,
            byte: 0,
        }
    }

    fn byte_at(&mut self, char_index: usize) -> usize {
        if self.ascii {
            return char_index.min(self.text.len());
        }
        while self.char_index < char_index {
            match self.text[self.byte..].chars().next() {
                Some(c) => {
                    self.byte += c.len_utf8();
                    self.char_index += 1;
                }
                None => return self.byte,
            }
        }
        while self.char_index > char_index {
            match self.text[..self.byte].chars().next_back() {
                Some(c) => {
                    self.byte -= c.len_utf8();
                    self.char_index -= 1;
                }
                None => break,
            }
        }
        self.byte
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_cut_at_markers_in_column_zero() {
        let text = "a: 1\n---\nb: 2\n--- # c\nc: |\n  ---\n...\nd: 4\n---";
        let at = |s: &str| text.find(s).unwrap();
        assert_eq!(
            document_cuts(text),
            [
                0,
                at("---\nb"),
                at("--- # c"),
                at("d: 4"),
                text.len() - 3,
                text.len()
            ]
        );
        assert_eq!(document_cuts("---\na: 1\n"), [0, 9]);
        assert_eq!(document_cuts("%YAML 1.2\n---\na\n---\nb\n"), [0, 22]);
        assert_eq!(document_cuts("a: ---\n----\n"), [0, 12]);
    }

    #[test]
    fn a_range_reports_errors_at_file_lines() {
        let text = "a: 1\n---\nb: [\n";
        let err = Parsed::parse_range(text, 5..text.len())
            .err()
            .expect("error");
        assert!(matches!(err, EditError::Parse { line: 4, .. }), "{err:?}");
    }

    #[test]
    fn character_positions_become_byte_offsets() {
        let text = "\u{feff}# é 日本\nk: v # ü\n";
        let parsed = Parsed::parse(text.as_bytes()).unwrap();
        let v = parsed
            .events
            .iter()
            .find(|e| matches!(&e.event, Event::Scalar(s, ..) if s == "v"))
            .unwrap();
        assert_eq!(&text[v.start..v.end], "v");
        assert_eq!((parsed.line_of(v.start), parsed.column_of(v.start)), (2, 4));
    }
}
