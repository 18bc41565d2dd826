//! World benchmark of both daemons with the forge (the world's Gitea), the release builds as
//! child processes, against the running local world (`e2e/env up`):
//!
//! - **pr**: registry push → bump pull request opened. An ImageUpdate in pull-request mode on a
//!   forge repository; the config-updater listens on the world's registry notify address, so
//!   each tag pushed (one manifest PUT) is scanned at once. Timed until the forge's newest pull
//!   request of the push branch is open and names the new tag (its API polled every 15 ms);
//!   then merged through the API (not timed), so the next push opens a new one.
//! - **merge**: merge → applied. A GitSync (interval 1h) over a forge repository holding a
//!   ConfigMap, brought new commits only by Gitea's own signed push webhook to the
//!   deploy-synchronizer's `/webhook/gitea`. Each change is a branch and a pull request made
//!   beforehand; timed from the merge API call until the apiserver shows the new value, and
//!   until the GitSync's status names the merge commit (both polled every 5 ms), with Gitea's
//!   webhook delivery read from the daemon's log.
//! - **revert**: health verdict → revert pull request opened. A GitSync with rollback, `forge:
//!   {}` and a 3 s health timeout over a Deployment; each commit of a crash-looping tag is timed
//!   from the status first showing the failed verdict (polled every 10 ms) until the forge has
//!   the pull request of `sluice/rollback/<short>`; merging it (not timed) resets the cluster.
//!
//! And the memory of both daemons and of Gitea through the run.
//!
//! `cargo bench -p sluice-e2e --bench forge [-- pr merge revert]` (all three by default) prints
//! the figures and writes them to `target/bench/forge-world.txt`; a section not run keeps its
//! figures from the last run. The daemons' logs go beside it. Nothing asserts on a time.

mod daemons;
mod memory;
mod merge;
mod pr;
mod repo;
mod revert;

use std::fmt::Write as _;

use sluice_e2e::bench::{self, Figures};
use sluice_e2e::{TestNamespace, World};

use crate::memory::Peaks;

/// The sections, as named on the command line.
const SECTIONS: [&str; 3] = ["pr", "merge", "revert"];

fn main() {
    sluice_e2e::install_crypto_provider();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let wanted: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| SECTIONS.contains(a))
        .collect();
    let run = |name: &str| wanted.is_empty() || wanted.contains(&name);

    let world = World::get();
    let runtime = bench::runtime();
    let mut figures = Figures::new("forge-world.txt", "sluice (both daemons) with the forge");
    runtime.block_on(async {
        let peaks = Peaks::start();
        peaks.watch("Gitea (the world's forge)", &memory::forge_pid(world));
        let client = world.kube_client().await;
        // What each daemon's log holds, said in the memory section (rewritten every run).
        let mut logs = String::new();

        let mut pr_text = None;
        if run("pr") {
            let binary = bench::build("config-updater");
            sluice_e2e::updater::install_crds(&client).await;
            let (text, log) = pr::run(world, &client, &binary, &peaks).await;
            pr_text = Some(text);
            logs.push_str(&log);
        }
        figures.section(pr::HEADING, pr_text);

        let (mut merge_text, mut revert_text) = (None, None);
        if run("merge") || run("revert") {
            let binary = bench::build("deploy-synchronizer");
            sluice_e2e::sync::install_crd(&client).await;
            let ns = TestNamespace::create(&client, "bench-forge-sync").await;
            repo::forge_secret(&ns, world).await;
            let daemon = daemons::Daemon::synchronizer(world, &binary, ns.name()).await;
            peaks.watch("deploy-synchronizer", &daemon.pid());
            let mut repos = Vec::new();
            if run("merge") {
                let (text, name) = merge::run(world, &ns, &daemon, &peaks).await;
                merge_text = Some(text);
                repos.push(name);
            }
            if run("revert") {
                let (text, name) = revert::run(world, &ns, &daemon, &peaks).await;
                revert_text = Some(text);
                repos.push(name);
            }
            peaks.sample();
            logs.push_str(&daemon.save_log("deploy-synchronizer"));
            // The daemon first, so it does not fight the namespace's deletion.
            drop(daemon);
            drop(ns);
            for name in repos {
                repo::delete(world, &name).await;
            }
        }
        figures.section(merge::HEADING, merge_text);
        figures.section(revert::HEADING, revert_text);

        let mut text = format!("{}\n", memory::HEADING);
        let _ = writeln!(
            text,
            "this run: {} (VmHWM: the peak resident set of the process's life; sampled: the largest VmRSS read every 200 ms while the sections ran)",
            SECTIONS
                .iter()
                .filter(|s| run(s))
                .copied()
                .collect::<Vec<_>>()
                .join(" ")
        );
        text.push_str(&peaks.report());
        text.push_str(&logs);
        text.push('\n');
        figures.section(memory::HEADING, Some(text));
    });
    let path = figures.write();
    println!("figures written to {}", path.display());
}
