//! World benchmark of the Config Updater, against the running local world (`e2e/env up`):
//!
//! - **scan**: the full tag listing of a 10,000-tag repository on the paged registry (pushed once,
//!   reused by later runs) plus the policy's choice, in a child process that does nothing else,
//!   so its peak resident memory (VmHWM) is the scan's;
//! - **latency**: registry push → bump commit on the git server's branch, through the registry's
//!   own notification to the release daemon on the world's notify address, p50 and p90;
//! - **watch**: resident memory of the release daemon watching 100 ImageRepositories (+ policies)
//!   for a minute after their first scans;
//! - **curve** (only when named): the same for 10, 100 and 1,000 repositories, with the registry
//!   requests of a scan round.
//!
//! `cargo bench -p sluice-e2e --bench updater [-- scan latency watch]` (all three by default)
//! prints the figures and writes them to `target/bench/config-updater-world.txt`. The daemon is
//! `target/release/config-updater`, built first (a no-op when up to date). Nothing asserts on a
//! time: shared machines vary.

mod daemon;
mod latency;
mod scan;
mod timeline;
mod watch;

use std::path::PathBuf;

use sluice_e2e::{World, bench};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The child of the scan benchmark: list, choose, report the peak memory, exit.
    if args.first().map(String::as_str) == Some(scan::CHILD_ARG) {
        scan::child(&args[1..]);
        return;
    }
    let wanted: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| ["scan", "latency", "watch", "curve"].contains(a))
        .collect();
    let run = |name: &str| wanted.is_empty() || wanted.contains(&name);

    let world = World::get();
    let runtime = bench::runtime();
    let mut report = bench::report_header("config-updater");
    let path = figures_file();
    // A section not run this time keeps its figures from the last run.
    let previous = std::fs::read_to_string(&path).unwrap_or_default();
    let mut section = |name: &str, text: Option<String>| {
        let text = text.unwrap_or_else(|| previous_section(&previous, name));
        print!("{text}");
        report.push_str(&text);
    };
    runtime.block_on(async {
        section(
            scan::HEADING,
            match run("scan") {
                true => Some(scan::run(world).await),
                false => None,
            },
        );
        let mut latency = None;
        let mut watch = None;
        let mut curve = None;
        if run("latency") || run("watch") || wanted.contains(&"curve") {
            let binary = bench::build("config-updater");
            let client = world.kube_client().await;
            sluice_e2e::updater::install_crds(&client).await;
            if run("latency") {
                latency = Some(latency::run(world, &client, &binary).await);
            }
            if run("watch") {
                watch = Some(watch::run(world, &client, &binary).await);
            }
            // Long (1,000 repositories): only when asked for.
            if wanted.contains(&"curve") {
                curve = Some(watch::curve(world, &client, &binary).await);
            }
        }
        section(latency::HEADING, latency);
        section(watch::HEADING, watch);
        section(watch::CURVE_HEADING, curve);
    });
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("target/bench");
    std::fs::write(&path, report).expect("the figures file");
    println!("figures written to {}", path.display());
}

/// The section starting with `heading` in an earlier figures file, up to the next heading.
fn previous_section(previous: &str, heading: &str) -> String {
    let Some(start) = previous.find(heading) else {
        return String::new();
    };
    let rest = &previous[start..];
    let end = rest[heading.len()..]
        .find("\n## ")
        .map_or(rest.len(), |i| heading.len() + i + 1);
    rest[..end].to_owned()
}

fn figures_file() -> PathBuf {
    bench::bench_file("config-updater-world.txt")
}
