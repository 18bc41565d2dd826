//! Multi-document files: only the edited documents are re-parsed, which must not change what is
//! checked. And [`Document`]: one parse for find-then-apply.

use super::*;
use crate::edit::Document;

const ANCHORED_DOCS: &str = "\
x: &a 1
y: *a
---
base: &img 127.0.0.1:15000/demo/app:1.4.2 # {\"$imagepolicy\": \"apps:web\"}
jobs:
- image: *img
- image: &other 'ghcr.io/acme/other:1.0'
- image: *other
...
# a bare document after the end marker
z: &b [1, 2]
w: *b
";

#[test]
fn document_applies_what_find_found_with_one_parse() {
    let document = Document::parse(ANCHORED_DOCS.as_bytes()).unwrap();
    let found = document.references();
    assert_eq!(found, refs(ANCHORED_DOCS));
    let (_, base) = marked(&found)[0];
    assert_eq!(base.aliased_at, [6]);
    let other = images(&found)[0];
    assert_eq!(
        (other.value.as_str(), other.aliased_at.as_slice()),
        ("ghcr.io/acme/other:1.0", [8].as_slice())
    );
    let edits = [
        Edit::new(base, "127.0.0.1:15000/demo/app:1.4.3"),
        Edit::new(other, "ghcr.io/acme/other:1.1"),
    ];
    // The document's events come from the whole file (anchor ids counted from its first
    // document), the re-parsed output's from the edited document only: both must agree.
    let want = ANCHORED_DOCS
        .replace("app:1.4.2", "app:1.4.3")
        .replace("other:1.0", "other:1.1");
    assert_eq!(
        String::from_utf8(document.apply(&edits).unwrap()).unwrap(),
        want
    );
    assert_eq!(edited(ANCHORED_DOCS, &edits), want);
}

#[test]
fn edits_in_distant_documents_are_checked_together() {
    let refs = refs(MULTI_DOC);
    let report = marked(&refs)[0].1;
    let shell = images(&refs)[0];
    let edits = [
        Edit::new(shell, "127.0.0.1:15000/demo/app:1.4.3"),
        Edit::new(report, "127.0.0.1:15000/demo/report:0.4.0"),
    ];
    let want = MULTI_DOC
        .replace("app:1.4.2", "app:1.4.3")
        .replace("report:0.3.0", "report:0.4.0");
    assert_eq!(edited(MULTI_DOC, &edits), want);
}

#[test]
fn files_with_directives_are_parsed_whole() {
    let input = "%YAML 1.2\n---\nimage: app:1.0\n---\nimage: app:2.0\n";
    let found = refs(input);
    let second = images(&found)[1];
    assert_eq!(second.document, 1);
    assert_eq!(
        edited(input, &[Edit::new(second, "app:2.1")]),
        input.replace("2.0", "2.1")
    );
}

#[test]
fn a_broken_document_elsewhere_fails_find_but_not_the_documents_being_edited() {
    // `find` refuses the file, so the daemon never plans edits for it; `apply` checks the
    // documents it edits and leaves the others' bytes alone.
    let good = "image: app:1.0\n";
    let input = format!("{good}---\nbroken: [\n");
    assert!(find(input.as_bytes()).is_err());
    let image = images(&refs(good))[0].clone();
    let out = apply(input.as_bytes(), &[Edit::new(&image, "app:1.1")]).unwrap();
    assert_eq!(out, input.replace("1.0", "1.1").into_bytes());
}
