//! Merge → applied: a GitSync (interval 1h) over a forge repository holding one ConfigMap, new
//! commits brought in only by Gitea's own push webhook to the release deploy-synchronizer. Each
//! change is a branch and a pull request into main, made and found mergeable beforehand (not
//! timed); the clock runs from the merge API call until the apiserver shows the ConfigMap's new
//! value and until the GitSync's status names a new lastAppliedRevision (each polled every
//! 5 ms), which must be the merge commit.

use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime};

use deploy_synchronizer::resource::GitSync;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use serde_json::json;
use sluice_e2e::bench::{log_lines, since, summary};
use sluice_e2e::sync::{create_git_sync_spec, wait_applied};
use sluice_e2e::{TestNamespace, World};
use sluice_shared::forge::NewPullRequest;
use tokio::task::JoinHandle;

use crate::daemons::{Daemon, HOOK_SECRET};
use crate::memory::Peaks;
use crate::repo::{DEADLINE, Repo};

pub const HEADING: &str = "## merge → applied";
/// Measured merges, after one warm-up.
const MERGES: usize = 10;
const NAME: &str = "merge";
const FILE: &str = "app/configmap.yaml";
const POLL: Duration = Duration::from_millis(5);

fn config_map(value: &str) -> String {
    format!(
        "# Changed by each merged pull request.\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bench-value\ndata:\n  value: \"{value}\"\n"
    )
}

struct Sample {
    /// The wall clock at the merge call, to find the merge in the daemon's log.
    at: SystemTime,
    merge_commit: String,
    merge_call: Duration,
    to_value: Duration,
    to_status: Duration,
}

/// Polls `poll` every [`POLL`] until it holds; when it first held, or None after [`DEADLINE`].
fn poller<F, Fut>(poll: F) -> JoinHandle<Option<Instant>>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    tokio::spawn(async move {
        let started = Instant::now();
        while started.elapsed() < DEADLINE {
            if poll().await {
                return Some(Instant::now());
            }
            tokio::time::sleep(POLL).await;
        }
        None
    })
}

async fn applied(syncs: &Api<GitSync>) -> Option<String> {
    syncs.get(NAME).await.ok()?.status?.last_applied_revision
}

/// The figures, and the forge repository made (deleted by the caller once the daemon is gone).
pub async fn run(
    world: &'static World,
    ns: &TestNamespace,
    daemon: &Daemon,
    peaks: &Peaks,
) -> (String, String) {
    let mut report = format!(
        "{HEADING} (Gitea's push webhook → release deploy-synchronizer; GitSync over 1 ConfigMap, interval 1h, no spec.forge)\n"
    );
    let (repo, seed) = Repo::seed(world, "bench-forge-merge", &[(FILE, &config_map("v0"))]).await;
    create_git_sync_spec(
        ns,
        NAME,
        json!({
            "source": {"url": repo.url(), "ref": {"branch": "main"}, "path": "app",
                       "interval": "1h", "secretRef": {"name": "forge"}},
            "targetNamespace": ns.name(),
            "healthTimeout": "1m"
        }),
    )
    .await;
    repo.hook(&daemon.hook_url(), HOOK_SECRET).await;
    wait_applied(ns, NAME, &seed).await;

    let maps = ns.api::<ConfigMap>();
    let syncs = ns.api::<GitSync>();
    let mut samples = Vec::new();
    let mut failures = Vec::new();
    let (mut pushing, mut opening, mut checking) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..=MERGES {
        let value = format!("v{}", i + 1);
        let branch = format!("bench/change-{i}");
        let title = format!("bench-value: {value}");
        let prepared = Instant::now();
        repo.push(&branch, FILE, &config_map(&value), &title).await;
        pushing.push(prepared.elapsed());
        let prepared = Instant::now();
        let pr = repo
            .forge
            .open_pull_request(&NewPullRequest {
                head: branch.clone(),
                base: "main".into(),
                title: title.clone(),
                body: "A change of the bench.".into(),
                labels: Vec::new(),
            })
            .await
            .unwrap_or_else(|e| panic!("opening the pull request of {branch}: {e}"));
        opening.push(prepared.elapsed());
        let prepared = Instant::now();
        repo.wait_mergeable(pr.number).await;
        checking.push(prepared.elapsed());
        let before = applied(&syncs).await;

        let value_seen = {
            let (maps, value) = (maps.clone(), value.clone());
            poller(move || {
                let (maps, value) = (maps.clone(), value.clone());
                async move {
                    maps.get("bench-value")
                        .await
                        .ok()
                        .and_then(|cm| cm.data?.get("value").cloned())
                        == Some(value)
                }
            })
        };
        let status_seen = {
            let (syncs, before) = (syncs.clone(), before.clone());
            poller(move || {
                let (syncs, before) = (syncs.clone(), before.clone());
                async move {
                    let now = applied(&syncs).await;
                    now.is_some() && now != before
                }
            })
        };
        let at = SystemTime::now();
        let start = Instant::now();
        let merged = repo.forge.merge_pull_request(pr.number).await;
        let merge_call = start.elapsed();
        if let Err(e) = merged {
            failures.push(format!("{value}: merging #{}: {e}", pr.number));
            value_seen.abort();
            status_seen.abort();
            continue;
        }
        let value_at = value_seen.await.expect("the poller");
        let status_at = status_seen.await.expect("the poller");
        let merge_commit = repo
            .forge
            .pull_request(pr.number)
            .await
            .ok()
            .and_then(|pr| pr.merge_commit)
            .unwrap_or_default();
        let now_applied = applied(&syncs).await.unwrap_or_default();
        let (Some(value_at), Some(status_at)) = (value_at, status_at) else {
            failures.push(format!(
                "{value}: not applied within {DEADLINE:?} (value seen {}, status moved {})",
                value_at.is_some(),
                status_at.is_some()
            ));
            continue;
        };
        if now_applied != merge_commit {
            failures.push(format!(
                "{value}: lastAppliedRevision {now_applied} is not the merge commit {merge_commit}"
            ));
        }
        if i == 0 {
            let _ = writeln!(
                report,
                "warm-up merge: value applied after {}",
                sluice_e2e::bench::ms(value_at - start)
            );
        } else {
            samples.push(Sample {
                at,
                merge_commit,
                merge_call,
                to_value: value_at - start,
                to_status: status_at - start,
            });
        }
        // The health assessment's status write follows the applied one: let it land.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let column = |f: fn(&Sample) -> Duration| samples.iter().map(f).collect::<Vec<_>>();
    let _ = writeln!(
        report,
        "merges: {} measured; each a branch pushed and a pull request opened beforehand, not timed:",
        samples.len(),
    );
    let _ = writeln!(
        report,
        "  the bench's git push of the branch to Gitea:             {}",
        summary(&pushing)
    );
    let _ = writeln!(
        report,
        "  the pull request's POST (Forge::open_pull_request):     {}",
        summary(&opening)
    );
    let _ = writeln!(
        report,
        "  then until Gitea says it is mergeable (polled):         {}",
        summary(&checking)
    );
    let _ = writeln!(
        report,
        "merge API call → new ConfigMap value in the apiserver:     {}   target p50 < 500 ms",
        summary(&column(|s| s.to_value))
    );
    let _ = writeln!(
        report,
        "merge API call → status lastAppliedRevision = merge:      {}",
        summary(&column(|s| s.to_status))
    );
    let _ = writeln!(
        report,
        "  the merge API call itself (Gitea answers):              {}",
        summary(&column(|s| s.merge_call))
    );
    report.push_str(&deliveries(&daemon.log_text(), &samples));
    for f in &failures {
        let _ = writeln!(report, "FAILED {f}");
    }
    let _ = writeln!(report, "memory: {}", peaks.of("deploy-synchronizer"));
    report.push('\n');
    (report, repo.name)
}

/// Gitea's webhook delivery, from the daemon's log: the merge call → "push received" naming
/// the merge commit, → "applied" of it.
fn deliveries(log: &str, samples: &[Sample]) -> String {
    let lines = log_lines(log);
    let (mut received, mut after_answer, mut applied) = (Vec::new(), Vec::new(), Vec::new());
    for s in samples.iter().filter(|s| !s.merge_commit.is_empty()) {
        let merged: chrono::DateTime<chrono::Utc> = s.at.into();
        let find = |message: &str, field: &str| {
            lines
                .iter()
                .find(|l| {
                    l.at >= merged
                        && l.message == message
                        && l.field(field).contains(&s.merge_commit)
                })
                .map(|l| since(s.at, l.at))
        };
        if let (Some(r), Some(a)) = (
            find("push received", "revision"),
            find("applied", "revision"),
        ) {
            received.push(r);
            after_answer.push(r.saturating_sub(s.merge_call));
            applied.push(a);
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  from the daemon's log ({} of the merges): merge call → Gitea's push webhook received: {}",
        received.len(),
        summary(&received)
    );
    let _ = writeln!(
        out,
        "  the merge call's answer → that webhook received:        {}",
        summary(&after_answer)
    );
    let _ = writeln!(
        out,
        "  merge call → the daemon's \"applied\" (before its status write):  {}",
        summary(&applied)
    );
    out
}
