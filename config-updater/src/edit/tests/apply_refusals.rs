//! What `apply` refuses, and the quoting it does on its own.

use super::*;
use crate::edit::{ByteSpan, EditError, QuoteStyle, SkipReason};

fn first_image(input: &str) -> ScalarValue {
    images(&refs(input))
        .first()
        .map(|s| (*s).clone())
        .expect("an image field")
}

fn first_marked(input: &str) -> ScalarValue {
    marked(&refs(input))
        .first()
        .map(|(_, s)| (*s).clone())
        .expect("a marked value")
}

fn refused(input: &str, edits: &[Edit]) -> EditError {
    apply(input.as_bytes(), edits).expect_err("refused")
}

#[test]
fn a_plain_value_that_would_change_type_needs_quoting() {
    let input = "tag: 1.9.0 # {\"$imagepolicy\": \"apps:web:tag\"}\n";
    let tag = first_marked(input);
    let err = refused(input, &[Edit::new(&tag, "1.10")]);
    let EditError::NeedsQuoting {
        line,
        style,
        reason,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((*line, *style), (1, QuoteStyle::Plain));
    assert!(
        reason.contains("floating-point number instead of a string"),
        "{err}"
    );
    assert!(
        err.to_string().contains("quote the value in the file"),
        "{err}"
    );
    // Quoted, the same value is fine.
    let quoted = input.replace("1.9.0", "\"1.9.0\"");
    let tag = first_marked(&quoted);
    assert_eq!(
        edited(&quoted, &[Edit::new(&tag, "1.10")]),
        quoted.replace("1.9.0", "1.10")
    );
}

#[test]
fn a_plain_value_keeps_its_type_when_it_already_was_a_number_or_tagged() {
    let input = "newTag: 1.0\nimage: !!str 1.9\n";
    let found = refs(input);
    let tagged = images(&found)[0];
    assert_eq!(
        edited(input, &[Edit::new(tagged, "1.10")]),
        input.replace("1.9", "1.10")
    );
    let span = ByteSpan::new(8, 11);
    let number = Edit {
        span,
        expected: "1.0".into(),
        replacement: "1.1".into(),
    };
    assert_eq!(edited(input, &[number]), input.replace("1.0", "1.1"));
}

#[test]
fn plain_values_that_would_break_yaml_are_refused() {
    let input = "image: app:1.0\n";
    let image = first_image(input);
    for bad in [
        "app: 1.1",
        "app:1.1 #x",
        "*app",
        "&app",
        "!app",
        "'app",
        "- app",
        "",
        " app",
        "app\nx",
        "app:",
        "@app",
        "%app",
        "---app",
    ] {
        let err = refused(input, &[Edit::new(&image, bad)]);
        assert!(
            matches!(err, EditError::NeedsQuoting { .. }),
            "{bad:?}: {err:?}"
        );
    }
    // Dashes and colons inside a value are fine.
    assert_eq!(
        edited(input, &[Edit::new(&image, "-app:1-rc")]),
        "image: -app:1-rc\n"
    );
}

#[test]
fn flow_indicators_are_refused_in_plain_values_inside_flow_collections() {
    let input = "containers: [{name: web, image: app:1.0}]\n";
    let image = first_image(input);
    let err = refused(input, &[Edit::new(&image, "app:1.1,x")]);
    assert!(matches!(err, EditError::NeedsQuoting { .. }), "{err:?}");
    assert_eq!(
        edited(input, &[Edit::new(&image, "app:1.1")]),
        input.replace("1.0", "1.1")
    );
    // Outside flow collections, `,` and brackets are ordinary characters.
    let block = "image: app:1.0\n";
    assert_eq!(
        edited(block, &[Edit::new(&first_image(block), "app:1.1,x]")]),
        "image: app:1.1,x]\n"
    );
}

#[test]
fn quotes_are_escaped_in_the_scalar_style() {
    let single = "image: 'app:1.0'\n";
    assert_eq!(
        edited(single, &[Edit::new(&first_image(single), "it's:1")]),
        "image: 'it''s:1'\n"
    );
    let double = "image: \"app:1.0\"\n";
    assert_eq!(
        edited(double, &[Edit::new(&first_image(double), "a\"b\\c")]),
        "image: \"a\\\"b\\\\c\"\n"
    );
    let err = refused(single, &[Edit::new(&first_image(single), "a\nb")]);
    assert!(
        matches!(
            err,
            EditError::NeedsQuoting {
                style: QuoteStyle::SingleQuoted,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        edited(double, &[Edit::new(&first_image(double), "a\tb")]),
        "image: \"a\\tb\"\n"
    );
}

#[test]
fn a_stale_expected_value_is_refused() {
    let input = "image: app:1.0\n";
    let image = first_image(input);
    let moved_on = input.replace("1.0", "1.5");
    let mut stale_scalar = image.clone();
    stale_scalar.span = ByteSpan::new(7, 14);
    let err = refused(&moved_on, &[Edit::new(&stale_scalar, "app:1.1")]);
    assert_eq!(
        err,
        EditError::Stale {
            line: 1,
            expected: "app:1.0".into(),
            found: "app:1.5".into()
        }
    );
}

#[test]
fn overlapping_edits_are_refused_and_duplicates_merged() {
    let input = "image: app:1.0\n";
    let image = first_image(input);
    let err = refused(
        input,
        &[Edit::new(&image, "app:1.1"), Edit::new(&image, "app:1.2")],
    );
    assert!(matches!(err, EditError::Overlap { line: 1, .. }), "{err:?}");
    let same = [Edit::new(&image, "app:1.1"), Edit::new(&image, "app:1.1")];
    assert_eq!(edited(input, &same), "image: app:1.1\n");
}

#[test]
fn spans_that_are_not_exactly_a_value_are_refused() {
    let input = "image: app:1.0 # note\n";
    for (start, end) in [(8, 14), (7, 13), (7, 16), (0, 5), (16, 20), (7, 99)] {
        let edit = Edit {
            span: ByteSpan::new(start, end),
            expected: "app:1.0".into(),
            replacement: "x".into(),
        };
        let err = refused(input, &[edit]);
        assert!(
            matches!(
                err,
                EditError::NotAScalar { line: 1, .. } | EditError::Stale { .. }
            ),
            "{start}..{end}: {err:?}"
        );
    }
    // A key is a scalar, but not the value `find` reported; the expected value catches it.
    let key = Edit {
        span: ByteSpan::new(0, 5),
        expected: "app:1.0".into(),
        replacement: "x".into(),
    };
    assert!(matches!(refused(input, &[key]), EditError::Stale { .. }));
}

#[test]
fn block_scalars_are_refused() {
    let input = "image: |\n  app:1.0\n";
    let edit = Edit {
        span: ByteSpan::new(11, 18),
        expected: "app:1.0\n".into(),
        replacement: "app:1.1\n".into(),
    };
    assert_eq!(
        refused(input, &[edit]),
        EditError::Unsupported {
            line: 2,
            reason: SkipReason::BlockScalar
        }
    );
}

#[test]
fn no_edits_returns_the_file_unchanged() {
    assert_eq!(
        apply(DEPLOYMENT.as_bytes(), &[]),
        Ok(DEPLOYMENT.as_bytes().to_vec())
    );
}

#[test]
fn an_unchanged_value_is_a_no_op() {
    let image = first_image(DEPLOYMENT);
    let value = image.value.clone();
    assert_eq!(edited(DEPLOYMENT, &[Edit::new(&image, value)]), DEPLOYMENT);
}
