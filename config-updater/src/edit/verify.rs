//! The self-check: the edited file must be the original file with exactly the planned values
//! changed, both as bytes and as YAML.
//!
//! The byte check proves nothing outside the edited spans moved. The YAML check re-parses the
//! output and walks both event streams side by side: an event stream determines the documents
//! (structure, keys, values, styles, anchors, tags), so identical streams except for the edited
//! scalars mean identical documents except for those values. This catches what the encoder might
//! get wrong, such as a plain value that ends a mapping or starts a comment.

use std::ops::Range;

use saphyr_parser::Event;

use super::EditError;
use super::apply::Planned;
use super::enclosing::enclosing_block;
use super::source::{Parsed, documents_around, utf8};

/// Check `output` against `original`, which covers at least the documents holding every
/// planned edit. Only those documents are re-parsed: the others are proven unchanged by the
/// byte check alone, because documents parse independently (anchors and `%TAG`s do not cross
/// them), so identical bytes are identical documents.
pub(crate) fn verify(
    original: &Parsed<'_>,
    output: &[u8],
    planned: &[Planned],
) -> Result<(), EditError> {
    verify_bytes(original.text.as_bytes(), output, planned)?;
    if verify_enclosing(original, output, planned) {
        return Ok(());
    }
    let first_line = planned.first().map_or(1, |p| p.line);
    let unparsable = |e: EditError| EditError::Verification {
        line: first_line,
        detail: format!("the edited file no longer parses ({e})"),
    };
    let grown: usize = planned.iter().map(|p| p.bytes.len()).sum();
    let shrunk: usize = planned.iter().map(|p| p.span.len()).sum();
    // Every edit lies inside the range, so only its end moves.
    let shifted = |r: &Range<usize>| r.start..r.end + grown - shrunk;
    let output_text = utf8(output).map_err(unparsable)?;
    let first = planned.first().map_or(0, |p| p.span.start);
    let last = planned.last().map_or(0, |p| p.span.end);
    let mut region = documents_around(original.text, first, last);
    let edited = match Parsed::parse_range(output_text, shifted(&region)) {
        Ok(edited) => edited,
        Err(_) if region != original.range => {
            region = original.range.clone();
            Parsed::parse_range(output_text, shifted(&region)).map_err(unparsable)?
        }
        Err(e) => return Err(unparsable(e)),
    };
    let before = original.documents_in(&region);
    let after = edited.documents_in(&shifted(&region));
    verify_documents(original, before, &edited, after, planned)
}

/// The quick check: the edited lines of the innermost block collection around the edits,
/// re-parsed on their own, are that collection's events except for the edited values (see
/// [`enclosing`](super::enclosing) for why its lines parse the same on their own). `false` when
/// there is no such collection, an edit writes a line break, or anything differs: the caller
/// then re-parses the whole documents, which says what is wrong.
fn verify_enclosing(original: &Parsed<'_>, output: &[u8], planned: &[Planned]) -> bool {
    let writes_a_line_break = planned.iter().any(|p| p.bytes.contains(['\n', '\r']));
    let (Some(first), Some(last)) = (
        planned.iter().map(|p| p.event).min(),
        planned.iter().map(|p| p.event).max(),
    ) else {
        return false;
    };
    if writes_a_line_break {
        return false;
    }
    let Some(node) = enclosing_block(original, first, last) else {
        return false;
    };
    let grown: usize = planned.iter().map(|p| p.bytes.len()).sum();
    let shrunk: usize = planned.iter().map(|p| p.span.len()).sum();
    let Ok(output_text) = utf8(output) else {
        return false;
    };
    let lines = node.bytes.start..node.bytes.end + grown - shrunk;
    let Ok(edited) = Parsed::parse_range(output_text, lines) else {
        return false;
    };
    // Stream start, document start, the collection, document end, stream end.
    let after = 2..edited.events.len().saturating_sub(2);
    verify_documents(original, node.events, &edited, after, planned).is_ok()
}

/// Every byte outside the planned spans is where it was.
fn verify_bytes(original: &[u8], output: &[u8], planned: &[Planned]) -> Result<(), EditError> {
    let mut from = 0;
    let mut to = 0;
    for p in planned {
        let kept = &original[from..p.span.start];
        if output.get(to..to + kept.len()) != Some(kept) {
            return Err(EditError::Verification {
                line: p.line,
                detail: "bytes before the edited value changed".to_string(),
            });
        }
        to += kept.len();
        if output.get(to..to + p.bytes.len()) != Some(p.bytes.as_bytes()) {
            return Err(EditError::Verification {
                line: p.line,
                detail: "the edited value was not written as planned".to_string(),
            });
        }
        to += p.bytes.len();
        from = p.span.end;
    }
    if output.get(to..) != Some(&original[from..]) {
        return Err(EditError::Verification {
            line: planned.last().map_or(1, |p| p.line),
            detail: "bytes after the last edited value changed".to_string(),
        });
    }
    Ok(())
}

/// The documents are identical except for the edited scalars, which now hold the new values.
/// `before` and `after` are the compared runs of events. They may come from streams that
/// started at different documents, so anchor ids (numbered across a stream) are compared
/// relative to the first one of each run.
fn verify_documents(
    original: &Parsed<'_>,
    before: Range<usize>,
    edited: &Parsed<'_>,
    after: Range<usize>,
    planned: &[Planned],
) -> Result<(), EditError> {
    let first_line = planned.first().map_or(1, |p| p.line);
    if planned.iter().any(|p| !before.contains(&p.event)) {
        return Err(EditError::Verification {
            line: first_line,
            detail: "an edited value lies outside the re-parsed documents".to_string(),
        });
    }
    if before.len() != after.len() {
        return Err(EditError::Verification {
            line: first_line,
            detail: format!(
                "the document structure changed ({} parse events became {})",
                before.len(),
                after.len()
            ),
        });
    }
    let before_base = anchor_base(&original.events[before.clone()]);
    let after_base = anchor_base(&edited.events[after.clone()]);
    let same_anchor = |a: usize, b: usize| match (a, b) {
        (0, 0) => true,
        (0, _) | (_, 0) => false,
        (a, b) => a.wrapping_sub(before_base) == b.wrapping_sub(after_base),
    };
    let mut planned_by_event: Vec<&Planned> = planned.iter().collect();
    planned_by_event.sort_by_key(|p| p.event);
    let mut next_edit = planned_by_event.into_iter().peekable();
    for (i, j) in before.zip(after) {
        let (b, a) = (&original.events[i], &edited.events[j]);
        let line = original.line_of(b.start);
        let edit = next_edit.next_if(|p| p.event == i);
        let same = match (&b.event, &a.event, edit) {
            (
                Event::Scalar(_, style, anchor, tag),
                Event::Scalar(value, style2, anchor2, tag2),
                Some(edit),
            ) => {
                if value.as_ref() != edit.new_value {
                    return Err(EditError::Verification {
                        line,
                        detail: format!(
                            "the edited value reads back as {value:?}, not {:?}",
                            edit.new_value
                        ),
                    });
                }
                style == style2 && same_anchor(*anchor, *anchor2) && tag == tag2
            }
            (_, _, Some(_)) => false,
            (
                Event::Scalar(v, style, anchor, tag),
                Event::Scalar(v2, style2, anchor2, tag2),
                None,
            ) => v == v2 && style == style2 && same_anchor(*anchor, *anchor2) && tag == tag2,
            (Event::MappingStart(anchor, tag), Event::MappingStart(anchor2, tag2), None)
            | (Event::SequenceStart(anchor, tag), Event::SequenceStart(anchor2, tag2), None) => {
                same_anchor(*anchor, *anchor2) && tag == tag2
            }
            (Event::Alias(anchor), Event::Alias(anchor2), None) => same_anchor(*anchor, *anchor2),
            (b, a, None) => b == a,
        };
        if !same {
            return Err(EditError::Verification {
                line,
                detail: format!(
                    "the document changed beyond the edited values: {:?} became {:?}",
                    b.event, a.event
                ),
            });
        }
    }
    Ok(())
}

/// One less than the smallest anchor id defined in a run of events (ids are assigned in order).
fn anchor_base(events: &[super::source::Located<'_>]) -> usize {
    events
        .iter()
        .filter_map(|e| match e.event {
            Event::Scalar(_, _, anchor, _)
            | Event::MappingStart(anchor, _)
            | Event::SequenceStart(anchor, _) => (anchor != 0).then_some(anchor),
            _ => None,
        })
        .min()
        .map_or(0, |a| a - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edit::ByteSpan;

    /// A plan replacing `x` in `a: x` (event 4: stream, document, mapping, `a`, `x`) with
    /// `bytes`, as if the encoder had let them through.
    fn check(output: &str, new_value: &str, bytes: &str) -> Result<(), EditError> {
        let input = "a: x\nb: y\n";
        let parsed = Parsed::parse(input.as_bytes()).expect("parses");
        let planned = [Planned {
            event: 4,
            span: ByteSpan::new(3, 4),
            line: 1,
            new_value: new_value.to_string(),
            bytes: bytes.to_string(),
        }];
        verify(&parsed, output.as_bytes(), &planned)
    }

    fn failed(result: Result<(), EditError>, needle: &str) {
        match result {
            Err(EditError::Verification { line: 1, detail }) => {
                assert!(detail.contains(needle), "{detail}")
            }
            other => panic!("expected a verification failure, got {other:?}"),
        }
    }

    #[test]
    fn a_faithful_edit_passes() {
        assert_eq!(check("a: z\nb: y\n", "z", "z"), Ok(()));
    }

    #[test]
    fn bytes_outside_the_edited_value_must_not_change() {
        failed(
            check("a: z\nb: w\n", "z", "z"),
            "after the last edited value",
        );
        failed(check("A: z\nb: y\n", "z", "z"), "before the edited value");
        failed(check("a: q\nb: y\n", "z", "z"), "not written as planned");
    }

    #[test]
    fn a_value_that_breaks_the_yaml_is_caught() {
        failed(check("a: z: q\nb: y\n", "z: q", "z: q"), "no longer parses");
    }

    #[test]
    fn a_value_that_reads_back_differently_is_caught() {
        failed(
            check("a: z #c\nb: y\n", "z #c", "z #c"),
            "reads back as \"z\"",
        );
    }

    /// Replaces `x` in a value nested three collections deep with `bytes`.
    fn nested(bytes: &str) -> (String, Result<(), EditError>, bool) {
        let input = "# top\nitems:\n- name: a\n  containers:\n    - name: web\n      image: x # m\n      args: [a, b]\n    - {name: side}\n  after: 1\n";
        let parsed = Parsed::parse(input.as_bytes()).expect("parses");
        let at = input.find("x # m").unwrap();
        let event = parsed
            .events
            .iter()
            .position(|e| e.start == at)
            .expect("the scalar x");
        let planned = [Planned {
            event,
            span: ByteSpan::new(at, at + 1),
            line: 6,
            new_value: bytes.to_string(),
            bytes: bytes.to_string(),
        }];
        let output = input.replacen("x # m", &format!("{bytes} # m"), 1);
        let quick = verify_enclosing(&parsed, output.as_bytes(), &planned);
        let full = verify(&parsed, output.as_bytes(), &planned);
        (output, full, quick)
    }

    #[test]
    fn a_nested_edit_is_checked_on_the_lines_of_its_collection() {
        let (_, full, quick) = nested("x2");
        assert!(quick, "the containers sequence re-parsed on its own");
        assert_eq!(full, Ok(()));
    }

    #[test]
    fn a_nested_edit_that_breaks_the_yaml_falls_back_to_the_whole_document() {
        for (bytes, needle) in [
            ("x: q", "no longer parses"),
            ("[z]", "structure changed"),
            ("*alias", "no longer parses"),
        ] {
            let (output, full, quick) = nested(bytes);
            assert!(!quick, "{output}");
            match full {
                Err(EditError::Verification { detail, .. }) => {
                    assert!(detail.contains(needle), "{bytes}: {detail}")
                }
                other => panic!("{bytes}: expected a verification failure, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_value_that_changes_the_structure_is_caught() {
        failed(check("a: [z]\nb: y\n", "[z]", "[z]"), "structure changed");
    }
}
