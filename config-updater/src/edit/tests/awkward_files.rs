//! Bytes that trip up offset arithmetic: CRLF, a BOM, non-ASCII text before the value, trailing
//! blanks, tabs, registries with ports; and files that do not parse.

use super::*;
use crate::edit::{EditError, ImageRef};

/// Bump every marked value's tag from `from` to `to` and return the output.
fn bump_marked(input: &str, to: &str) -> String {
    let refs = refs(input);
    let edits: Vec<Edit> = marked(&refs)
        .iter()
        .map(|(_, s)| {
            let r = ImageRef::parse(&s.value).unwrap();
            Edit::new(s, r.with_tag(to).unwrap().to_string())
        })
        .collect();
    assert!(!edits.is_empty());
    edited(input, &edits)
}

#[test]
fn crlf_line_endings_are_kept() {
    let input = DEPLOYMENT.replace('\n', "\r\n");
    let out = bump_marked(&input, "1.4.3");
    assert_eq!(out, input.replace("app:1.4.2", "app:1.4.3"));
    let refs = refs(&input);
    assert_eq!(marked(&refs)[0].1.line, 20);
    assert_eq!(
        images(&refs)[1].value,
        "ghcr.io/acme/exporter:v0.9.1",
        "no \\r in values"
    );
}

#[test]
fn a_utf8_bom_is_kept_and_offsets_count_it() {
    let input = format!("\u{feff}{VALUES}");
    let refs = refs(&input);
    let tag = marked(&refs)[1].1;
    assert_eq!(at(&input, tag), "1.4.2");
    let out = edited(&input, &[Edit::new(tag, "1.4.3")]);
    assert_eq!(out, replace_nth(&input, "1.4.2", "1.4.3", 0));
    assert!(out.starts_with('\u{feff}'));
}

const NON_ASCII: &str = "\
# Équipe « web » — 日本語のコメント 🚀
apiVersion: apps/v1
kind: Deployment
metadata:
  name: café
  annotations: {description: \"déploiement ☕\", owner: José}
spec:
  template:
    spec:
      containers:
      - name: wéb   # 名前
        image: 127.0.0.1:15000/demo/app:1.4.2 # {\"$imagepolicy\": \"apps:web\"}
        env: [{name: GREETING, value: \"こんにちは\"}]
      - {name: ünmarked, image: 'ghcr.io/acme/app:1.4.2'}
";

#[test]
fn non_ascii_text_before_the_value_shifts_bytes_not_values() {
    let refs = refs(NON_ASCII);
    let (_, web) = marked(&refs)[0];
    assert_eq!(at(NON_ASCII, web), "127.0.0.1:15000/demo/app:1.4.2");
    assert_eq!((web.line, web.column), (12, 16));
    let other = images(&refs)[0];
    assert_eq!(
        (at(NON_ASCII, other).as_str(), other.line, other.column),
        ("ghcr.io/acme/app:1.4.2", 14, 34)
    );
    let out = edited(
        NON_ASCII,
        &[
            Edit::new(web, "127.0.0.1:15000/demo/app:1.4.3"),
            Edit::new(other, "ghcr.io/acme/app:1.4.3"),
        ],
    );
    assert_eq!(out, NON_ASCII.replace("1.4.2", "1.4.3"));
}

#[test]
fn crlf_bom_and_non_ascii_together() {
    let input = format!("\u{feff}{}", NON_ASCII.replace('\n', "\r\n"));
    assert_eq!(
        bump_marked(&input, "2.0.0"),
        replace_nth(&input, "1.4.2", "2.0.0", 0)
    );
}

#[test]
fn trailing_blanks_and_tabs_after_values_stay() {
    let input = "image: app:1.0   \nother:\n  image: \"app:1.0\"\t\t# note\n  tag: 1.0.0\t# {\"$imagepolicy\": \"apps:app:tag\"}\n";
    let refs = refs(input);
    let images = images(&refs);
    assert_eq!(
        images.iter().map(|s| at(input, s)).collect::<Vec<_>>(),
        ["app:1.0", "app:1.0"]
    );
    let (_, tag) = marked(&refs)[0];
    assert_eq!(at(input, tag), "1.0.0");
    let out = edited(
        input,
        &[
            Edit::new(images[0], "app:1.1"),
            Edit::new(images[1], "app:1.1"),
            Edit::new(tag, "1.1.0"),
        ],
    );
    assert_eq!(
        out,
        input
            .replace("app:1.0", "app:1.1")
            .replace("1.0.0", "1.1.0")
    );
}

#[test]
fn registry_ports_are_not_tags() {
    let input = "image: 127.0.0.1:15000/demo/app:1.4.2 # {\"$imagepolicy\": \"apps:web\"}\n";
    let out = bump_marked(input, "1.4.3");
    assert_eq!(out, input.replace("1.4.2", "1.4.3"));
    assert!(out.contains("127.0.0.1:15000/"), "the port is untouched");
}

#[test]
fn digest_pinned_whole_references_get_the_new_tag_and_digest() {
    let input = format!(
        "image: \"127.0.0.1:15000/demo/app:1.4.2@{DIGEST}\" # {{\"$imagepolicy\": \"apps:web\"}}\n"
    );
    let refs = refs(&input);
    let (_, s) = marked(&refs)[0];
    let new = ImageRef::parse(&s.value)
        .unwrap()
        .with_tag("1.4.3")
        .unwrap()
        .with_digest(DIGEST2)
        .unwrap();
    let out = edited(&input, &[Edit::new(s, new.to_string())]);
    assert_eq!(
        out,
        input.replace("1.4.2", "1.4.3").replace(DIGEST, DIGEST2)
    );
}

#[test]
fn a_malformed_file_is_a_parse_error_with_its_position() {
    let err = find(MALFORMED.as_bytes()).expect_err("malformed");
    let EditError::Parse {
        line,
        column,
        message,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!((6..=8).contains(line), "{err}");
    assert!(*column >= 1 && !message.is_empty(), "{err}");
    assert!(err.to_string().contains(&format!("line {line}")), "{err}");
    let edit = Edit {
        span: crate::edit::ByteSpan::new(0, 1),
        expected: "a".into(),
        replacement: "b".into(),
    };
    assert!(matches!(
        apply(MALFORMED.as_bytes(), &[edit]),
        Err(EditError::Parse { .. })
    ));
}

#[test]
fn a_file_that_is_not_utf8_is_a_parse_error() {
    let input = b"a: b\nimage: caf\xe9:1\n";
    assert_eq!(
        find(input),
        Err(EditError::Parse {
            line: 2,
            column: 11,
            message: "the file is not valid UTF-8".into()
        })
    );
}

#[test]
fn an_empty_file_and_comment_only_files_have_no_references() {
    assert_eq!(find(b""), Ok(vec![]));
    assert_eq!(find(b"# just a comment\n---\n...\n"), Ok(vec![]));
}

/// Every editable value of every fixture, in every line-ending and BOM variant: appending a
/// character changes exactly that value's bytes.
#[test]
fn every_value_of_every_fixture_edits_in_place() {
    let fixtures = [
        DEPLOYMENT,
        VALUES,
        KUSTOMIZATION,
        MULTI_DOC,
        ANCHORS,
        BLOCK_SCALARS,
        NON_ASCII,
    ];
    let mut checked = 0;
    for fixture in fixtures {
        for input in [
            fixture.to_string(),
            fixture.replace('\n', "\r\n"),
            format!("\u{feff}{fixture}"),
        ] {
            let refs = refs(&input);
            let mut values: Vec<&ScalarValue> = marked(&refs).into_iter().map(|(_, s)| s).collect();
            values.extend(images(&refs));
            for k in kustomize(&refs) {
                values.extend(
                    [
                        Some(&k.name),
                        k.new_name.as_ref(),
                        k.new_tag.as_ref(),
                        k.digest.as_ref(),
                    ]
                    .into_iter()
                    .flatten(),
                );
            }
            for value in values {
                let new = format!("{}0", value.value);
                let want = format!(
                    "{}{new}{}",
                    &input[..value.span.start],
                    &input[value.span.end..]
                );
                assert_eq!(
                    edited(&input, &[Edit::new(value, new.clone())]),
                    want,
                    "{value:?}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 60, "{checked}");
}
