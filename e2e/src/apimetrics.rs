//! Write requests a kube-apiserver served, from its own `/metrics`: `apiserver_request_total`
//! by `group`, `resource`, `subresource` and `verb`, dry runs apart. The counter has no client or
//! namespace label: who wrote is known only by which apiserver served it, so the stories and
//! benches that count writes give the synchronizer an apiserver of its own
//! ([`crate::apiserver::ExtraApiserver`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use kube::Client;

/// Mutating verbs as the apiserver labels them.
const WRITE_VERBS: &[&str] = &[
    "POST",
    "PUT",
    "PATCH",
    "APPLY",
    "DELETE",
    "DELETECOLLECTION",
];

/// The resources the bench's GitSyncs manage, and their own.
pub const WATCHED: &[&str] = &["configmaps", "services", "deployments", "gitsyncs"];

/// `(group, resource, subresource, verb)` → requests (every code).
pub type Writes = BTreeMap<(String, String, String, String), u64>;

/// The labels of one sample line `name{a="x",b="y"} value`, and its value.
fn sample(line: &str, name: &str) -> Option<(BTreeMap<String, String>, f64)> {
    let rest = line.strip_prefix(name)?.strip_prefix('{')?;
    let (labels, value) = rest.rsplit_once("} ")?;
    let mut map = BTreeMap::new();
    let mut chars = labels.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('"') {
            return None;
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => value.extend(chars.next()),
                '"' => break,
                c => value.push(c),
            }
        }
        map.insert(key.trim_start_matches(',').to_owned(), value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    Some((map, value.trim().parse().ok()?))
}

/// The non-dry-run writes to `resources` in a `/metrics` text.
pub fn parse(text: &str, resources: &[&str]) -> Writes {
    parse_requests(text, resources, false)
}

/// The dry-run writes to `resources` in a `/metrics` text.
pub fn parse_dry_runs(text: &str, resources: &[&str]) -> Writes {
    parse_requests(text, resources, true)
}

fn parse_requests(text: &str, resources: &[&str], dry_runs: bool) -> Writes {
    let mut writes = Writes::new();
    for line in text.lines() {
        let Some((labels, value)) = sample(line, "apiserver_request_total") else {
            continue;
        };
        let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
        if !WRITE_VERBS.contains(&label("verb").as_str())
            || label("dry_run").is_empty() == dry_runs
            || !resources.contains(&label("resource").as_str())
        {
            continue;
        }
        let key = (
            label("group"),
            label("resource"),
            label("subresource"),
            label("verb"),
        );
        *writes.entry(key).or_default() += value as u64;
    }
    writes
}

/// The apiserver's `/metrics` text.
pub async fn metrics_text(client: &Client) -> Result<String, String> {
    let request = axum::http::Request::get("/metrics")
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    client
        .request_text(request)
        .await
        .map_err(|e| format!("GET /metrics: {e}"))
}

/// The apiserver's writes to [`WATCHED`] resources, dry runs left out.
pub async fn writes(client: &Client) -> Result<Writes, String> {
    Ok(parse(&metrics_text(client).await?, WATCHED))
}

/// How many requests of `verb` to `resource` `writes` holds (every group and subresource).
pub fn count(writes: &Writes, resource: &str, verb: &str) -> u64 {
    writes
        .iter()
        .filter(|((_, r, _, v), _)| r == resource && v == verb)
        .map(|(_, n)| n)
        .sum()
}

/// `after - before`, only what grew.
pub fn grown(before: &Writes, after: &Writes) -> Writes {
    after
        .iter()
        .filter_map(|(k, &v)| {
            let d = v.saturating_sub(before.get(k).copied().unwrap_or(0));
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

/// `total (resource/sub VERB n, …)`.
pub fn describe(writes: &Writes) -> String {
    let total: u64 = writes.values().sum();
    if total == 0 {
        return "0".into();
    }
    let mut text = format!("{total} (");
    for (i, ((_, resource, sub, verb), n)) in writes.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let sub = if sub.is_empty() {
            String::new()
        } else {
            format!("/{sub}")
        };
        let _ = write!(text, "{sep}{resource}{sub} {verb} {n}");
    }
    text.push(')');
    text
}
