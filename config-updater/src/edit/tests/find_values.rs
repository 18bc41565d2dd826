//! Helm values: `:name`, `:tag` and `:digest` markers, quoted and plain, tabs before comments.

use super::*;
use crate::edit::{ImagePart, QuoteStyle};

fn summary(input: &str) -> Vec<(usize, String, QuoteStyle, String)> {
    marked(&refs(input))
        .iter()
        .map(|(m, s)| (s.line, m.to_string(), s.style, s.value.clone()))
        .collect()
}

#[test]
fn helm_values_markers_for_each_part() {
    let plain = QuoteStyle::Plain;
    let double = QuoteStyle::DoubleQuoted;
    assert_eq!(
        summary(VALUES),
        [
            (
                5,
                "apps:web:name".into(),
                plain,
                "127.0.0.1:15000/demo/app".into()
            ),
            (6, "apps:web:tag".into(), plain, "1.4.2".into()),
            (
                11,
                "apps:worker:name".into(),
                double,
                "ghcr.io/acme/worker".into()
            ),
            (12, "apps:worker:tag".into(), double, "2024.01.15".into()),
            (13, "apps:worker:digest".into(), plain, DIGEST.into()),
            // The finder does not know which policies exist: the caller reports unknown ones.
            (17, "apps:no-such-policy:tag".into(), plain, "v3".into()),
        ]
    );
    let refs = refs(VALUES);
    assert!(images(&refs).is_empty(), "`image:` here is a mapping");
    assert!(
        skipped(&refs).is_empty(),
        "a marker inside a quoted string is text: {refs:?}"
    );
    assert_eq!(refs[1].part(), Some(ImagePart::Tag));
}

#[test]
fn helm_tag_bump_changes_only_the_tag() {
    let refs = refs(VALUES);
    let web_tag = marked(&refs)[1].1;
    let out = edited(VALUES, &[Edit::new(web_tag, "1.4.3")]);
    assert_eq!(out, replace_nth(VALUES, "1.4.2", "1.4.3", 0));
}

#[test]
fn helm_name_tag_and_digest_together_keep_quotes_and_tabs() {
    let refs = refs(VALUES);
    let m = marked(&refs);
    let edits = [
        Edit::new(m[2].1, "127.0.0.1:15000/mirror/worker"),
        Edit::new(m[3].1, "2024.02.01"),
        Edit::new(m[4].1, DIGEST2),
    ];
    let out = edited(VALUES, &edits);
    let want = VALUES
        .replace(
            "\"ghcr.io/acme/worker\"",
            "\"127.0.0.1:15000/mirror/worker\"",
        )
        .replace("\"2024.01.15\"\t#", "\"2024.02.01\"\t#")
        .replace(DIGEST, DIGEST2);
    assert_eq!(out, want);
}

#[test]
fn a_digest_value_reached_by_a_marker_with_flexible_json_whitespace() {
    let input = "image:\n  digest: \"\"   #   {  \"$imagepolicy\"  :  \"apps:web:digest\"  }\n";
    let refs = refs(input);
    let (marker, scalar) = marked(&refs)[0];
    assert_eq!(marker.part, ImagePart::Digest);
    assert_eq!((scalar.value.as_str(), scalar.span.len()), ("", 0));
    let out = edited(input, &[Edit::new(scalar, DIGEST)]);
    assert_eq!(out, input.replace("\"\"", &format!("\"{DIGEST}\"")));
}

#[test]
fn malformed_markers_are_reported_with_the_reason() {
    let input = "a: x:1 # {\"$imagepolicy\": \"web\"}\nb: y:1 # {\"$imagepolicy\": \"apps:web:sha\"}\nc: z:1 # {$imagepolicy: apps:web}\n";
    let refs = refs(input);
    assert!(marked(&refs).is_empty());
    let reasons: Vec<_> = skipped(&refs)
        .iter()
        .map(|s| (s.line, s.reason.to_string()))
        .collect();
    assert_eq!(reasons.len(), 3);
    assert!(reasons[0].1.contains("no namespace"), "{reasons:?}");
    assert!(
        reasons[1].1.contains("unknown suffix \"sha\""),
        "{reasons:?}"
    );
    assert!(reasons[2].1.contains("not valid JSON"), "{reasons:?}");
    assert_eq!(skipped(&refs)[0].value.as_deref(), Some("x:1"));
}

#[test]
fn sequence_items_and_document_roots_can_carry_markers() {
    let input = "args:\n  - app:1.0 # {\"$imagepolicy\": \"apps:web\"}\n---\nruntime:1.0 # {\"$imagepolicy\": \"apps:rt\"}\n";
    let refs = refs(input);
    let found: Vec<_> = marked(&refs)
        .iter()
        .map(|(m, s)| (m.policy.name.clone(), s.line, s.document))
        .collect();
    assert_eq!(found, [("web".to_string(), 2, 0), ("rt".to_string(), 4, 1)]);
}
