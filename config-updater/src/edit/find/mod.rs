//! Finding the places an image can be updated: one pass over the parse events, then one scan
//! for marker comments that no value claimed.

mod comments;
mod kustomize;

use std::collections::{HashMap, HashSet};

use saphyr_parser::{Event, ScalarStyle, Tag};

use super::scalar::{lex, plain_is_string};
use super::source::{Located, Parsed};
use super::{EditError, Reference, ScalarValue, SetterMarker, SkipReason, Skipped};
use kustomize::DocumentState;

/// Every place in `file` where an image can be updated, in file order, with the places that
/// look like one but cannot be edited in place as [`Reference::Skipped`].
///
/// A file that is not valid YAML is an [`EditError::Parse`]: the caller skips it and reports it;
/// other files are unaffected.
pub fn find(file: &[u8]) -> Result<Vec<Reference>, EditError> {
    Ok(references(&Parsed::parse(file)?))
}

/// [`find`] on a parsed file.
pub(crate) fn references(parsed: &Parsed<'_>) -> Vec<Reference> {
    let mut finder = Finder::new(parsed);
    for located in &parsed.events {
        finder.on_event(located);
    }
    finder.finish()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Key,
    Value,
    Item,
    Root,
}

struct Frame {
    is_map: bool,
    /// Maps: the current key, when it is a scalar.
    key: Option<String>,
    expecting_key: bool,
    /// Sequences: the index of the current item.
    index: usize,
}

enum Anchored {
    Scalar {
        line: usize,
        value: Result<ScalarValue, (String, SkipReason)>,
    },
    Collection {
        line: usize,
    },
}

struct Finder<'p, 'a> {
    parsed: &'p Parsed<'a>,
    stack: Vec<Frame>,
    document: usize,
    documents_seen: usize,
    doc: DocumentState,
    /// What each anchor id names, and where.
    anchors: HashMap<usize, Anchored>,
    /// The lines of the aliases of each anchor id.
    alias_lines: HashMap<usize, Vec<usize>>,
    /// Anchor id of an anchored value, by the start of its span.
    anchor_of_value: HashMap<usize, usize>,
    /// `(start, end, is a block scalar)` of every scalar token, in file order: a `#` inside
    /// one is not a comment.
    scalar_ranges: Vec<(usize, usize, bool)>,
    /// Marker comments already attached to a value, by the offset of their `#`.
    claimed_comments: HashSet<usize>,
    /// Skipped block scalars by event start, so a marker on their header joins their report.
    skipped_blocks: HashMap<usize, usize>,
    refs: Vec<Reference>,
}

impl<'p, 'a> Finder<'p, 'a> {
    fn new(parsed: &'p Parsed<'a>) -> Self {
        Finder {
            parsed,
            stack: Vec::new(),
            document: 0,
            documents_seen: 0,
            doc: DocumentState::default(),
            anchors: HashMap::new(),
            alias_lines: HashMap::new(),
            anchor_of_value: HashMap::new(),
            scalar_ranges: Vec::new(),
            claimed_comments: HashSet::new(),
            skipped_blocks: HashMap::new(),
            refs: Vec::new(),
        }
    }

    fn on_event(&mut self, located: &Located<'a>) {
        match &located.event {
            Event::DocumentStart(_) => {
                self.document = self.documents_seen;
                self.documents_seen += 1;
                self.doc = DocumentState::default();
            }
            Event::DocumentEnd => self.end_document(),
            Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                if self.role() == Role::Key {
                    self.set_key(None);
                }
                if *anchor != 0 {
                    let line = self.parsed.line_of(located.start);
                    self.anchors.insert(*anchor, Anchored::Collection { line });
                }
                self.stack.push(Frame {
                    is_map: matches!(located.event, Event::MappingStart(..)),
                    key: None,
                    expecting_key: true,
                    index: 0,
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.end_node();
            }
            Event::Scalar(value, style, anchor, tag) => {
                self.on_scalar(located, value, *style, *anchor, tag.as_deref());
                self.end_node();
            }
            Event::Alias(anchor) => {
                self.on_alias(located, *anchor);
                self.end_node();
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
    }

    fn role(&self) -> Role {
        match self.stack.last() {
            Some(Frame {
                is_map: true,
                expecting_key: true,
                ..
            }) => Role::Key,
            Some(Frame { is_map: true, .. }) => Role::Value,
            Some(_) => Role::Item,
            None => Role::Root,
        }
    }

    fn set_key(&mut self, key: Option<String>) {
        if let Some(top) = self.stack.last_mut() {
            top.key = key;
        }
    }

    fn end_node(&mut self) {
        if let Some(top) = self.stack.last_mut() {
            if top.is_map {
                top.expecting_key = !top.expecting_key;
            } else {
                top.index += 1;
            }
        }
    }

    fn current_key(&self) -> Option<&str> {
        match self.stack.last() {
            Some(Frame {
                is_map: true,
                expecting_key: false,
                key,
                ..
            }) => key.as_deref(),
            _ => None,
        }
    }

    /// `spec.template.spec.containers[0].image`, for messages.
    fn path(&self) -> String {
        let mut path = String::new();
        for frame in &self.stack {
            if frame.is_map {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(frame.key.as_deref().unwrap_or("?"));
            } else {
                path.push_str(&format!("[{}]", frame.index));
            }
        }
        path
    }

    fn scalar_value(
        &self,
        value: &str,
        span: super::ByteSpan,
        style: super::QuoteStyle,
    ) -> ScalarValue {
        ScalarValue {
            value: value.to_string(),
            span,
            style,
            line: self.parsed.line_of(span.start),
            column: self.parsed.column_of(span.start),
            document: self.document,
            path: self.path(),
            aliased_at: Vec::new(),
        }
    }

    fn skipped(
        &self,
        at: usize,
        value: Option<&str>,
        marker: Option<SetterMarker>,
        reason: SkipReason,
    ) -> Reference {
        Reference::Skipped(Skipped {
            line: self.parsed.line_of(at),
            column: self.parsed.column_of(at),
            document: self.document,
            marker,
            value: value.map(str::to_string),
            reason,
        })
    }

    fn on_scalar(
        &mut self,
        located: &Located<'a>,
        value: &str,
        style: ScalarStyle,
        anchor: usize,
        tag: Option<&Tag>,
    ) {
        let lexed = lex(self.parsed.text, located.start, located.end, value, style);
        let block = matches!(style, ScalarStyle::Literal | ScalarStyle::Folded);
        self.scalar_ranges.push((located.start, lexed.end, block));
        let role = self.role();
        // Block scalars end on a later line: their marker, if any, sits on the header line and
        // the final scan reports it.
        let marker = if role == Role::Key || block {
            None
        } else {
            self.marker_after(lexed.end)
        };
        let kustomize = match role {
            Role::Key => None,
            _ => self.kustomize_field().map(|(i, f)| (i, f.to_string())),
        };
        let is_image = role == Role::Value && self.current_key() == Some("image");
        // Most scalars are none of these; describing them all would double the cost of `find`.
        let scalar = if anchor != 0 || marker.is_some() || kustomize.is_some() || is_image {
            lexed
                .token
                .clone()
                .map(|t| self.scalar_value(value, t.content, t.style))
                .map_err(|reason| (value.to_string(), reason))
        } else {
            Err((String::new(), SkipReason::EmptyValue))
        };
        if anchor != 0 {
            if let Ok(s) = &scalar {
                self.anchor_of_value.insert(s.span.start, anchor);
            }
            let line = self.parsed.line_of(located.start);
            self.anchors.insert(
                anchor,
                Anchored::Scalar {
                    line,
                    value: scalar.clone(),
                },
            );
        }
        if role == Role::Key {
            self.set_key(Some(value.to_string()));
            return;
        }
        if let Some(marker) = marker {
            if let Some((index, _)) = &kustomize {
                self.doc.kustomize.entry(*index).or_default().excluded = true;
            }
            let at = lexed
                .token
                .as_ref()
                .map_or(located.start, |t| t.content.start);
            let reference = match (marker, scalar) {
                (Ok(marker), Ok(scalar)) => Reference::Marked { marker, scalar },
                (Ok(marker), Err((value, reason))) => {
                    self.skipped(at, Some(&value), Some(marker), reason)
                }
                (Err(detail), _) => self.skipped(
                    at,
                    Some(value),
                    None,
                    SkipReason::MalformedMarker { detail },
                ),
            };
            self.refs.push(reference);
            return;
        }
        if let Some((index, field)) = kustomize {
            self.record_kustomize_field(index, &field, scalar, located.start);
            return;
        }
        if self.stack.len() == 1 && self.current_key() == Some("kind") {
            self.doc.kind = Some(value.to_string());
        }
        if is_image {
            let is_string = match (tag, style) {
                (Some(tag), _) => tag.suffix == "str",
                (None, ScalarStyle::Plain) => plain_is_string(value),
                (None, _) => true,
            };
            match scalar {
                Ok(scalar) if is_string => self.refs.push(Reference::Image(scalar)),
                Ok(_) | Err((_, SkipReason::EmptyValue)) => {}
                Err((value, reason)) => {
                    if block {
                        self.skipped_blocks.insert(located.start, self.refs.len());
                    }
                    let reference = self.skipped(located.start, Some(&value), None, reason);
                    self.refs.push(reference);
                }
            }
        }
    }

    fn on_alias(&mut self, located: &Located<'a>, anchor: usize) {
        let line = self.parsed.line_of(located.start);
        self.alias_lines.entry(anchor).or_default().push(line);
        let role = self.role();
        if role == Role::Key {
            self.set_key(None);
            return;
        }
        let text = self.parsed.text;
        let name_len = text[located.start + 1..]
            .find(|c: char| c.is_whitespace() || ",[]{}".contains(c))
            .unwrap_or(text.len() - located.start - 1);
        let anchored = self.anchors.get(&anchor);
        let anchor_line = match anchored {
            Some(Anchored::Scalar { line, .. } | Anchored::Collection { line }) => *line,
            None => 0,
        };
        let target = match anchored {
            Some(Anchored::Scalar { value, .. }) => Some(value.clone()),
            _ => None,
        };
        if let Some(marker) = self.marker_after(located.start + 1 + name_len) {
            let reference = self.skipped(
                located.start,
                None,
                marker.ok(),
                SkipReason::MarkerOnAlias { anchor_line },
            );
            self.refs.push(reference);
            return;
        }
        let Some(target) = target else { return };
        if let Some((index, field)) = self.kustomize_field().map(|(i, f)| (i, f.to_string())) {
            self.record_kustomize_field(index, &field, target, located.start);
        } else if role == Role::Value
            && self.current_key() == Some("image")
            && let Ok(scalar) = target
            && (scalar.style != super::QuoteStyle::Plain || plain_is_string(&scalar.value))
        {
            self.refs.push(Reference::Image(scalar));
        }
    }

    fn finish(mut self) -> Vec<Reference> {
        self.report_unattached_markers();
        let alias_lines = std::mem::take(&mut self.alias_lines);
        let anchor_of_value = std::mem::take(&mut self.anchor_of_value);
        let fill = |scalar: &mut ScalarValue| {
            if let Some(lines) = anchor_of_value
                .get(&scalar.span.start)
                .and_then(|a| alias_lines.get(a))
            {
                scalar.aliased_at.clone_from(lines);
            }
        };
        let mut marked_spans = HashSet::new();
        for reference in &mut self.refs {
            match reference {
                Reference::Marked { scalar, .. } => {
                    fill(scalar);
                    marked_spans.insert(scalar.span);
                }
                Reference::Image(scalar) => fill(scalar),
                Reference::KustomizeImage(k) => {
                    for scalar in [
                        Some(&mut k.name),
                        k.new_name.as_mut(),
                        k.new_tag.as_mut(),
                        k.digest.as_mut(),
                    ]
                    .into_iter()
                    .flatten()
                    {
                        fill(scalar);
                    }
                }
                Reference::Skipped(_) => {}
            }
        }
        // An anchored image reached through several aliases is one value: offer it once, and not
        // at all when a marker already governs it.
        let mut seen_images = HashSet::new();
        self.refs.retain(|r| match r {
            Reference::Image(s) => !marked_spans.contains(&s.span) && seen_images.insert(s.span),
            _ => true,
        });
        let position = |r: &Reference| match r {
            Reference::Marked { scalar, .. } | Reference::Image(scalar) => {
                (scalar.line, scalar.column)
            }
            Reference::KustomizeImage(k) => (k.name.line, k.name.column),
            Reference::Skipped(s) => (s.line, s.column),
        };
        self.refs.sort_by_key(position);
        self.refs
    }
}
