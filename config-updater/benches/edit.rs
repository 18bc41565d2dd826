//! Benchmark: exact-byte edits of a 5,000-line YAML file (target: < 5 ms per edit).
//! `cargo bench -p config-updater --bench edit` prints the figures and writes them to
//! `target/bench/config-updater-edit.txt`. No timing asserts anywhere: shared machines vary.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use config_updater::edit::{Document, Edit, Reference, ScalarValue, apply, find};

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

fn marked(refs: &[Reference]) -> Vec<&ScalarValue> {
    refs.iter()
        .filter_map(|r| match r {
            Reference::Marked { scalar, .. } => Some(scalar),
            _ => None,
        })
        .collect()
}

fn measure(label: &str, input: &str) -> String {
    let rounds: u32 = 50;
    let start = Instant::now();
    let mut found = Vec::new();
    for _ in 0..rounds {
        found = find(input.as_bytes()).unwrap();
    }
    let find_time = start.elapsed() / rounds;
    let marked = marked(&found);
    let middle = marked[marked.len() / 2].clone();
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
    format!(
        "{label}: {} lines, {} bytes, {} references: find {}, apply {}, Document::apply {}, \
         find+Document::apply {}\n",
        input.lines().count(),
        input.len(),
        found.len(),
        ms(find_time),
        ms(apply_time),
        ms(document_apply_time),
        ms(find_time + document_apply_time),
    )
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let mut report = String::from("# config-updater edit benchmark (mean of 50 rounds, release)\n");
    for (label, input) in [
        ("250 documents", many_documents()),
        ("one document", one_document()),
    ] {
        let line = measure(label, &input);
        print!("{line}");
        report.push_str(&line);
    }
    let _ = writeln!(
        report,
        "machine: {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&dir).expect("target/bench");
    std::fs::write(dir.join("config-updater-edit.txt"), report).expect("the figures file");
}
