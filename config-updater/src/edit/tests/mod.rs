//! Tests of `find` and `apply` on realistic, awkward files (fixtures in `../testdata/`). Every
//! edit test asserts the exact output bytes: the input with only the value's bytes replaced.

mod apply_refusals;
mod awkward_files;
mod documents;
mod find_kustomize;
mod find_values;
mod find_workloads;

use super::{Edit, KustomizeImage, Reference, ScalarValue, SetterMarker, Skipped, apply, find};

pub(super) const DEPLOYMENT: &str = include_str!("../testdata/deployment.yaml");
pub(super) const VALUES: &str = include_str!("../testdata/values.yaml");
pub(super) const KUSTOMIZATION: &str = include_str!("../testdata/kustomization.yaml");
pub(super) const MULTI_DOC: &str = include_str!("../testdata/multi-doc.yaml");
pub(super) const ANCHORS: &str = include_str!("../testdata/anchors.yaml");
pub(super) const BLOCK_SCALARS: &str = include_str!("../testdata/block-scalars.yaml");
pub(super) const MALFORMED: &str = include_str!("../testdata/malformed.yaml");

pub(super) const DIGEST: &str =
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
pub(super) const DIGEST2: &str =
    "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

pub(super) fn refs(input: &str) -> Vec<Reference> {
    find(input.as_bytes()).unwrap_or_else(|e| panic!("find: {e}"))
}

pub(super) fn marked(refs: &[Reference]) -> Vec<(&SetterMarker, &ScalarValue)> {
    refs.iter()
        .filter_map(|r| match r {
            Reference::Marked { marker, scalar } => Some((marker, scalar)),
            _ => None,
        })
        .collect()
}

pub(super) fn images(refs: &[Reference]) -> Vec<&ScalarValue> {
    refs.iter()
        .filter_map(|r| match r {
            Reference::Image(s) => Some(s),
            _ => None,
        })
        .collect()
}

pub(super) fn kustomize(refs: &[Reference]) -> Vec<&KustomizeImage> {
    refs.iter()
        .filter_map(|r| match r {
            Reference::KustomizeImage(k) => Some(k.as_ref()),
            _ => None,
        })
        .collect()
}

pub(super) fn skipped(refs: &[Reference]) -> Vec<&Skipped> {
    refs.iter()
        .filter_map(|r| match r {
            Reference::Skipped(s) => Some(s),
            _ => None,
        })
        .collect()
}

/// Apply edits and return the output as text (inputs are UTF-8, so outputs are too).
pub(super) fn edited(input: &str, edits: &[Edit]) -> String {
    let out = apply(input.as_bytes(), edits).unwrap_or_else(|e| panic!("apply: {e}"));
    String::from_utf8(out).expect("UTF-8 output")
}

/// `input` with the `nth` (0-based) occurrence of `from` replaced by `to`: what an edit of exactly
/// that value's bytes must produce.
pub(super) fn replace_nth(input: &str, from: &str, to: &str, nth: usize) -> String {
    let (at, _) = input
        .match_indices(from)
        .nth(nth)
        .unwrap_or_else(|| panic!("no {from:?} #{nth}"));
    format!("{}{to}{}", &input[..at], &input[at + from.len()..])
}

/// The bytes a span covers, to check spans point at the value.
pub(super) fn at(input: &str, scalar: &ScalarValue) -> String {
    input[scalar.span.range()].to_string()
}
