//! Registry push → bump pull request opened: an ImageUpdate in pull-request mode on a forge
//! repository, the release config-updater on the world's registry notify address. Each new tag is
//! one manifest PUT to the plain registry; the clock runs from just before it until the forge's
//! newest pull request of the push branch is open and its body names the tag (the forge's API
//! polled every 15 ms with the daemons' own client). Each pull request is then merged through
//! the API and main awaited (not timed), so the next push opens a new one.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use config_updater::resource::{ImagePolicy, ImageRepository, ImageUpdate};
use kube::Client;
use kube::api::PostParams;
use serde_json::json;
use sluice_e2e::bench::{LogLine, TagPusher, addr_is_free, log_lines, ms, since, summary};
use sluice_e2e::{TestNamespace, World, unique_name, wait_until};
use sluice_shared::forge::PullRequestState;

use crate::daemons::Daemon;
use crate::memory::Peaks;
use crate::repo::{self, DEADLINE, Repo};

pub const HEADING: &str = "## registry push → bump pull request opened";
/// Measured pushes, after one warm-up.
const PUSHES: usize = 10;
const PUSH_BRANCH: &str = "sluice/bumps";
const FILE: &str = "apps/web/deployment.yaml";
const POLL: Duration = Duration::from_millis(15);
const DAEMON: &str = "config-updater";

fn deployment(image: &str, tag: &str, ns: &str) -> String {
    format!(
        "# The web app: the Config Updater proposes its bumps.\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: {image}:{tag} # {{\"$imagepolicy\": \"{ns}:web\"}}\n"
    )
}

struct Sample {
    tag: String,
    /// The wall clock at the PUT, to find the push in the daemon's log.
    at: SystemTime,
    put: Duration,
    opened: Duration,
    merge: Duration,
    /// From the merge call until main held the bump.
    merged: Duration,
}

/// The figures, and a line saying where the daemon's log was kept.
pub async fn run(
    world: &'static World,
    client: &Client,
    binary: &Path,
    peaks: &Peaks,
) -> (String, String) {
    let mut report = format!(
        "{HEADING} (webhook-triggered; ImageUpdate with pushBranch + pullRequest on Gitea, release daemon)\n"
    );
    let notify = world.registry_notify_url();
    let addr = notify
        .strip_prefix("http://")
        .and_then(|r| r.split('/').next())
        .unwrap_or("127.0.0.1:19090")
        .to_owned();
    if !addr_is_free(&addr) {
        let _ = writeln!(
            report,
            "skipped: {addr} is in use (the webhook_registry test or e2e/demo holds the registry's notify address)\n"
        );
        return (report, String::new());
    }
    let ns = TestNamespace::create(client, "bench-forge-pr").await;
    let path = format!("bench/{}/web", unique_name("forge-pr"));
    let image = format!("{}/{path}", world.registry());
    world.push_image(&[&format!("{path}:1.0.0")]).await;
    let (repo, _) = Repo::seed(
        world,
        "bench-forge-pr",
        &[(FILE, &deployment(&image, "1.0.0", ns.name()))],
    )
    .await;
    repo::forge_secret(&ns, world).await;
    let pp = PostParams::default();
    let repository: ImageRepository = serde_json::from_value(json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "ImageRepository",
        "metadata": {"name": "web"},
        // Every scan here comes from a notification.
        "spec": {"image": image, "insecure": true, "interval": "1h"}
    }))
    .expect("an ImageRepository");
    ns.api::<ImageRepository>()
        .create(&pp, &repository)
        .await
        .expect("the ImageRepository");
    let policy: ImagePolicy = serde_json::from_value(json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "ImagePolicy",
        "metadata": {"name": "web"},
        "spec": {"imageRepositoryRef": {"name": "web"}, "policy": {"semver": {"range": ">=1.0.0"}}}
    }))
    .expect("an ImagePolicy");
    ns.api::<ImagePolicy>()
        .create(&pp, &policy)
        .await
        .expect("the ImagePolicy");
    let update: ImageUpdate = serde_json::from_value(json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "ImageUpdate",
        "metadata": {"name": "config"},
        "spec": {
            "git": {"url": repo.url(), "branch": "main", "pushBranch": PUSH_BRANCH,
                    "secretRef": {"name": "forge"}, "pullRequest": {}},
            "paths": ["apps"], "batchDelay": "0s"
        }
    }))
    .expect("an ImageUpdate");
    ns.api::<ImageUpdate>()
        .create(&pp, &update)
        .await
        .expect("the ImageUpdate");

    let daemon = Daemon::updater(world, binary, ns.name(), &addr).await;
    peaks.watch(DAEMON, &daemon.pid());
    let policies = ns.api::<ImagePolicy>();
    wait_until("ImagePolicy web at 1.0.0", DEADLINE, || async {
        let p = policies.get("web").await.map_err(|e| e.to_string())?;
        match p.status.and_then(|s| s.latest_ref).map(|r| r.tag) {
            Some(t) if t == "1.0.0" => Ok(()),
            other => Err(format!("latestRef {other:?}")),
        }
    })
    .await;
    let pusher = TagPusher::new(world.registry(), &path, "1.0.0").await;

    let mut samples = Vec::new();
    let mut failures = Vec::new();
    let mut numbers = Vec::new();
    // 1.0.1 first, as a warm-up: connections, the work clone, the forge client, notifications
    // the registry queued while nobody listened on the notify address.
    for i in 1..=PUSHES + 1 {
        let tag = format!("1.0.{i}");
        let named = format!("`{tag}`");
        let at = SystemTime::now();
        let start = Instant::now();
        let put = pusher.put(&tag).await;
        let Some((pr, seen)) = repo
            .wait_pull_request(PUSH_BRANCH, POLL, |pr| {
                pr.state == PullRequestState::Open && pr.body.contains(&named)
            })
            .await
        else {
            failures.push(format!(
                "{tag}: no open pull request naming it within {DEADLINE:?}"
            ));
            continue;
        };
        let opened = seen - start;
        numbers.push(pr.number);
        let merging = Instant::now();
        let merge = repo.merge(pr.number).await;
        let line = format!(":{tag} #");
        let on_main = wait_until(&format!("main holding {tag}"), DEADLINE, || async {
            match world.forge_file(&repo.name, "main", FILE).await {
                Some(text) if text.contains(&line) => Ok(Instant::now()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        if i == 1 {
            let _ = writeln!(
                report,
                "warm-up push {tag}: pull request opened after {}",
                ms(opened)
            );
        } else {
            samples.push(Sample {
                tag,
                at,
                put,
                opened,
                merge,
                merged: on_main - merging,
            });
        }
        // Let the daemon's status writes of this bump settle before the next push.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    numbers.dedup();

    let column = |f: fn(&Sample) -> Duration| samples.iter().map(f).collect::<Vec<_>>();
    let _ = writeln!(
        report,
        "pushes: {} measured, each a manifest PUT of a new tag (the PUT itself: {})",
        samples.len(),
        summary(&column(|s| s.put))
    );
    let _ = writeln!(
        report,
        "push → pull request open, body naming the tag:  {}   target p50 < 500 ms",
        summary(&column(|s| s.opened))
    );
    let _ = writeln!(
        report,
        "each: {}",
        samples
            .iter()
            .map(|s| format!("{} {:.0}", s.tag, s.opened.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        report,
        "pull requests: {} distinct of {} pushes (one new pull request per push, each merged before the next)",
        numbers.len(),
        PUSHES + 1
    );
    let _ = writeln!(
        report,
        "not timed: the merge API call {}; merge call → main holding the bump {}",
        summary(&column(|s| s.merge)),
        summary(&column(|s| s.merged))
    );
    for f in &failures {
        let _ = writeln!(report, "FAILED {f}");
    }
    let log = daemon.log_text();
    report.push_str(&stages(
        &log_lines(&log),
        &samples
            .iter()
            .map(|s| (s.tag.as_str(), s.at, s.opened))
            .collect::<Vec<_>>(),
    ));
    let _ = writeln!(report, "memory: {}", peaks.of(DAEMON));
    report.push('\n');
    let saved = daemon.save_log(DAEMON);
    drop(daemon);
    drop(ns);
    repo::delete(world, &repo.name).await;
    (report, saved)
}

/// Where the time goes, from the daemon's JSON log: the notification's arrival, the policy's
/// choice, the bump pushed to the push branch (after the lookup of the branch's newest pull
/// request), the forge's answer to the pull request's POST, and the bench's poll seeing it.
fn stages(lines: &[LogLine], pushes: &[(&str, SystemTime, Duration)]) -> String {
    let (mut hook, mut choose, mut push, mut open, mut seen) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (tag, at, opened) in pushes {
        let put = (*at).into();
        let find = |after, ok: &dyn Fn(&LogLine) -> bool| {
            lines.iter().find(|l| l.at >= after && ok(l)).map(|l| l.at)
        };
        let Some(hooked) = find(put, &|l| {
            l.message == "webhook: scanning now" && l.field("tag") == *tag
        }) else {
            continue;
        };
        let Some(chosen) = find(hooked, &|l| {
            l.message == "chose a new image" && l.field("tag") == *tag
        }) else {
            continue;
        };
        let Some(pushed) = find(chosen, &|l| l.message == "pushed") else {
            continue;
        };
        let Some(posted) = find(pushed, &|l| {
            l.message == "forge request"
                && l.field("method") == "POST"
                && l.field("path").ends_with("/pulls")
        }) else {
            continue;
        };
        hook.push(since(*at, hooked));
        choose.push((chosen - hooked).to_std().unwrap_or_default());
        push.push((pushed - chosen).to_std().unwrap_or_default());
        open.push((posted - pushed).to_std().unwrap_or_default());
        seen.push(opened.saturating_sub(since(*at, posted)));
    }
    let median = |v: &Vec<Duration>| {
        let mut v = v.clone();
        v.sort();
        ms(sluice_e2e::bench::quantile(&v, 0.5))
    };
    format!(
        "stages (median of {} pushes, from the daemon's log at debug): PUT → notification received {}, → scanned and chosen {}, → bump pushed to {PUSH_BRANCH} (the branch's newest pull request looked up on the forge, then fetch, edit, commit, git push to Gitea) {}, → Gitea answered the pull request's POST {}, → seen by the bench's poll {}\n",
        hook.len(),
        median(&hook),
        median(&choose),
        median(&push),
        median(&open),
        median(&seen),
    )
}
