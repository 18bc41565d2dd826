//! Field paths of a managedFields `fieldsV1` set, and how a person reads them.
//!
//! `fieldsV1` is a tree whose keys name fields (`f:replicas`), list items by key
//! (`k:{"name":"web"}`), set members by value (`v:"a"`) or positions (`i:0`); `.` marks that a
//! node itself is owned. A leaf is a node with no children.

use std::collections::BTreeSet;

use serde_json::Value;

/// Separates the segments of a raw path (field names may hold dots and slashes).
const SEP: char = '\u{0}';

/// Every leaf path of `fields`, as raw segments joined by an internal separator.
pub fn leaf_paths(fields: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    walk(fields, &mut String::new(), &mut out);
    out
}

fn walk(node: &Value, prefix: &mut String, out: &mut BTreeSet<String>) {
    let children: Vec<(&String, &Value)> = node
        .as_object()
        .map(|map| map.iter().filter(|(key, _)| key.as_str() != ".").collect())
        .unwrap_or_default();
    if children.is_empty() {
        if !prefix.is_empty() {
            out.insert(prefix.clone());
        }
        return;
    }
    for (key, child) in children {
        let len = prefix.len();
        if !prefix.is_empty() {
            prefix.push(SEP);
        }
        prefix.push_str(key);
        walk(child, prefix, out);
        prefix.truncate(len);
    }
}

/// `f:spec`,`f:template`,`k:{"name":"web"}`,`f:image` → `spec.template[name=web].image`.
pub fn display(raw: &str) -> String {
    let mut text = String::new();
    for segment in raw.split(SEP) {
        match segment.split_once(':') {
            Some(("f", name)) => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(name);
            }
            Some(("k", key)) => {
                let fields = serde_json::from_str::<serde_json::Map<String, Value>>(key)
                    .map(|map| {
                        map.iter()
                            .map(|(k, v)| match v {
                                Value::String(s) => format!("{k}={s}"),
                                other => format!("{k}={other}"),
                            })
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_else(|_| key.to_owned());
                text.push_str(&format!("[{fields}]"));
            }
            Some(("v", value)) => text.push_str(&format!("[={value}]")),
            Some(("i", index)) => text.push_str(&format!("[{index}]")),
            _ => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(segment);
            }
        }
    }
    text
}
