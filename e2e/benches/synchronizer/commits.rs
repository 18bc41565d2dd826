//! Commit → applied, webhook-triggered: a GitSync's repository gets commits that each change one
//! ConfigMap's `value`, each announced by a signed GitHub push; each is timed from the push's
//! POST until a watch sees the new value and until the GitSync's status names the commit, and
//! the requests the daemon's own apiserver served meanwhile are counted per commit.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use deploy_synchronizer::resource::GitSync;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use sluice_e2e::apimetrics::{self, Writes};
use sluice_e2e::bench::summary;
use sluice_e2e::{TestNamespace, World, http};
use sluice_shared::webhook::sign_hmac_sha256;

use crate::daemon::{Daemon, WEBHOOK_SECRET};
use crate::sync_support::{commit_dir, github_push};
use crate::watch::{self, Step};

/// The GitSync to commit to, and the ConfigMap whose `value` the commits change.
pub struct Target<'a> {
    pub world: &'a World,
    pub ns: &'a TestNamespace,
    pub daemon: &'a Daemon,
    /// The daemon's own apiserver, whose metrics count its requests alone.
    pub apiserver: &'a Client,
    pub repo: &'a str,
    pub sync: &'a str,
    /// The work tree the commits are made from.
    pub dir: &'a Path,
    pub config_map: &'a str,
}

/// What `count` commits took.
pub struct Timings {
    pub commits: usize,
    pub to_object: Vec<Duration>,
    pub to_status: Vec<Duration>,
    pub committing: Vec<Duration>,
    /// Writes to the managed resources and `gitsyncs`, dry runs left out, over every commit.
    pub writes: Writes,
    /// Dry runs to the same, over every commit.
    pub dry_runs: Writes,
}

fn value_of(cm: &ConfigMap) -> Option<&str> {
    cm.data.as_ref()?.get("value").map(String::as_str)
}

fn value_is(want: String) -> Step<ConfigMap> {
    Box::new(move |cm: &ConfigMap| value_of(cm) == Some(want.as_str()))
}

async fn requests(client: &Client) -> (Writes, Writes) {
    let text = apimetrics::metrics_text(client)
        .await
        .expect("the bench apiserver's /metrics");
    (
        apimetrics::parse(&text, apimetrics::WATCHED),
        apimetrics::parse_dry_runs(&text, apimetrics::WATCHED),
    )
}

/// Makes `count` commits to `target`, the i-th written by `write(dir, value)` with value
/// `v<i + 2>`, and times each.
pub async fn run(target: &Target<'_>, count: usize, write: impl Fn(&Path, &str)) -> Timings {
    let url = target.world.git_http_url(target.repo);
    let maps = target.ns.api::<ConfigMap>();
    let syncs = target.ns.api::<GitSync>();
    let (writes_before, dry_runs_before) = requests(target.apiserver).await;
    let mut timings = Timings {
        commits: count,
        to_object: Vec::new(),
        to_status: Vec::new(),
        committing: Vec::new(),
        writes: Writes::new(),
        dry_runs: Writes::new(),
    };
    for i in 0..count {
        let value = format!("v{}", i + 2);
        let cm = maps.get(target.config_map).await.expect("the ConfigMap");
        let sync = syncs.get(target.sync).await.expect("the GitSync");
        write(target.dir, &value);
        let started = Instant::now();
        let message = format!("{}: value {value}", target.config_map);
        let commit = commit_dir(target.world, target.repo, target.dir, &message).await;
        timings.committing.push(started.elapsed());
        let object = watch::spawn(
            maps.clone(),
            target.config_map,
            cm.metadata.resource_version.clone().unwrap_or_default(),
            vec![value_is(value.clone())],
            Duration::from_secs(60),
        );
        let wanted = commit.clone();
        let status = watch::spawn(
            syncs.clone(),
            target.sync,
            sync.metadata.resource_version.clone().unwrap_or_default(),
            vec![Box::new(move |s: &GitSync| {
                s.status
                    .as_ref()
                    .and_then(|s| s.last_applied_revision.as_deref())
                    == Some(wanted.as_str())
            })],
            Duration::from_secs(60),
        );
        let body = github_push(&url, &commit);
        let signature = sign_hmac_sha256(WEBHOOK_SECRET, body.as_bytes());
        let headers = [
            ("Content-Type", "application/json"),
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", signature.as_str()),
        ];
        let pushed = Instant::now();
        let answer = http::post(&target.daemon.addr, "/webhook/github", &headers, &body).await;
        assert_eq!(answer, 202, "the webhook answered {answer}");
        let seen = object
            .await
            .expect("the watch task")
            .expect("the new value");
        let applied = status.await.expect("the watch task").expect("the status");
        timings.to_object.push(seen[0] - pushed);
        timings.to_status.push(applied[0] - pushed);
        // The health assessment's status write follows the applied one: let it land.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (writes_after, dry_runs_after) = requests(target.apiserver).await;
    timings.writes = apimetrics::grown(&writes_before, &writes_after);
    timings.dry_runs = apimetrics::grown(&dry_runs_before, &dry_runs_after);
    timings
}

/// Per commit: `total / commits` with the breakdown as [`apimetrics::describe`] gives it.
fn per_commit(writes: &Writes, commits: usize) -> String {
    let total: u64 = writes.values().sum();
    format!(
        "{:.1} per commit; all {commits} commits: {}",
        total as f64 / commits.max(1) as f64,
        apimetrics::describe(writes)
    )
}

/// The figures of `timings`, with the targets of the object and the status lines.
pub fn report(out: &mut String, timings: &Timings, object_target: &str, status_target: &str) {
    let _ = writeln!(
        out,
        "commit → applied, webhook-triggered, {} commits (from the signed push's POST; the commit itself took {}):",
        timings.commits,
        summary(&timings.committing)
    );
    let _ = writeln!(
        out,
        "  new ConfigMap value seen by a watch:           {}   {object_target}",
        summary(&timings.to_object)
    );
    let _ = writeln!(
        out,
        "  GitSync status lastAppliedRevision = commit:  {}   {status_target}",
        summary(&timings.to_status)
    );
    let _ = writeln!(
        out,
        "  writes by the daemon (its apiserver; configmaps/services/deployments/gitsyncs): {}",
        per_commit(&timings.writes, timings.commits)
    );
    let _ = writeln!(
        out,
        "  dry runs by the daemon (same resources):      {}",
        per_commit(&timings.dry_runs, timings.commits)
    );
}
