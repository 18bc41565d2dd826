//! Bytes to manifests: the parsing rules of a manifest file, free of I/O so they are tested on
//! bytes. The directory walker and the Kustomize runner both end here.
//!
//! A file is first split into YAML documents on its `---` / `...` marker lines, and each document
//! is then parsed on its own. Splitting by lines is exact, not a heuristic: YAML forbids a marker
//! at column 0 inside any node (block scalars included), so every parser ends a document there.
//! Parsing documents one by one keeps the true document index (empty documents still count),
//! gives every document its own line offset, and lets one broken document be reported together
//! with the problems of its neighbours instead of hiding them.

use serde_json::Value;
use serde_saphyr::{MessageFormatter, Spanned};

use super::{Manifest, RenderError, RenderErrors, Source};
use crate::object::ObjectRef;

/// Parses one manifest file (or one stream of Kustomize output) into manifests. `file` is the
/// label every source and error carries: the path relative to the repository root.
///
/// Rules: the bytes must be UTF-8 (a leading BOM is dropped); documents that are empty or hold
/// only comments are skipped; `null` documents too; a `List` (any kind ending in `List` with an
/// `items` array) is expanded into its items; every object needs `apiVersion`, `kind` and
/// `metadata.name`. JSON needs no special case: it is YAML.
pub fn parse_documents(file: &str, bytes: &[u8]) -> Result<Vec<Manifest>, RenderErrors> {
    let text = std::str::from_utf8(bytes).map_err(|error| not_utf8(file, bytes, &error))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);

    let mut manifests = Vec::new();
    let mut errors = Vec::new();
    for document in split_documents(text) {
        let parsed: Result<Vec<Spanned<Value>>, _> =
            serde_saphyr::from_multiple_with_options(document.text, parse_options());
        match parsed {
            Ok(roots) => {
                for root in roots {
                    let line = document.first_line + to_usize(root.referenced.line().max(1)) - 1;
                    let source = Source::new(file, document.index, line);
                    collect_objects(root.value, source, &mut manifests, &mut errors);
                }
            }
            Err(error) => errors.push(invalid_yaml(file, &document, &error)),
        }
    }
    RenderErrors::check(errors)?;
    Ok(manifests)
}

/// How Kubernetes itself reads YAML (sigs.k8s.io/yaml, YAML 1.1 flavoured): `0644` in a
/// `defaultMode` is octal 420, not decimal 644. Snippets are off because the errors carry our own
/// file:line:column, shifted to the whole file.
fn parse_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        with_snippet: false,
        legacy_octal_numbers: true,
    }
}

/// One YAML document of a file: its text (from its `---`, or from the end of the previous
/// document) and where that text starts.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct RawDocument<'a> {
    /// 0-based index among the file's documents, empty ones included.
    pub index: usize,
    /// 1-based line of the document's first line in the file.
    pub first_line: usize,
    pub text: &'a str,
}

/// Splits a YAML stream into its documents at marker lines: `---` starts a document (the marker
/// line stays with it, so `--- |` and `--- !tag` still parse), `...` ends one. Lines that are
/// only comments, blank or directives before a `---` are not a document of their own: they are
/// kept with the document that follows (a `%YAML` directive must stay with its `---`).
pub(super) fn split_documents<'a>(text: &'a str) -> Vec<RawDocument<'a>> {
    let mut documents = Vec::new();
    let mut start = 0; // byte offset of the current segment
    let mut start_line = 1;
    let mut explicit = false; // the segment contains its own `---`
    let mut content = false; // the segment has something besides comments and blanks
    let mut offset = 0;
    let close = |from: usize, to: usize, line: usize, documents: &mut Vec<RawDocument<'a>>| {
        let index = documents.len();
        documents.push(RawDocument {
            index,
            first_line: line,
            text: &text[from..to],
        });
    };
    for (number, line) in text.split_inclusive('\n').enumerate() {
        let number = number + 1;
        if is_marker(line, "---") {
            if explicit || content {
                close(start, offset, start_line, &mut documents);
                start = offset;
                start_line = number;
                content = false;
            }
            explicit = true;
        } else if is_marker(line, "...") {
            let end = offset + line.len();
            if explicit || content {
                close(start, end, start_line, &mut documents);
            }
            start = end;
            start_line = number + 1;
            explicit = false;
            content = false;
        } else if !is_trivia(line) {
            content = true;
        }
        offset += line.len();
    }
    if explicit || content {
        close(start, text.len(), start_line, &mut documents);
    }
    documents
}

/// A document marker: the three characters at column 0, then nothing or whitespace.
fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.chars().next().is_none_or(char::is_whitespace))
}

/// A line that cannot start a document: blank, a comment, or a `%` directive.
fn is_trivia(line: &str) -> bool {
    let trimmed = line.trim_start();
    trimmed.is_empty() || trimmed.starts_with('#') || line.starts_with('%')
}

/// Turns one parsed document into manifests, expanding a List into its items.
fn collect_objects(
    value: Value,
    source: Source,
    manifests: &mut Vec<Manifest>,
    errors: &mut Vec<RenderError>,
) {
    if value.is_null() {
        return; // `~` or `null` alone: an empty document, as kubectl treats it
    }
    if is_list(&value) {
        let Value::Object(mut list) = value else {
            unreachable!("is_list checked the shape")
        };
        let Some(Value::Array(items)) = list.remove("items") else {
            unreachable!("is_list checked items")
        };
        for (item, object) in items.into_iter().enumerate() {
            let source = Source {
                item: Some(item),
                ..source.clone()
            };
            push_object(object, source, manifests, errors);
        }
    } else {
        push_object(value, source, manifests, errors);
    }
}

/// `kind: List`, `ConfigMapList` and the like, as `kubectl get -o yaml` writes them. A kind that
/// merely ends in `List` but carries no `items` array is an ordinary object.
fn is_list(value: &Value) -> bool {
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    kind.ends_with("List") && value.get("items").is_some_and(Value::is_array)
}

fn push_object(
    object: Value,
    source: Source,
    manifests: &mut Vec<Manifest>,
    errors: &mut Vec<RenderError>,
) {
    if !object.is_object() {
        errors.push(RenderError::NotAnObject {
            at: source,
            found: json_type(&object),
        });
        return;
    }
    match ObjectRef::of(&object) {
        Some(object_ref) => manifests.push(Manifest {
            object_ref,
            object,
            source,
        }),
        None => errors.push(RenderError::NotAKubernetesObject {
            missing: missing_fields(&object).join(", "),
            at: source,
        }),
    }
}

/// Which identity fields an object lacks (absent, empty or not a string).
fn missing_fields(object: &Value) -> Vec<&'static str> {
    let present = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .is_some_and(|text| !text.is_empty())
    };
    [
        ("/apiVersion", "apiVersion"),
        ("/kind", "kind"),
        ("/metadata/name", "metadata.name"),
    ]
    .into_iter()
    .filter(|(pointer, _)| !present(pointer))
    .map(|(_, field)| field)
    .collect()
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

fn invalid_yaml(
    file: &str,
    document: &RawDocument<'_>,
    error: &serde_saphyr::Error,
) -> RenderError {
    // Rendering the message alone: the location suffix it would add is relative to the document.
    let message = match budget_breach(error) {
        Some(breach) => format!(
            "the document is too big once its anchors and aliases are expanded ({breach}); \
             refused unexpanded"
        )
        .into(),
        None => serde_saphyr::DefaultMessageFormatter.format_message(error.without_snippet()),
    };
    let message: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let (line, column) = error
        .location()
        .filter(|location| location.line() > 0)
        .map_or((document.first_line, 1), |location| {
            (
                document.first_line + to_usize(location.line()) - 1,
                to_usize(location.column()),
            )
        });
    RenderError::InvalidYaml {
        file: file.to_owned(),
        line,
        column,
        message,
    }
}

/// The parser's budget (nodes, aliases, depth…) that `error` breached, however wrapped: it stops
/// a billion laughs (anchors whose aliases expand a kilobyte into gigabytes) before the memory
/// goes.
fn budget_breach(error: &serde_saphyr::Error) -> Option<String> {
    let mut current: &(dyn std::error::Error + 'static) = error;
    loop {
        if let Some(serde_saphyr::Error::Budget { breach, .. }) = current.downcast_ref() {
            return Some(format!("{breach:?}"));
        }
        current = current.source()?;
    }
}

/// Where the first invalid byte is, counted as an editor would show it (byte column).
fn not_utf8(file: &str, bytes: &[u8], error: &std::str::Utf8Error) -> RenderError {
    let valid = &bytes[..error.valid_up_to()];
    let line = valid.iter().filter(|&&byte| byte == b'\n').count() + 1;
    let line_start = valid
        .iter()
        .rposition(|&byte| byte == b'\n')
        .map_or(0, |at| at + 1);
    RenderError::NotUtf8 {
        file: file.to_owned(),
        line,
        column: valid.len() - line_start + 1,
    }
}

fn to_usize(number: u64) -> usize {
    usize::try_from(number).unwrap_or(usize::MAX)
}

#[cfg(test)]
#[path = "documents_tests.rs"]
mod tests;
