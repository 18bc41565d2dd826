//! Tests of the pure write-back planner (exact output bytes on realistic files) and of the
//! commit message, its trailers and revert detection.

mod message_tests;
mod plan_tests;

use std::collections::BTreeMap;

use super::Chosen;
use crate::edit::{ImageRef, PolicyId};

pub(super) const DIGEST: &str =
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

pub(super) fn policy(ns: &str, name: &str) -> PolicyId {
    PolicyId {
        namespace: ns.into(),
        name: name.into(),
    }
}

pub(super) fn chosen(entries: &[(&str, &str)]) -> BTreeMap<PolicyId, Chosen> {
    entries
        .iter()
        .map(|(p, image)| {
            let (ns, name) = p.split_once('/').unwrap();
            (
                policy(ns, name),
                Chosen {
                    image: ImageRef::parse(image).unwrap(),
                },
            )
        })
        .collect()
}

pub(super) fn file(path: &str, text: &str) -> (String, Vec<u8>) {
    (path.to_string(), text.as_bytes().to_vec())
}
