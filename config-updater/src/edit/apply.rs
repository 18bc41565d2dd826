//! Planning the new bytes: validate every edit against the file as it is now, splice the encoded
//! values in, and let [`verify`](super::verify) check the result before anyone sees it.

use saphyr_parser::Event;

use super::scalar::{Context, encode, lex};
use super::source::{Parsed, documents_around, utf8};
use super::verify::verify;
use super::{ByteSpan, Edit, EditError};

/// One validated edit: which scalar event it replaces and the bytes to write.
#[derive(Debug)]
pub(crate) struct Planned {
    /// Index of the scalar's event in the original event stream.
    pub event: usize,
    pub span: ByteSpan,
    pub line: usize,
    pub new_value: String,
    pub bytes: String,
}

/// Apply `edits` to `file` and return the new bytes.
///
/// Each edit replaces exactly the bytes of one scalar value, written in that scalar's current
/// style; nothing else changes. The whole call fails, returning no bytes, if any edit is stale,
/// overlaps another, cannot be written in its scalar's style, or if the self-check finds the
/// result differs from the original in any way other than the edited values.
pub fn apply(file: &[u8], edits: &[Edit]) -> Result<Vec<u8>, EditError> {
    if edits.is_empty() {
        return Ok(file.to_vec());
    }
    let text = utf8(file)?;
    let first = edits.iter().map(|e| e.span.start).min().unwrap_or(0);
    let last = edits.iter().map(|e| e.span.end).max().unwrap_or(0);
    // Only the documents holding the edits matter: the others keep their bytes, so an edit in a
    // 5,000-line multi-document file costs the size of its documents.
    let region = documents_around(text, first, last);
    let parsed = match Parsed::parse_range(text, region.clone()) {
        Ok(parsed) => parsed,
        // Those documents do not parse on their own (a `---` line that YAML does not read as a
        // document boundary): parse the whole file, which reports the real error if any.
        Err(_) if region != (0..text.len()) => Parsed::parse(file)?,
        Err(e) => return Err(e),
    };
    apply_parsed(&parsed, edits)
}

/// [`apply`] on a file already parsed (by [`Document`](super::Document)), covering at least the
/// documents holding the edits.
pub(crate) fn apply_parsed(parsed: &Parsed<'_>, edits: &[Edit]) -> Result<Vec<u8>, EditError> {
    let file = parsed.text.as_bytes();
    if edits.is_empty() {
        return Ok(file.to_vec());
    }
    let scalars = ScalarIndex::build(parsed);
    let mut planned = edits
        .iter()
        .map(|edit| plan(parsed, &scalars, edit))
        .collect::<Result<Vec<_>, _>>()?;
    planned.sort_by_key(|p| p.span);
    // The same edit planned twice (a value reached from two references) is one edit.
    planned.dedup_by(|b, a| a.span == b.span && a.new_value == b.new_value);
    for pair in planned.windows(2) {
        if pair[0].span.end > pair[1].span.start || pair[0].span == pair[1].span {
            return Err(EditError::Overlap {
                line: pair[1].line,
                first: pair[0].span,
                second: pair[1].span,
            });
        }
    }
    let output = splice(file, &planned);
    verify(parsed, &output, &planned)?;
    Ok(output)
}

/// Copy the file, replacing the planned spans. Working front to back over sorted, disjoint spans
/// is the same as applying back to front: every span refers to the original bytes.
fn splice(file: &[u8], planned: &[Planned]) -> Vec<u8> {
    let grown: usize = planned.iter().map(|p| p.bytes.len()).sum();
    let mut out = Vec::with_capacity(file.len() + grown);
    let mut copied = 0;
    for p in planned {
        out.extend_from_slice(&file[copied..p.span.start]);
        out.extend_from_slice(p.bytes.as_bytes());
        copied = p.span.end;
    }
    out.extend_from_slice(&file[copied..]);
    out
}

/// The scalar events of a file by start offset, with whether each sits in a flow collection.
struct ScalarIndex {
    /// `(event start byte, event index, in flow context)`, in file order.
    entries: Vec<(usize, usize, bool)>,
}

impl ScalarIndex {
    fn build(parsed: &Parsed<'_>) -> Self {
        let mut flow_stack: Vec<bool> = Vec::new();
        let mut entries = Vec::new();
        for (i, located) in parsed.events.iter().enumerate() {
            match &located.event {
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    let opener = parsed.text[located.start..located.end].trim_end();
                    let flow = opener.ends_with(['{', '[']) || flow_stack.last() == Some(&true);
                    flow_stack.push(flow);
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    flow_stack.pop();
                }
                Event::Scalar(..) => {
                    entries.push((located.start, i, flow_stack.last() == Some(&true)));
                }
                _ => {}
            }
        }
        ScalarIndex { entries }
    }

    /// The last scalar starting at or before `byte`: the only one whose value can begin there.
    fn at_or_before(&self, byte: usize) -> Option<(usize, bool)> {
        let i = self.entries.partition_point(|e| e.0 <= byte);
        i.checked_sub(1)
            .map(|i| (self.entries[i].1, self.entries[i].2))
    }
}

fn plan(parsed: &Parsed<'_>, scalars: &ScalarIndex, edit: &Edit) -> Result<Planned, EditError> {
    let span = edit.span;
    let text = parsed.text;
    let position = span.start.min(text.len());
    let (line, column) = (parsed.line_of(position), parsed.column_of(position));
    let not_a_scalar = || EditError::NotAScalar { line, column, span };
    if span.start > span.end
        || span.end > text.len()
        || !text.is_char_boundary(span.start)
        || !text.is_char_boundary(span.end)
    {
        return Err(not_a_scalar());
    }
    let (event, in_flow) = scalars.at_or_before(span.start).ok_or_else(not_a_scalar)?;
    let located = &parsed.events[event];
    let Event::Scalar(value, style, _, tag) = &located.event else {
        return Err(not_a_scalar());
    };
    let lexed = lex(text, located.start, located.end, value, *style);
    let token = match lexed.token {
        Ok(token) if token.content == span => token,
        Err(reason) if lexed.end > span.start => {
            return Err(EditError::Unsupported { line, reason });
        }
        _ => return Err(not_a_scalar()),
    };
    if value.as_ref() != edit.expected {
        return Err(EditError::Stale {
            line,
            expected: edit.expected.clone(),
            found: value.to_string(),
        });
    }
    let context = Context {
        in_flow,
        tagged: tag.is_some(),
        old_value: value,
    };
    let bytes = encode(&edit.replacement, token.style, context).map_err(|reason| {
        EditError::NeedsQuoting {
            line,
            value: edit.replacement.clone(),
            style: token.style,
            reason,
        }
    })?;
    Ok(Planned {
        event,
        span,
        line,
        new_value: edit.replacement.clone(),
        bytes,
    })
}
