//! A rough timing of a 5,000-line file, for humans: no timing asserts (shared CI machines make
//! them flaky). Run with
//! `cargo test --release -p config-updater --lib edit::tests::perf -- --ignored --nocapture`.

use std::time::Instant;

use super::*;
use crate::edit::Document;

/// One Deployment with comments, a marker, flow collections and non-ASCII text (19 lines).
fn deployment(i: usize) -> String {
    format!(
        "# Déploiement n°{i} — 日本\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  labels: {{app: app-{i}, tier: web}}\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n      - name: web\n        image: 127.0.0.1:15000/demo/app-{i}:1.4.2 # {{\"$imagepolicy\": \"apps:app-{i}\"}}\n        args: [\"--port\", \"8080\"]\n        env:\n        - name: MODE\n          value: \"production\"\n      - name: sidecar\n        image: 'ghcr.io/acme/sidecar:0.1.0'\n"
    )
}

/// 5,000 lines as 250 documents.
fn many_documents() -> String {
    (0..250)
        .map(|i| format!("---\n{}", deployment(i)))
        .collect()
}

/// 5,000 lines as one document (a Helm values file of that size): nothing to narrow the parse to.
fn one_document() -> String {
    let mut s = String::from("items:\n");
    for i in 0..263 {
        for (n, line) in deployment(i).lines().enumerate() {
            s.push_str(if n == 0 { "- " } else { "  " });
            s.push_str(line);
            s.push('\n');
        }
    }
    s
}

fn measure(label: &str, input: &str) {
    let rounds = 20;
    let start = Instant::now();
    let mut found = Vec::new();
    for _ in 0..rounds {
        found = find(input.as_bytes()).unwrap();
    }
    let find_time = start.elapsed() / rounds;
    let marked = marked(&found);
    let middle = marked[marked.len() / 2].1.clone();
    let edit = [Edit::new(&middle, middle.value.replace("1.4.2", "1.4.3"))];
    let start = Instant::now();
    let mut out = Vec::new();
    for _ in 0..rounds {
        out = apply(input.as_bytes(), &edit).unwrap();
    }
    let apply_time = start.elapsed() / rounds;
    assert_eq!(out.len(), input.len());
    let document = Document::parse(input.as_bytes()).unwrap();
    let start = Instant::now();
    for _ in 0..rounds {
        out = document.apply(&edit).unwrap();
    }
    let document_apply_time = start.elapsed() / rounds;
    assert_eq!(out.len(), input.len());
    println!(
        "{label}: {} lines, {} bytes, {} references: find {find_time:?}, apply {apply_time:?}, \
         Document::apply {document_apply_time:?}",
        input.lines().count(),
        input.len(),
        found.len()
    );
}

#[test]
#[ignore = "timing probe; run by hand in release mode"]
fn five_thousand_lines() {
    measure("250 documents", &many_documents());
    measure("one document", &one_document());
}
