//! User story: an operator lets image bumps out only in a change window, and gathers bumps that
//! arrive close together into one commit (one rollout instead of several).
//!
//! Against the real world: the Config Updater's three controllers run in-process for the test's
//! namespace, scanning the world's plain registry and writing to its git server over HTTP.

mod update_support;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use config_updater::resource::{ImagePolicy, ImageRepository, ImageUpdate};
use serde_json::json;
use sluice_e2e::unique_name;
use update_support::{
    Conditions, Updater, deployment, file, message, next_commit, parent, repository, seed,
    semver_policy, stays, trailers,
};

/// Asia/Kathmandu is UTC+05:45 all year (no DST): a zone whose hours are not UTC's.
const ZONE: &str = "Asia/Kathmandu";
const ZONE_OFFSET: TimeDelta = TimeDelta::minutes(5 * 60 + 45);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_window_holds_bumps_then_sends_them_as_one_commit_and_a_batch_is_one_commit() {
    let u = Updater::start("update-window").await;
    let world = u.world;
    let ns = u.ns().to_owned();

    let base = unique_name("window");
    let (web, api) = (format!("{base}/web"), format!("{base}/api"));
    world
        .push_image(&[
            &format!("{web}:1.0.0"),
            &format!("{web}:1.0.1"),
            &format!("{api}:1.0.0"),
            &format!("{api}:1.0.1"),
        ])
        .await;
    let registry = world.registry();
    let web_image = format!("{registry}/{web}");
    let api_image = format!("{registry}/{api}");
    let web_file = "apps/web/deployment.yaml";
    let api_file = "apps/api/deployment.yaml";
    let (repo, seeded) = seed(
        world,
        "window-config",
        &[
            (web_file, deployment("web", &web_image, "1.0.0", &ns, "web")),
            (api_file, deployment("api", &api_image, "1.0.0", &ns, "api")),
            ("README.md", "The config repo.\n".into()),
        ],
    )
    .await;
    u.world_git_secret("git").await;

    // A window that is closed now: the hour twelve hours away, in Kathmandu.
    let now_there = Utc::now() + ZONE_OFFSET;
    let closed_hour = (now_there.hour() + 12) % 24;
    let closed = format!("* {closed_hour} * * *");
    u.create::<ImageUpdate>(json!({
        "metadata": {"name": "config"},
        "spec": {
            "git": {"url": world.git_http_url(&repo), "branch": "main", "secretRef": {"name": "git"},
                    "commit": {"messageTemplate": "Release train\n\n{{changes}}"}},
            "paths": ["apps"],
            "window": {"cron": closed, "timeZone": ZONE},
            "interval": "1h"
        }
    }))
    .await;
    for name in ["web", "api"] {
        let image = if name == "web" {
            &web_image
        } else {
            &api_image
        };
        u.create::<ImageRepository>(repository(name, image, "2s"))
            .await;
        u.create::<ImagePolicy>(semver_policy(name, name)).await;
    }

    // Held: both bumps listed with policy, file, old and new image; nothing committed.
    let status = u
        .wait_status::<ImageUpdate>("config", "both bumps pending with their files", |s| {
            s.pending.len() == 2 && s.pending.iter().all(|p| !p.file.is_empty())
        })
        .await;
    let mut pending: Vec<(String, String, String, String)> = status
        .pending
        .iter()
        .map(|p| {
            (
                p.policy.clone(),
                p.file.clone(),
                p.old_image.clone(),
                p.new_image.clone(),
            )
        })
        .collect();
    pending.sort();
    assert_eq!(
        pending,
        vec![
            (
                format!("{ns}/api"),
                api_file.to_owned(),
                format!("{api_image}:1.0.0"),
                format!("{api_image}:1.0.1")
            ),
            (
                format!("{ns}/web"),
                web_file.to_owned(),
                format!("{web_image}:1.0.0"),
                format!("{web_image}:1.0.1")
            ),
        ]
    );
    assert_eq!(status.pending_count, 2);
    let ready = u
        .wait_ready::<ImageUpdate>("config", "True", "WaitingForWindow")
        .await;
    assert!(
        ready
            .message
            .contains("2 change(s) wait for the update window"),
        "{ready:?}"
    );
    // The next push is when the window opens: at the top of that hour in Kathmandu.
    let updates = u.api::<ImageUpdate>();
    let next = updates.get("config").await.unwrap().status.unwrap();
    let next: DateTime<Utc> = next
        .next_push_time
        .as_deref()
        .expect("status.nextPushTime")
        .parse()
        .unwrap();
    let there = next + ZONE_OFFSET;
    assert_eq!((there.hour(), there.minute()), (closed_hour, 0), "{next}");
    assert!(next > Utc::now() && next - Utc::now() < TimeDelta::hours(24));
    stays(world, &repo, seeded, Duration::from_secs(4)).await;

    // The window opens (the operator widens it): both bumps go out as ONE commit.
    u.patch_spec::<ImageUpdate>(
        "config",
        json!({"window": {"cron": "* * * * *", "timeZone": ZONE}}),
    )
    .await;
    let train = next_commit(world, &repo, seeded).await;
    assert_eq!(parent(world, &repo, train), seeded, "one commit on top");
    let text = message(world, &repo, train);
    assert!(text.starts_with("Release train\n"), "{text}");
    let found = trailers(&text);
    assert_eq!(found.len(), 2, "one trailer per change:\n{text}");
    assert!(found.iter().any(|t| t.contains(&format!("policy={ns}/web"))
        && t.contains(&format!("file={web_file}"))
        && t.contains("old=1.0.0 new=1.0.1")));
    assert!(
        found
            .iter()
            .any(|t| t.contains(&format!("policy={ns}/api")) && t.contains("new=1.0.1"))
    );
    assert_eq!(
        file(world, &repo, web_file),
        deployment("web", &web_image, "1.0.1", &ns, "web")
    );
    assert_eq!(
        file(world, &repo, api_file),
        deployment("api", &api_image, "1.0.1", &ns, "api")
    );
    let pushed = u.wait_event("config", "Pushed").await;
    assert!(
        pushed.contains(web_file) && pushed.contains(api_file),
        "{pushed}"
    );
    let train_commit = train.to_string();
    u.wait_status::<ImageUpdate>("config", "status.pending emptied", |s| {
        s.pending.is_empty() && s.last_push_commit.as_deref() == Some(train_commit.as_str())
    })
    .await;

    // Batching: a 15 s delay; web's bump arrives, api's a few seconds later: one commit.
    u.patch_spec::<ImageUpdate>("config", json!({"batchDelay": "15s"}))
        .await;
    world.push_image(&[&format!("{web}:1.0.2")]).await;
    let batching = u
        .wait_status::<ImageUpdate>("config", "web's bump waiting in the batch", |s| {
            s.reason("Ready") == "Batching" && s.pending.len() == 1
        })
        .await;
    assert_eq!(batching.pending[0].file, web_file);
    assert_eq!(batching.pending[0].new_image, format!("{web_image}:1.0.2"));
    world.push_image(&[&format!("{api}:1.0.2")]).await;
    let batch = next_commit(world, &repo, train).await;
    assert_eq!(
        parent(world, &repo, batch),
        train,
        "one commit for the batch"
    );
    let found = trailers(&message(world, &repo, batch));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found.iter().all(|t| t.contains("old=1.0.1 new=1.0.2")),
        "{found:?}"
    );
    stays(world, &repo, batch, Duration::from_secs(3)).await;

    u.stop().await;
}
