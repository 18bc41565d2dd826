//! The smallest block collection around some edits that can be re-parsed on its own, so the
//! self-check of an edit in a 5,000-line single-document file re-parses a few lines instead of
//! the whole document.
//!
//! Why a block collection's lines parse the same on their own as in their document: what the
//! surrounding text contributes to the parser's state at the start of such a line is the stack
//! of enclosing block indentations (all less than the collection's column) and nothing else —
//! not in a flow collection (a block collection cannot be inside one), not in a scalar (the
//! collection's first token starts the line). The parser consults the enclosing indentations
//! only at a line indented less than the collection's column, and no line of the collection is.
//! The edits change no line break and no indentation (the caller checks that the new bytes hold
//! no line break), so this holds for the edited lines as much as for the original ones. What it
//! cannot see (an alias of an anchor outside, a tag handle of a `%TAG` directive) makes the
//! lines fail to parse on their own, and the caller then re-parses the whole document.

use std::ops::Range;

use saphyr_parser::Event;

use super::source::Parsed;

/// A block collection: its events (from its start event to its end event, inclusive) and the
/// whole lines holding them.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Enclosing {
    pub events: Range<usize>,
    pub bytes: Range<usize>,
}

/// The innermost block collection holding every event in `first..=last` whose first token is
/// the first thing on its line, without properties (`&anchor`, `!tag`), if any.
pub(crate) fn enclosing_block(parsed: &Parsed<'_>, first: usize, last: usize) -> Option<Enclosing> {
    // The ancestors of `first`, outermost first, then the end event of each.
    let mut stack: Vec<usize> = Vec::new();
    let mut ancestors: Vec<(usize, Option<usize>)> = Vec::new();
    for (i, located) in parsed.events.iter().enumerate() {
        if i == first {
            ancestors = stack.iter().map(|&s| (s, None)).collect();
        }
        match located.event {
            Event::MappingStart(..) | Event::SequenceStart(..) => stack.push(i),
            Event::MappingEnd | Event::SequenceEnd => {
                let start = stack.pop()?;
                if i > first
                    && let Some(a) = ancestors.iter_mut().find(|a| a.0 == start)
                {
                    a.1 = Some(i);
                }
                if stack.len() < ancestors.len() && ancestors.iter().all(|a| a.1.is_some()) {
                    break;
                }
            }
            Event::DocumentEnd if i > first => break,
            _ => {}
        }
    }
    let text = parsed.text;
    ancestors
        .iter()
        .rev()
        .filter_map(|&(start, end)| Some((start, end?)))
        .filter(|&(_, end)| end > last)
        .find_map(|(start, end)| {
            let at = parsed.events[start].start;
            let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let first_on_line = text[line_start..at].bytes().all(|b| b == b' ');
            let block = !text[at..].starts_with(['{', '[', '&', '!', '*']);
            if !(first_on_line && block) {
                return None;
            }
            // The end of the line of the last value inside (a collection's end event may sit on
            // a later line, at the token that closes it).
            let last_end = parsed.events[start + 1..end]
                .iter()
                .filter(|e| matches!(e.event, Event::Scalar(..) | Event::Alias(..)))
                .map(|e| e.end)
                .max()?;
            let from = last_end.saturating_sub(1).max(at);
            let line_end = text[from..].find('\n').map_or(text.len(), |i| from + i + 1);
            Some(Enclosing {
                events: start..end + 1,
                bytes: line_start..line_end,
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(parsed: &Parsed<'_>, value: &str) -> usize {
        parsed
            .events
            .iter()
            .position(|e| matches!(&e.event, Event::Scalar(v, ..) if v == value))
            .unwrap()
    }

    #[test]
    fn the_innermost_collection_starting_its_line() {
        let text = "items:\n- name: a\n  containers:\n    - name: web\n      image: x:1 # m\n    - {name: b, image: y}\n  other: 1\n";
        let parsed = Parsed::parse(text.as_bytes()).unwrap();
        let x = scalar(&parsed, "x:1");
        let found = enclosing_block(&parsed, x, x).unwrap();
        // `- name: a`'s mapping starts after `- `: the containers sequence is the one.
        assert_eq!(
            &text[found.bytes.clone()],
            "    - name: web\n      image: x:1 # m\n    - {name: b, image: y}\n"
        );
        assert!(matches!(
            parsed.events[found.events.start].event,
            Event::SequenceStart(..)
        ));
        assert!(matches!(
            parsed.events[found.events.end - 1].event,
            Event::SequenceEnd
        ));
        // Inside a flow mapping: the same block sequence around it.
        let y = scalar(&parsed, "y");
        assert_eq!(enclosing_block(&parsed, y, y).unwrap().bytes, found.bytes);
    }

    #[test]
    fn none_for_a_root_scalar_or_a_compact_collection() {
        let parsed = Parsed::parse(b"just a scalar\n").unwrap();
        assert_eq!(enclosing_block(&parsed, 2, 2), None);
        let text = "- a: 1\n  b: 2\n";
        let parsed = Parsed::parse(text.as_bytes()).unwrap();
        let one = scalar(&parsed, "1");
        // The mapping starts after `- `; the root sequence starts its line.
        assert_eq!(
            enclosing_block(&parsed, one, one).unwrap().bytes,
            0..text.len()
        );
    }
}
