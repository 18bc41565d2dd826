//! Where the time of a push → commit goes, from the daemon's JSON log (`--log-format json`):
//! the manifest PUT, the notification's arrival ("webhook: scanning now"), the policy's choice
//! ("chose a new image"), the write-back's push ("pushed").

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use sluice_e2e::bench::{ms, quantile};

struct Line {
    at: DateTime<Utc>,
    message: String,
    tag: Option<String>,
}

fn lines(log: &str) -> Vec<Line> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            Some(Line {
                at: v["timestamp"].as_str()?.parse().ok()?,
                message: v["message"].as_str()?.to_owned(),
                tag: v["tag"].as_str().map(str::to_owned),
            })
        })
        .collect()
}

fn between(a: DateTime<Utc>, b: DateTime<Utc>) -> Duration {
    (b - a).to_std().unwrap_or_default()
}

/// Median of each stage over the pushes, and the log kept beside the figures.
pub fn breakdown(log: &str, pushes: &[(String, SystemTime)]) -> String {
    let path = sluice_e2e::bench::bench_file("config-updater-world-latency.log");
    let _ = std::fs::create_dir_all(path.parent().expect("a parent"));
    let _ = std::fs::write(&path, log);
    let lines = lines(log);
    let (mut hook, mut choose, mut write) = (Vec::new(), Vec::new(), Vec::new());
    for (tag, at) in pushes {
        let put: DateTime<Utc> = (*at).into();
        let find = |message: &str, after: DateTime<Utc>, tagged: bool| {
            lines
                .iter()
                .find(|l| {
                    l.message == message
                        && l.at >= after
                        && (!tagged || l.tag.as_deref() == Some(tag.as_str()))
                })
                .map(|l| l.at)
        };
        let Some(hooked) = find("webhook: scanning now", put, true) else {
            continue;
        };
        let Some(chosen) = find("chose a new image", hooked, true) else {
            continue;
        };
        let Some(pushed) = find("pushed", chosen, false) else {
            continue;
        };
        hook.push(between(put, hooked));
        choose.push(between(hooked, chosen));
        write.push(between(chosen, pushed));
    }
    for v in [&mut hook, &mut choose, &mut write] {
        v.sort();
    }
    format!(
        "stages (median of {} pushes, from the daemon's log): PUT → notification received {}, → scanned and chosen (status write, policy watch) {}, → write-back pushed (fetch, edit, commit, push over HTTP) {}\ndaemon log (JSON): {}\n",
        hook.len(),
        ms(quantile(&hook, 0.5)),
        ms(quantile(&choose, 0.5)),
        ms(quantile(&write, 0.5)),
        path.display()
    )
}
