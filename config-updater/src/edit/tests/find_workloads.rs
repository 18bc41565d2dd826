//! Workloads: markers on whole image references, unmarked `image:` fields, odd indentation,
//! multiple documents, anchors and aliases.

use super::*;
use crate::edit::{ImagePart, ImageRef, QuoteStyle, SkipReason};

#[test]
fn deployment_markers_and_unmarked_images_at_any_indentation() {
    let refs = refs(DEPLOYMENT);
    let marked = marked(&refs);
    assert_eq!(marked.len(), 2);
    for (marker, scalar) in &marked {
        assert_eq!(marker.to_string(), "apps:web");
        assert_eq!(marker.part, ImagePart::Whole);
        assert_eq!(scalar.value, "127.0.0.1:15000/demo/app:1.4.2");
        assert_eq!(at(DEPLOYMENT, scalar), "127.0.0.1:15000/demo/app:1.4.2");
    }
    assert_eq!(
        (marked[0].1.line, marked[0].1.style),
        (20, QuoteStyle::Plain)
    );
    assert_eq!(
        marked[0].1.path,
        "spec.template.spec.initContainers[0].image"
    );
    assert_eq!(
        (marked[1].1.line, marked[1].1.style),
        (25, QuoteStyle::DoubleQuoted)
    );
    assert_eq!(marked[1].1.column, 29, "inside the quotes");
    assert_eq!(marked[1].1.path, "spec.template.spec.containers[0].image");

    let images = images(&refs);
    let found: Vec<_> = images
        .iter()
        .map(|s| (s.line, s.style, s.value.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (
                28,
                QuoteStyle::Plain,
                format!("127.0.0.1:15000/demo/sidecar@{DIGEST}").as_str()
            ),
            (31, QuoteStyle::SingleQuoted, "ghcr.io/acme/exporter:v0.9.1"),
        ]
    );
    assert_eq!(images[1].path, "spec.template.spec.containers[2].image");
    assert!(skipped(&refs).is_empty(), "{refs:?}");
}

#[test]
fn deployment_bump_changes_only_the_tag_bytes() {
    let refs = refs(DEPLOYMENT);
    let edits: Vec<Edit> = marked(&refs)
        .iter()
        .map(|(_, s)| {
            let new = ImageRef::parse(&s.value)
                .unwrap()
                .with_tag("1.4.3")
                .unwrap();
            Edit::new(s, new.to_string())
        })
        .collect();
    assert_eq!(
        edited(DEPLOYMENT, &edits),
        DEPLOYMENT.replace("app:1.4.2", "app:1.4.3")
    );
}

#[test]
fn digest_pinned_and_single_quoted_unmarked_images() {
    let refs = refs(DEPLOYMENT);
    let images = images(&refs);
    let sidecar = ImageRef::parse(&images[0].value)
        .unwrap()
        .with_digest(DIGEST2)
        .unwrap();
    let exporter = ImageRef::parse(&images[1].value)
        .unwrap()
        .with_tag("v0.10.0")
        .unwrap();
    let out = edited(
        DEPLOYMENT,
        &[
            Edit::new(images[1], exporter.to_string()),
            Edit::new(images[0], sidecar.to_string()),
        ],
    );
    let want = DEPLOYMENT
        .replace(DIGEST, DIGEST2)
        .replace("exporter:v0.9.1'    ", "exporter:v0.10.0'    ");
    assert_eq!(out, want);
}

#[test]
fn multi_document_file_with_leading_and_trailing_markers() {
    let refs = refs(MULTI_DOC);
    let marked = marked(&refs);
    assert_eq!(marked.len(), 1, "{refs:?}");
    let (report_marker, report) = marked[0];
    assert_eq!(report_marker.to_string(), "apps:report");
    assert_eq!((report.line, report.document), (23, 1));
    assert_eq!(
        report.path,
        "spec.jobTemplate.spec.template.spec.containers[0].image"
    );
    let out = edited(
        MULTI_DOC,
        &[Edit::new(report, "127.0.0.1:15000/demo/report:0.3.1")],
    );
    assert_eq!(out, MULTI_DOC.replace("report:0.3.0", "report:0.3.1"));
    assert!(out.starts_with("---\n# Service first") && out.ends_with("...\n"));
}

#[test]
fn a_marker_after_a_flow_mapping_is_reported_not_guessed() {
    let refs = refs(MULTI_DOC);
    // `- {name: shell, image: "..."}  # {"$imagepolicy": "apps:web"}`: the marker follows the
    // `}`, not a value. It is reported, and the value is still offered as an unmarked image.
    let skipped = skipped(&refs);
    assert_eq!(skipped.len(), 1);
    assert_eq!((skipped[0].line, skipped[0].document), (31, 2));
    assert_eq!(skipped[0].reason, SkipReason::MarkerNotAttached);
    assert_eq!(
        skipped[0]
            .marker
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("apps:web")
    );
    let images = images(&refs);
    assert_eq!(images.len(), 1);
    assert_eq!(
        (images[0].line, images[0].path.as_str()),
        (31, "spec.containers[0].image")
    );
    let out = edited(
        MULTI_DOC,
        &[Edit::new(images[0], "127.0.0.1:15000/demo/app:1.4.3")],
    );
    assert_eq!(out, MULTI_DOC.replace("app:1.4.2", "app:1.4.3"));
}

#[test]
fn anchors_are_edited_once_and_aliases_reported() {
    let refs = refs(ANCHORS);
    let marked = marked(&refs);
    assert_eq!(marked.len(), 1);
    let (_, app) = marked[0];
    assert_eq!(
        (app.line, app.aliased_at.as_slice()),
        (1, [5, 7].as_slice())
    );
    assert_eq!(
        at(ANCHORS, app),
        "127.0.0.1:15000/demo/app:1.4.2",
        "the value, not the anchor"
    );
    // `*sidecar` under `image:` offers the anchor's value once, listing both aliases.
    let images = images(&refs);
    assert_eq!(images.len(), 1);
    assert_eq!(
        (images[0].line, images[0].style),
        (2, QuoteStyle::DoubleQuoted)
    );
    assert_eq!(images[0].aliased_at, [9, 11]);
    let skipped = skipped(&refs);
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].line, 11);
    assert_eq!(
        skipped[0].reason,
        SkipReason::MarkerOnAlias { anchor_line: 2 }
    );
    assert_eq!(
        skipped[0]
            .marker
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("apps:sidecar")
    );

    let out = edited(ANCHORS, &[Edit::new(app, "127.0.0.1:15000/demo/app:1.5.0")]);
    assert_eq!(out, ANCHORS.replace("app:1.4.2", "app:1.5.0"));
}

#[test]
fn block_and_multi_line_scalars_are_reported_not_edited() {
    let refs = refs(BLOCK_SCALARS);
    assert!(
        marked(&refs).is_empty(),
        "a marker inside a block scalar is text: {refs:?}"
    );
    assert!(images(&refs).is_empty());
    let found: Vec<_> = skipped(&refs)
        .iter()
        .map(|s| (s.line, s.reason.clone(), s.marker.is_some()))
        .collect();
    assert_eq!(
        found,
        [
            (12, SkipReason::BlockScalar, true),
            (15, SkipReason::BlockScalar, false),
            (17, SkipReason::MultiLineScalar, false),
            (19, SkipReason::MarkerNotAttached, true),
        ]
    );
    let multi = skipped(&refs)[2];
    assert_eq!(
        multi.value.as_deref(),
        Some("127.0.0.1:15000/demo/app: 1.4.2")
    );
}

#[test]
fn unmarked_image_fields_must_be_strings() {
    let input = "a:\n  image: 42\nb:\n  image: ~\nc:\n  image:\nd:\n  image: !!str 1.10\ne:\n  image:\n    repository: x\n";
    let refs = refs(input);
    let images = images(&refs);
    assert_eq!(images.len(), 1, "{refs:?}");
    assert_eq!((images[0].value.as_str(), images[0].line), ("1.10", 8));
    assert_eq!(
        at(input, images[0]),
        "1.10",
        "the tag is skipped, not part of the value"
    );
    assert!(skipped(&refs).is_empty(), "{refs:?}");
}

#[test]
fn a_marker_is_authoritative_over_the_unmarked_field() {
    let input = "image: app:1 # {\"$imagepolicy\": \"apps:web\"}\n";
    let refs = refs(input);
    assert_eq!(refs.len(), 1);
    assert!(matches!(&refs[0], Reference::Marked { .. }));
}
