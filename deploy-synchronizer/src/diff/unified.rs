//! Text for diffs: objects as deterministic YAML, and unified diffs of that text.

use serde_json::{Map, Value};
use similar::TextDiff;

/// Lines of unchanged context around each change, as `diff -u` and `kubectl diff` show.
const CONTEXT_LINES: usize = 3;

/// The object as YAML with every mapping's keys sorted, so two objects differing only in field
/// order print the same. Keys are sorted here rather than trusted to `serde_json`'s map: that map
/// keeps insertion order as soon as any crate in the build enables its `preserve_order` feature.
///
/// The emitter is serde-saphyr's: its layout choices (quoting, block scalars for multi-line
/// strings) are a pure function of the value, and both sides of a diff go through it in the same
/// process, so layout can never show up as a change. Block scalars also make a changed line of an
/// embedded config file show as that one line.
pub fn to_yaml(object: &Value) -> String {
    let sorted = sort_keys(object);
    // Serializing a JSON value cannot fail for any YAML reason; JSON is a fallback, not a path.
    serde_saphyr::to_string(&sorted).unwrap_or_else(|_| {
        let mut text = serde_json::to_string_pretty(&sorted).unwrap_or_default();
        text.push('\n');
        text
    })
}

fn sort_keys(value: &Value) -> Value {
    match value {
        Value::Object(fields) => {
            let mut sorted: Vec<_> = fields.iter().collect();
            sorted.sort_by_key(|(key, _)| *key);
            Value::Object(
                sorted
                    .into_iter()
                    .map(|(key, value)| (key.clone(), sort_keys(value)))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sort_keys).collect()),
        other => other.clone(),
    }
}

/// A unified diff from `old` to `new` under `--- old_name` / `+++ new_name` headers; empty when
/// the texts are equal.
pub fn unified_diff(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    if old == new {
        return String::new();
    }
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(CONTEXT_LINES)
        .header(old_name, new_name)
        .to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keys_are_sorted_at_every_level() {
        let a = json!({"spec": {"b": 1, "a": [{"q": 1, "p": 2}]}, "kind": "X"});
        let b = json!({"kind": "X", "spec": {"a": [{"p": 2, "q": 1}], "b": 1}});
        assert_eq!(to_yaml(&a), to_yaml(&b));
        assert_eq!(
            to_yaml(&a),
            "kind: X\nspec:\n  a:\n  - p: 2\n    q: 1\n  b: 1\n"
        );
    }

    #[test]
    fn multi_line_strings_diff_by_line() {
        let old = to_yaml(&json!({"data": {"nginx.conf": "server {\n  listen 80;\n}\n"}}));
        let new = to_yaml(&json!({"data": {"nginx.conf": "server {\n  listen 8080;\n}\n"}}));
        let diff = unified_diff(&old, &new, "a", "b");
        assert!(
            diff.contains("\n-      listen 80;\n+      listen 8080;\n"),
            "{diff}"
        );
    }

    #[test]
    fn equal_texts_have_no_diff() {
        assert_eq!(unified_diff("a: 1\n", "a: 1\n", "x", "y"), "");
    }
}
