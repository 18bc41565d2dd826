//! kustomize `images:` entries: collected per document, offered once we know the document is a
//! kustomization (a `kind` other than `Kustomization` or `Component` rules it out; kustomization
//! files often have no `kind` at all).

use std::collections::BTreeMap;

use super::{Finder, SkipReason};
use crate::edit::{KustomizeImage, Reference, ScalarValue};

/// The kustomize `images:` fields of one entry, before we know whether the document is a
/// kustomization.
#[derive(Default)]
pub(super) struct KustomizeEntry {
    name: Option<ScalarValue>,
    new_name: Option<ScalarValue>,
    new_tag: Option<ScalarValue>,
    digest: Option<ScalarValue>,
    /// Marked or unusable fields: the entry is not offered as an unmarked entry.
    pub excluded: bool,
}

#[derive(Default)]
pub(super) struct DocumentState {
    pub kind: Option<String>,
    pub kustomize: BTreeMap<usize, KustomizeEntry>,
}

impl Finder<'_, '_> {
    /// `(entry index, field)` when the current value is a field of a kustomize `images:` entry.
    pub(super) fn kustomize_field(&self) -> Option<(usize, &str)> {
        match self.stack.as_slice() {
            [root, images, entry]
                if root.is_map
                    && root.key.as_deref() == Some("images")
                    && !images.is_map
                    && entry.is_map
                    && !entry.expecting_key =>
            {
                let field = entry.key.as_deref()?;
                matches!(field, "name" | "newName" | "newTag" | "digest")
                    .then_some((images.index, field))
            }
            _ => None,
        }
    }

    pub(super) fn record_kustomize_field(
        &mut self,
        index: usize,
        field: &str,
        scalar: Result<ScalarValue, (String, SkipReason)>,
        at: usize,
    ) {
        let scalar = match scalar {
            Ok(scalar) => scalar,
            Err((value, reason)) => {
                if reason != SkipReason::EmptyValue {
                    let reference = self.skipped(at, Some(&value), None, reason);
                    self.refs.push(reference);
                }
                self.doc.kustomize.entry(index).or_default().excluded = true;
                return;
            }
        };
        let entry = self.doc.kustomize.entry(index).or_default();
        let slot = match field {
            "name" => &mut entry.name,
            "newName" => &mut entry.new_name,
            "newTag" => &mut entry.new_tag,
            _ => &mut entry.digest,
        };
        *slot = Some(scalar);
    }

    pub(super) fn end_document(&mut self) {
        let doc = std::mem::take(&mut self.doc);
        if !matches!(
            doc.kind.as_deref(),
            None | Some("Kustomization" | "Component")
        ) {
            return;
        }
        for entry in doc.kustomize.into_values() {
            if let (false, Some(name)) = (entry.excluded, entry.name) {
                self.refs
                    .push(Reference::KustomizeImage(Box::new(KustomizeImage {
                        name,
                        new_name: entry.new_name,
                        new_tag: entry.new_tag,
                        digest: entry.digest,
                    })));
            }
        }
    }
}
