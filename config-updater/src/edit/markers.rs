//! Flux setter markers: `# {"$imagepolicy": "<namespace>:<name>[:tag|:name|:digest]"}`.
//!
//! Flux reads the line comment after a value, strips the leading `#`s and parses the rest as
//! JSON; so do we, which accepts any JSON whitespace (`{ "$imagepolicy" : "apps:web" }`). Unlike
//! Flux, which silently ignores a comment that is not valid JSON, we report a comment that
//! mentions `$imagepolicy` but does not parse: a typo in a marker should not mean "never updated,
//! never told".

use std::fmt;

use serde_json::Value;

/// The JSON key of a marker.
pub(crate) const MARKER_KEY: &str = "$imagepolicy";

/// An image policy, by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyId {
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.namespace, self.name)
    }
}

/// Which part of an image reference a value holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImagePart {
    /// The whole reference: `repo:tag`, `repo:tag@sha256:…` or `repo@sha256:…`.
    Whole,
    /// The repository only (`:name`), e.g. Helm's `image.repository`.
    Name,
    /// The tag only (`:tag`), e.g. Helm's `image.tag` or kustomize's `newTag`.
    Tag,
    /// The digest only (`:digest`), e.g. kustomize's `digest`.
    Digest,
}

impl fmt::Display for ImagePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ImagePart::Whole => "image",
            ImagePart::Name => "name",
            ImagePart::Tag => "tag",
            ImagePart::Digest => "digest",
        })
    }
}

/// A parsed marker: which policy updates the value, and which part of the image it holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SetterMarker {
    pub policy: PolicyId,
    pub part: ImagePart,
}

impl fmt::Display for SetterMarker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.part {
            ImagePart::Whole => write!(f, "{}", self.policy),
            part => write!(f, "{}:{part}", self.policy),
        }
    }
}

/// Parse the text of a comment (after its `#`). `None`: not a marker at all. `Some(Err)`: it
/// mentions `$imagepolicy` but is malformed, with a message for the user.
pub(crate) fn parse_marker(comment: &str) -> Option<Result<SetterMarker, String>> {
    if !comment.contains(MARKER_KEY) {
        return None;
    }
    let json = comment.trim_start_matches('#').trim();
    let object = match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(object)) => object,
        Ok(_) => return Some(Err(format!("{json:?} is not a JSON object"))),
        Err(e) => return Some(Err(format!("{json:?} is not valid JSON ({e})"))),
    };
    Some(match object.get(MARKER_KEY) {
        Some(Value::String(setter)) => parse_setter(setter),
        Some(_) => Err(format!("the value of {MARKER_KEY:?} must be a string")),
        None => Err(format!("the JSON object has no {MARKER_KEY:?} key")),
    })
}

fn parse_setter(setter: &str) -> Result<SetterMarker, String> {
    let expected =
        "expected \"<namespace>:<name>\" optionally followed by \":tag\", \":name\" or \":digest\"";
    let parts: Vec<&str> = setter.split(':').collect();
    let (namespace, name, part) = match parts.as_slice() {
        [ns, name] => (*ns, *name, ImagePart::Whole),
        [ns, name, "tag"] => (*ns, *name, ImagePart::Tag),
        [ns, name, "name"] => (*ns, *name, ImagePart::Name),
        [ns, name, "digest"] => (*ns, *name, ImagePart::Digest),
        [_] => return Err(format!("{setter:?} has no namespace; {expected}")),
        [_, _, other] => {
            return Err(format!(
                "{setter:?} has an unknown suffix {other:?}; {expected}"
            ));
        }
        _ => return Err(format!("{setter:?}: {expected}")),
    };
    for (what, s) in [("namespace", namespace), ("name", name)] {
        if !is_object_name(s) {
            return Err(format!(
                "{setter:?}: the {what} {s:?} is not a valid Kubernetes object name; {expected}"
            ));
        }
    }
    Ok(SetterMarker {
        policy: PolicyId {
            namespace: namespace.to_string(),
            name: name.to_string(),
        },
        part,
    })
}

/// A DNS subdomain name, as Kubernetes requires for namespaces and policy names.
fn is_object_name(s: &str) -> bool {
    let ok_edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    !s.is_empty()
        && s.len() <= 253
        && ok_edge(s.chars().next())
        && ok_edge(s.chars().next_back())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(ns: &str, name: &str, part: ImagePart) -> SetterMarker {
        SetterMarker {
            policy: PolicyId {
                namespace: ns.into(),
                name: name.into(),
            },
            part,
        }
    }

    #[test]
    fn flux_markers_with_any_json_whitespace() {
        for (comment, want) in [
            (
                r#" {"$imagepolicy": "apps:web"}"#,
                marker("apps", "web", ImagePart::Whole),
            ),
            (
                r#"{ "$imagepolicy" :"apps:web:tag" }"#,
                marker("apps", "web", ImagePart::Tag),
            ),
            (
                "\t{\"$imagepolicy\":\n\"apps:web:name\"}  ",
                marker("apps", "web", ImagePart::Name),
            ),
            (
                r#"# {"$imagepolicy": "flux-system:podinfo:digest"}"#,
                marker("flux-system", "podinfo", ImagePart::Digest),
            ),
        ] {
            assert_eq!(parse_marker(comment), Some(Ok(want)), "{comment}");
        }
    }

    #[test]
    fn ordinary_comments_are_not_markers() {
        assert_eq!(parse_marker(" pinned until the migration"), None);
        assert_eq!(parse_marker(r#" {"$ref": "x"}"#), None);
    }

    #[test]
    fn malformed_markers_say_what_is_wrong() {
        for (comment, needle) in [
            (r#" {"$imagepolicy": "web"}"#, "no namespace"),
            (r#" {"$imagepolicy": "apps:web:version"}"#, "unknown suffix"),
            (r#" {"$imagepolicy": apps:web}"#, "not valid JSON"),
            (r#" {"$imagepolicy": 3}"#, "must be a string"),
            (
                r#" {"$imagepolicy": "Apps:web"}"#,
                "not a valid Kubernetes object name",
            ),
            (
                r#" {"$imagepolicy": "apps:web"} trailing"#,
                "not valid JSON",
            ),
        ] {
            let err = parse_marker(comment)
                .expect("mentions the key")
                .expect_err(comment);
            assert!(err.contains(needle), "{comment}: {err}");
        }
    }

    #[test]
    fn markers_display_as_written() {
        assert_eq!(marker("a", "b", ImagePart::Whole).to_string(), "a:b");
        assert_eq!(marker("a", "b", ImagePart::Tag).to_string(), "a:b:tag");
    }
}
