//! The clock crosses an update window's boundary while the updater is down (SIGKILLed with a bump
//! held for the window):
//! - down across a whole window (it opened and closed meanwhile): the restarted updater does not
//!   catch up outside the window; the bump stays held, said, with the next opening;
//! - down across a window's opening, back while it is open: the held bump goes out at once, as
//!   one commit.
//!
//! Windows of a few seconds, at seconds resolution (a 6-field cron), on today's date in UTC.

mod update_support;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Datelike, TimeDelta, Timelike, Utc};
use config_updater::resource::ImageUpdate;
use serde_json::json;
use sluice_e2e::daemon::Daemon;
use update_support::*;

/// A window of `seconds` starting at or after `from`, within one minute (moved to the next
/// minute when it would cross one): its cron and its opening.
fn window(from: DateTime<Utc>, seconds: u32) -> (String, DateTime<Utc>) {
    let mut start = from.with_nanosecond(0).unwrap();
    if start.second() + seconds > 59 {
        start += TimeDelta::seconds(i64::from(60 - start.second()));
    }
    let cron = format!(
        "{}-{} {} {} {} {} *",
        start.second(),
        start.second() + seconds - 1,
        start.minute(),
        start.hour(),
        start.day(),
        start.month()
    );
    (cron, start)
}

async fn sleep_until(at: DateTime<Utc>) {
    if let Ok(wait) = (at - Utc::now()).to_std() {
        tokio::time::sleep(wait).await;
    }
}

fn updater(u: &Updater, dir: &Path, name: &str) -> Daemon {
    let args = ["--watch-namespace", u.ns()];
    Daemon::run_as_pod(u.world, "config-updater", dir, name, &args, &[]).0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_crossed_while_the_updater_was_down_is_neither_caught_up_nor_lost() {
    let u = Updater::idle("window-down").await;
    let WebLoop {
        path, repo, seed, ..
    } = u.web_loop("window-down").await;
    let dir = tempfile::tempdir().unwrap();

    // 1. A 5-second window 30 s from now; a bump held for it; down until it has closed.
    let (cron, opens) = window(Utc::now() + TimeDelta::seconds(30), 5);
    u.patch_spec::<ImageUpdate>("config", json!({"window": {"cron": cron}}))
        .await;
    let first = updater(&u, dir.path(), "first");
    u.world.push_image(&[&format!("{path}:1.0.1")]).await;
    u.wait_ready::<ImageUpdate>("config", "True", "WaitingForWindow")
        .await;
    first.kill().await;
    sleep_until(opens + TimeDelta::seconds(7)).await;
    let second = updater(&u, dir.path(), "second");
    let held = u
        .wait_status::<ImageUpdate>("config", "the bump held after the restart", |s| {
            s.pending.len() == 1
                && s.next_push_time
                    .as_deref()
                    .and_then(|t| t.parse::<DateTime<Utc>>().ok())
                    .is_some_and(|t| t > Utc::now())
        })
        .await;
    assert_eq!(held.pending[0].new_image.rsplit(':').next(), Some("1.0.1"));
    stays(u.world, &repo, tip(u.world, &repo), Duration::from_secs(3)).await;
    assert_eq!(bumps_since(u.world, &repo, &seed).0, 0, "not caught up");

    // 2. A 20-second window 12 s from now; down across its opening, back while it is open.
    let (cron, opens) = window(Utc::now() + TimeDelta::seconds(12), 20);
    u.patch_spec::<ImageUpdate>("config", json!({"window": {"cron": cron}}))
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    second.kill().await;
    sleep_until(opens + TimeDelta::seconds(1)).await;
    let third = updater(&u, dir.path(), "third");
    let pushed = next_commit(u.world, &repo, seed.parse().unwrap()).await;
    let at = Utc::now();
    let (count, line) = bumps_since(u.world, &repo, &seed);
    assert_eq!(count, 1, "one commit");
    assert!(line.contains(":1.0.1 "), "{line}");
    assert!(
        at < opens + TimeDelta::seconds(25),
        "pushed {at}, the window opened {opens}"
    );
    u.wait_last_push_is("config", pushed).await;
    third.stop().await;
}
