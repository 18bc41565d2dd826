//! kustomization.yaml `images:` entries, marked and unmarked.

use super::*;
use crate::edit::{ImagePart, QuoteStyle};

#[test]
fn kustomize_entries_are_offered_with_their_fields() {
    let refs = refs(KUSTOMIZATION);
    let entries = kustomize(&refs);
    let names: Vec<_> = entries.iter().map(|k| k.name.value.as_str()).collect();
    assert_eq!(
        names,
        ["127.0.0.1:15000/demo/app", "ghcr.io/acme/worker", "redis"]
    );
    let app = entries[0];
    let tag = app.new_tag.as_ref().expect("newTag");
    assert_eq!(
        (tag.value.as_str(), tag.style, tag.line),
        ("1.0.0", QuoteStyle::DoubleQuoted, 9)
    );
    assert_eq!(at(KUSTOMIZATION, tag), "1.0.0");
    assert_eq!((app.new_name.as_ref(), app.digest.as_ref()), (None, None));
    let worker = entries[1];
    assert_eq!(
        worker.new_name.as_ref().map(|s| s.value.as_str()),
        Some("127.0.0.1:15000/mirror/worker")
    );
    assert_eq!(
        worker.new_tag.as_ref().map(|s| s.value.as_str()),
        Some("v2.3.1")
    );
    assert_eq!(
        worker.digest.as_ref().map(|s| s.value.as_str()),
        Some(DIGEST)
    );
    assert_eq!(worker.name.path, "images[1].name");
    // No newTag to update: the caller reports it rather than inserting a line.
    assert_eq!(entries[2].new_tag, None);
}

#[test]
fn a_marked_kustomize_field_wins_over_the_entry() {
    let refs = refs(KUSTOMIZATION);
    let marked = marked(&refs);
    assert_eq!(marked.len(), 1);
    let (marker, scalar) = marked[0];
    assert_eq!(
        (marker.to_string().as_str(), marker.part),
        ("apps:nginx:tag", ImagePart::Tag)
    );
    assert_eq!((scalar.value.as_str(), scalar.line), ("1.25.3", 15));
    assert!(kustomize(&refs).iter().all(|k| k.name.value != "nginx"));
}

#[test]
fn quoted_new_tag_stays_quoted() {
    let refs = refs(KUSTOMIZATION);
    let tag = kustomize(&refs)[0].new_tag.clone().expect("newTag");
    let out = edited(KUSTOMIZATION, &[Edit::new(&tag, "1.1.0")]);
    assert_eq!(
        out,
        KUSTOMIZATION.replace("newTag: \"1.0.0\"", "newTag: \"1.1.0\"")
    );
}

#[test]
fn tag_and_digest_of_one_entry_in_one_apply() {
    let refs = refs(KUSTOMIZATION);
    let worker = kustomize(&refs)[1].clone();
    let edits = [
        Edit::new(worker.digest.as_ref().unwrap(), DIGEST2),
        Edit::new(worker.new_tag.as_ref().unwrap(), "v2.4.0"),
    ];
    let out = edited(KUSTOMIZATION, &edits);
    assert_eq!(
        out,
        KUSTOMIZATION
            .replace("v2.3.1", "v2.4.0")
            .replace(DIGEST, DIGEST2)
    );
}

#[test]
fn images_lists_outside_kustomizations_are_not_kustomize_entries() {
    let other = "kind: ConfigMap\nimages:\n  - name: app\n    newTag: 1.0.0\n";
    assert!(kustomize(&refs(other)).is_empty());
    let bare = "images:\n- name: app\n  newTag: 1.0.0\n";
    assert_eq!(
        kustomize(&refs(bare)).len(),
        1,
        "kind and apiVersion are optional in kustomizations"
    );
    let component = "kind: Component\nimages:\n- {name: app, newTag: 1.0.0}\n";
    let found = refs(component);
    let tag = kustomize(&found)[0].new_tag.clone().unwrap();
    let out = edited(component, &[Edit::new(&tag, "1.0.1")]);
    assert_eq!(out, component.replace("1.0.0", "1.0.1"));
}
