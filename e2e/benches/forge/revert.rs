//! Health verdict → revert pull request opened: a GitSync with `rollback: {enabled: true}`,
//! `forge: {}` and `healthTimeout: 3s` over one Deployment on a forge repository (Gitea's push
//! webhook brings each commit in). Each sample commits a crash-looping tag (the world's kwok
//! crash-loops tags whose last number is 13) to main; the clock runs from the moment the
//! GitSync's status first shows the failed verdict (the revision's `history[].failedAt`, polled
//! every 10 ms) until the forge has the pull request of `sluice/rollback/<short>` (polled every
//! 15 ms). Merging it through the API, and waiting until the revert is applied and healthy,
//! resets the cluster for the next sample (not timed).

use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use deploy_synchronizer::resource::{GitSync, HistoryEntry};
use serde_json::json;
use sluice_e2e::bench::{LogLine, log_lines, ms, since, summary};
use sluice_e2e::sync::{Revisions, create_git_sync_spec, wait_status_within};
use sluice_e2e::{Conditions, TestNamespace, World, unique_name};

use crate::daemons::{Daemon, HOOK_SECRET};
use crate::memory::Peaks;
use crate::repo::{DEADLINE, Repo};

pub const HEADING: &str = "## health verdict → revert pull request opened";
/// Measured reverts, after one warm-up.
const REVERTS: usize = 5;
const NAME: &str = "revert";
const FILE: &str = "deploy/deployment.yaml";
const HEALTH_TIMEOUT: &str = "3s";
const STATUS_POLL: Duration = Duration::from_millis(10);
const FORGE_POLL: Duration = Duration::from_millis(15);

fn deployment(image: &str) -> String {
    format!(
        "# The app; a tag ending in 13 crash-loops in the world.\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: app}}\n  template:\n    metadata:\n      labels: {{app: app}}\n    spec:\n      containers:\n        - name: app\n          image: {image}\n"
    )
}

struct Sample {
    /// The wall clock when the bench first saw the verdict, to place the daemon's log lines.
    verdict_at: SystemTime,
    branch: String,
    /// Verdict seen → the revert's pull request seen on the forge.
    to_pull_request: Duration,
    /// The commit's push → verdict seen (webhook, apply, the health timeout, the health polls).
    push_to_verdict: Duration,
    /// `failedAt - appliedAt` of the revision, from its history entry.
    applied_to_failed: Option<Duration>,
}

fn timestamp(text: Option<&str>) -> Option<DateTime<Utc>> {
    text?.parse().ok()
}

/// The figures, and the forge repository made (deleted by the caller once the daemon is gone).
pub async fn run(
    world: &'static World,
    ns: &TestNamespace,
    daemon: &Daemon,
    peaks: &Peaks,
) -> (String, String) {
    let mut report = format!(
        "{HEADING} (GitSync with rollback and spec.forge, healthTimeout {HEALTH_TIMEOUT}, one Deployment; release deploy-synchronizer)\n"
    );
    let path = format!("bench/{}/app", unique_name("forge-revert"));
    let tags: Vec<String> = std::iter::once("1.0.0".to_owned())
        .chain((1..=REVERTS + 1).map(|i| format!("1.{i}.13")))
        .collect();
    let refs: Vec<String> = tags.iter().map(|t| format!("{path}:{t}")).collect();
    world
        .push_image(&refs.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    let image = |tag: &str| format!("{}/{path}:{tag}", world.registry());
    let (repo, seed) = Repo::seed(
        world,
        "bench-forge-revert",
        &[(FILE, &deployment(&image("1.0.0")))],
    )
    .await;
    create_git_sync_spec(
        ns,
        NAME,
        json!({
            "source": {"url": repo.url(), "ref": {"branch": "main"}, "path": "deploy",
                       "interval": "1h", "secretRef": {"name": "forge"}},
            "targetNamespace": ns.name(),
            "healthTimeout": HEALTH_TIMEOUT,
            "rollback": {"enabled": true},
            "forge": {}
        }),
    )
    .await;
    repo.hook(&daemon.hook_url(), HOOK_SECRET).await;
    healthy(ns, &seed).await;

    let syncs = ns.api::<GitSync>();
    let mut samples = Vec::new();
    let mut failures = Vec::new();
    for (i, tag) in tags.iter().skip(1).enumerate() {
        let pushed = Instant::now();
        let bad = repo
            .push(
                "main",
                FILE,
                &deployment(&image(tag)),
                &format!("app: {tag}"),
            )
            .await;
        let branch = format!("sluice/rollback/{}", &bad[..7]);
        // The verdict, as the status first shows it.
        let mut verdict = None;
        while pushed.elapsed() < DEADLINE {
            let entry: Option<HistoryEntry> = syncs.get(NAME).await.ok().and_then(|s| {
                s.status?
                    .history
                    .into_iter()
                    .find(|e| e.revision == bad && e.failed_at.is_some())
            });
            if let Some(entry) = entry {
                verdict = Some((Instant::now(), SystemTime::now(), entry));
                break;
            }
            tokio::time::sleep(STATUS_POLL).await;
        }
        let Some((seen, verdict_at, entry)) = verdict else {
            failures.push(format!("{tag}: no failed verdict within {DEADLINE:?}"));
            break;
        };
        let Some((pr, opened)) = repo.wait_pull_request(&branch, FORGE_POLL, |_| true).await else {
            failures.push(format!(
                "{tag}: no pull request of {branch} within {DEADLINE:?}"
            ));
            break;
        };
        let sample = Sample {
            verdict_at,
            branch,
            to_pull_request: opened - seen,
            push_to_verdict: seen - pushed,
            applied_to_failed: timestamp(entry.applied_at.as_deref())
                .zip(timestamp(entry.failed_at.as_deref()))
                .and_then(|(a, f)| (f - a).to_std().ok()),
        };
        if i == 0 {
            let _ = writeln!(
                report,
                "warm-up {tag}: revert pull request {} after the verdict",
                ms(sample.to_pull_request)
            );
        } else {
            samples.push(sample);
        }
        // Reset: the revert merged (as a person on call would), applied and healthy.
        repo.merge(pr.number).await;
        let merge = repo
            .forge
            .pull_request(pr.number)
            .await
            .ok()
            .and_then(|pr| pr.merge_commit)
            .unwrap_or_else(|| panic!("the merge commit of #{}", pr.number));
        healthy(ns, &merge).await;
    }

    let column = |f: fn(&Sample) -> Duration| samples.iter().map(f).collect::<Vec<_>>();
    let _ = writeln!(
        report,
        "reverts: {} measured, each a commit of a crash-looping tag to main (x.y.13), the revert merged before the next",
        samples.len()
    );
    let _ = writeln!(
        report,
        "failed verdict in the status → revert pull request on the forge:  {}   target < 1 s",
        summary(&column(|s| s.to_pull_request))
    );
    let _ = writeln!(
        report,
        "  for context: the bad commit's push → the verdict in the status: {}",
        summary(&column(|s| s.push_to_verdict))
    );
    let failed: Vec<Duration> = samples.iter().filter_map(|s| s.applied_to_failed).collect();
    let _ = writeln!(
        report,
        "  its history entry's appliedAt → failedAt (timeout {HEALTH_TIMEOUT}, then the next health poll): {}",
        summary(&failed)
    );
    report.push_str(&stages(&log_lines(&daemon.log_text()), &samples));
    for f in &failures {
        let _ = writeln!(report, "FAILED {f}");
    }
    let _ = writeln!(report, "memory: {}", peaks.of("deploy-synchronizer"));
    report.push('\n');
    (report, repo.name)
}

/// Waits until GitSync [`NAME`] has applied `revision` and says it is healthy.
async fn healthy(ns: &TestNamespace, revision: &str) {
    let what = format!("{NAME} applied {revision} and healthy");
    wait_status_within(ns, NAME, &what, DEADLINE, |s| {
        s.applied(revision) && s.is("Healthy=True")
    })
    .await;
}

/// Where the time goes after the verdict, from the daemon's log: the revert pushed to its
/// branch ("rollback proposed"), the forge's answer to the pull request's POST (the diagnosis
/// gathered first), the bench's poll seeing it.
fn stages(lines: &[LogLine], samples: &[Sample]) -> String {
    let (mut proposed, mut posted, mut seen) = (Vec::new(), Vec::new(), Vec::new());
    for s in samples {
        // The log line may come a little before the bench's poll saw the status.
        let from = DateTime::<Utc>::from(s.verdict_at) - chrono::Duration::seconds(2);
        let Some(pushed) = lines.iter().find(|l| {
            l.at >= from && l.message == "rollback proposed" && l.field("branch") == s.branch
        }) else {
            continue;
        };
        let Some(post) = lines.iter().find(|l| {
            l.at >= pushed.at
                && l.message == "forge request"
                && l.field("method") == "POST"
                && l.field("path").ends_with("/pulls")
        }) else {
            continue;
        };
        proposed.push(since(s.verdict_at, pushed.at));
        posted.push((post.at - pushed.at).to_std().unwrap_or_default());
        seen.push(
            s.to_pull_request
                .saturating_sub(since(s.verdict_at, post.at)),
        );
    }
    format!(
        "  stages (from the daemon's log, {} of the reverts): verdict seen → revert pushed to its branch {}\n  → the forge answered the pull request's POST (its pull request looked up, the diagnosis gathered, the label looked up, the POST) {}\n  → seen by the bench's poll {}\n",
        proposed.len(),
        summary(&proposed),
        summary(&posted),
        summary(&seen)
    )
}
