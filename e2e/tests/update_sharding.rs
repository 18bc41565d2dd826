//! Three replicas of the Config Updater with `--shards 6`, over twelve teams' namespaces: each
//! has its ImageRepository (polled hourly: a newer tag comes by webhook), ImagePolicy and
//! ImageUpdate, and all twelve bump one shared config repository, each in its own directory.
//!
//! - Each namespace is worked by exactly one replica (the updater shards by namespace).
//! - A registry webhook posted to one replica reaches all twelve repositories: the replica scans
//!   its own and hands the others to their replicas.
//! - The twelve bumps land on one branch, once each, though three replicas push to it at once.
//! - One replica is SIGKILLed; its shards move within the lease, and the next tag is bumped in
//!   all twelve, once each.

mod update_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use config_updater::resource::{ImagePolicy, ImageRepository, ImageUpdate};
use serde_json::{Value, json};
use sluice_e2e::daemon::Daemon;
use sluice_e2e::git_support::closed_port;
use sluice_e2e::sync::git_in;
use sluice_e2e::updater::repo::{deployment, seed};
use sluice_e2e::updater::webhook::envelope;
use sluice_e2e::{World, http, unique_name, wait_until};
use update_support::*;

const TEAMS: usize = 12;
const REPLICAS: usize = 3;
const SHARDS: &str = "6";
const LEASE: &str = "4s";
const TOKEN: &str = "registry-notify-token";

/// Labels the story's objects, so the replicas (watching every namespace) see only them.
fn labelled(mut object: Value, selector: &str) -> Value {
    let (key, value) = selector.split_once('=').unwrap();
    object["metadata"]["labels"] = json!({ key: value });
    object
}

struct Replica {
    daemon: Daemon,
    addr: String,
    name: String,
}

fn replica(u: &Updater, dir: &Path, name: &str, selector: &str, leases: &str) -> Replica {
    let addr = format!("127.0.0.1:{}", closed_port());
    let work = dir.join(format!("work-{name}"));
    // One file per replica: a shared one rewritten while another replica reads it is empty.
    let token = dir.join(format!("distribution-token-{name}"));
    std::fs::write(&token, TOKEN).unwrap();
    let daemon = Daemon::start_with_env(
        u.world,
        "config-updater",
        &[
            "--log-format",
            "json",
            "--log-level",
            "info,config_updater=debug,sluice_shared=debug",
            "run",
            "--watch-label-selector",
            selector,
            "--metrics-addr",
            &addr,
            "--work-dir",
            work.to_str().unwrap(),
            "--webhook-secret-file",
            &format!("distribution={}", token.display()),
            "--shards",
            SHARDS,
            "--leader-election-namespace",
            leases,
            "--lease-duration",
            LEASE,
        ],
        &[("POD_NAME", name)],
        &dir.join(format!("{name}.log")),
    );
    Replica {
        daemon,
        addr,
        name: name.to_owned(),
    }
}

/// Each replica's `sluice_working` (shards held); NaN for one not serving.
async fn shards_held(replicas: &[&Replica]) -> Vec<f64> {
    let mut held = Vec::new();
    for r in replicas {
        let text = match http::request(&r.addr, "GET", "/metrics", &[], b"").await {
            Ok(resp) if resp.status == 200 => resp.text(),
            _ => String::new(),
        };
        held.push(
            text.lines()
                .filter(|l| l.starts_with("sluice_working"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>(),
        );
    }
    held
}

/// Waits until the six shards are spread evenly: two on each replica.
async fn settled(replicas: &[&Replica]) {
    wait_until(
        "two shards on each replica",
        Duration::from_secs(60),
        || async {
            let held = shards_held(replicas).await;
            if held.iter().all(|h| *h == 2.0) {
                Ok(())
            } else {
                Err(format!("shards held: {held:?}"))
            }
        },
    )
    .await;
}

/// The replicas whose logs, past each one's `from` offset, show a reconcile of an object of
/// `ns`.
fn workers_of<'a>(replicas: &[&'a Replica], from: &[usize], ns: &str) -> BTreeSet<&'a str> {
    let needle = format!("\"object\":\"{ns}/");
    replicas
        .iter()
        .zip(from)
        .filter(|(r, from)| r.daemon.log().get(**from..).unwrap_or("").contains(&needle))
        .map(|(r, _)| r.name.as_str())
        .collect()
}

fn team_file(i: usize) -> String {
    format!("apps/team-{i:02}/deployment.yaml")
}

/// Per team: the commits that touched its file since `seed`, and its image line on main.
fn bumps(u: &Updater, repo: &str, seed: &str) -> Vec<(usize, String)> {
    (0..TEAMS)
        .map(|i| {
            let file = team_file(i);
            let log = git_in(
                u.world,
                repo,
                &["rev-list", &format!("{seed}..main"), "--", &file],
            );
            let text = git_in(u.world, repo, &["show", &format!("main:{file}")]);
            let line = text
                .lines()
                .find(|l| l.contains("image:"))
                .unwrap_or("")
                .trim()
                .to_owned();
            (log.lines().count(), line)
        })
        .collect()
}

/// Waits until every team's file holds `tag`, bumped `commits` times since `seed`; then checks
/// that the branch holds no other commit.
async fn all_bumped(u: &Updater, repo: &str, seed: &str, tag: &str, commits: usize) {
    wait_until(
        &format!("all {TEAMS} teams bumped to {tag}"),
        Duration::from_secs(120),
        || async {
            let bumps = bumps(u, repo, seed);
            let done = bumps
                .iter()
                .filter(|(n, line)| *n == commits && line.contains(&format!(":{tag} ")))
                .count();
            if done == TEAMS {
                Ok(())
            } else {
                Err(format!("{done} of {TEAMS}: {bumps:?}"))
            }
        },
    )
    .await;
    let on_main = git_in(
        u.world,
        repo,
        &["rev-list", "--count", &format!("{seed}..main")],
    );
    assert_eq!(
        on_main.trim(),
        (TEAMS * commits).to_string(),
        "one commit per team and tag, no duplicate"
    );
}

async fn notify(to: &Replica, registry: &str, path: &str, tag: &str, digest: &str) {
    let body = envelope(registry, path, tag, digest);
    let bearer = format!("Bearer {TOKEN}");
    let status = http::post(
        &to.addr,
        "/webhook/distribution",
        &[
            ("Authorization", bearer.as_str()),
            ("Content-Type", config_updater::webhook::ENVELOPE_MEDIA_TYPE),
        ],
        &body,
    )
    .await;
    assert_eq!(status, 202, "the replica takes the notification");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_namespaces_on_three_replicas_are_bumped_once_each_before_and_after_one_dies() {
    let selector = format!("sluice.dev/story={}", unique_name("shard"));
    let registry = World::get().registry().to_owned();
    let (path, image) = push_web(World::get(), "update-sharding", &["1.0.0"]).await;

    // Twelve teams, each in its namespace; one config repository for them all.
    let mut teams = Vec::new();
    for i in 0..TEAMS {
        teams.push(Updater::idle(&format!("team-{i:02}")).await);
    }
    let files: Vec<(String, String)> = teams
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (
                team_file(i),
                deployment("web", &image, "1.0.0", t.ns(), "web"),
            )
        })
        .collect();
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let (repo, seed_commit) = seed(teams[0].world, "update-sharding", &files).await;
    let seed_commit = seed_commit.to_string();
    let url = teams[0].world.git_http_url(&repo);
    for (i, t) in teams.iter().enumerate() {
        t.world_git_secret("git").await;
        t.create::<ImageRepository>(labelled(repository("web", &image, "1h"), &selector))
            .await;
        t.create::<ImagePolicy>(labelled(semver_policy("web", "web"), &selector))
            .await;
        let mut update = image_update("config", &url, Some("10s"));
        update["spec"]["paths"] = json!([format!("apps/team-{i:02}")]);
        t.create::<ImageUpdate>(labelled(update, &selector)).await;
    }

    let dir = tempfile::tempdir().unwrap();
    let leases = teams[0].ns().to_owned();
    let a = replica(&teams[0], dir.path(), "replica-a", &selector, &leases);
    let b = replica(&teams[0], dir.path(), "replica-b", &selector, &leases);
    let c = replica(&teams[0], dir.path(), "replica-c", &selector, &leases);
    // Once the ring has settled, each namespace is worked by one replica only.
    settled(&[&a, &b, &c]).await;
    for t in &teams {
        assert_eq!(t.wait_policy_tag("web").await, "1.0.0");
    }
    let from: Vec<usize> = [&a, &b, &c].iter().map(|r| r.daemon.log().len()).collect();

    // 1.0.1 is pushed; the registry's notification goes to one replica only.
    let pushed = teams[0].world.push_image(&[&format!("{path}:1.0.1")]).await;
    let notified = Instant::now();
    notify(&a, &registry, &path, "1.0.1", &pushed[0].digest).await;
    all_bumped(&teams[0], &repo, &seed_commit, "1.0.1", 1).await;
    let first_round = notified.elapsed();
    let mut load = Vec::new();
    for t in &teams {
        let workers = workers_of(&[&a, &b, &c], &from, t.ns());
        assert_eq!(
            workers.len(),
            1,
            "{} is worked by exactly one replica: {workers:?}",
            t.ns()
        );
        load.extend(workers);
    }
    let count = |name: &str| load.iter().filter(|w| **w == name).count();
    let (on_a, on_b, on_c) = (count("replica-a"), count("replica-b"), count("replica-c"));
    assert!(
        a.daemon
            .log()
            .contains("webhook handed to the replica of its shard")
            || on_a == TEAMS,
        "replica-a handed the other replicas' repositories over"
    );

    // The replica with the most namespaces dies; the next tag still reaches all twelve.
    let (victim, survivors) = if on_b >= on_c {
        (b, [&a, &c])
    } else {
        (c, [&a, &b])
    };
    let victim_name = victim.name.clone();
    victim.daemon.kill().await;
    let killed = Instant::now();
    let pushed = teams[0].world.push_image(&[&format!("{path}:1.0.2")]).await;
    notify(survivors[0], &registry, &path, "1.0.2", &pushed[0].digest).await;
    all_bumped(&teams[0], &repo, &seed_commit, "1.0.2", 2).await;
    let after_kill = killed.elapsed();
    eprintln!(
        "sharding (updater): {TEAMS} namespaces over {REPLICAS} replicas ({on_a}/{on_b}/{on_c}); \
         1.0.1 in all {TEAMS} {:.1} s after one webhook to one replica; {victim_name} SIGKILLed, \
         1.0.2 in all {TEAMS} {:.1} s after the kill (lease {LEASE}); one commit per team and tag",
        first_round.as_secs_f64(),
        after_kill.as_secs_f64()
    );
}
