//! World benchmark of the Deploy Synchronizer, against the running local world (`e2e/env up`),
//! with the release daemon as a child process:
//!
//! - **latency**: a GitSync over 50 objects; ~15 times a commit (one ConfigMap value) and a
//!   signed GitHub push webhook, timed until the new value is seen in the cluster and until the
//!   GitSync's status names the commit; then ~20 times a managed ConfigMap edited by another
//!   field manager, timed until self-heal has the value back (watches, not polling);
//! - **chart**: the same commits on a Helm chart of 50 objects (`helm template` in every sync),
//!   then 30 s at rest with a 3 s interval, counting renders and writes;
//! - **bulk**: a cold sync of 1,000 objects (600 ConfigMaps, 200 Deployments, 200 Services) from
//!   the GitSync's creation to its status saying applied with 1,000 inventory entries, then to
//!   Healthy; then an at-rest window (`SLUICE_BENCH_REST_SECS`, default 300) counting the write
//!   requests the apiserver served for the managed resources and `gitsyncs`, and the
//!   `resourceVersion`s of the GitSync and every object before and after; the daemon's VmRSS and
//!   VmHWM throughout; then ~15 commits that each change one ConfigMap of the 1,000 (the last in
//!   file order), webhook-triggered, timed as in **latency** and with the daemon's writes and dry
//!   runs per commit;
//! - **curves** (only when named): cost as the work grows, objects per GitSync and GitSyncs per
//!   daemon ([`curves`]);
//! - **flux**: the same workload through Sluice (a daemon of its own) and through Flux's
//!   controllers (`e2e/env up --with flux`; skipped when they are not up), one after the other,
//!   in a table with both columns and the ratio ([`flux`]).
//!
//! The daemon talks to a kube-apiserver of the bench's own over the world's etcd (the world's
//! flags, another port), so that apiserver's `apiserver_request_total` counts the daemon's
//! requests and nobody else's; the world's apiserver (kube-controller-manager, kwok, the other
//! tests, this bench's own edits) is reported beside it.
//!
//! `cargo bench -p sluice-e2e --bench synchronizer [-- latency chart bulk fleet flux]` (all by default) prints
//! the figures and writes them to `target/bench/deploy-synchronizer-world.txt`; the daemon's log
//! goes beside it. Nothing asserts on a time: shared machines vary.

mod bulk;
mod chart;
mod commits;
mod curves;
mod daemon;
mod fleet;
mod flux;
mod latency;
mod manifests;
#[path = "../../tests/sync_support/mod.rs"]
mod sync_support;
mod watch;

use std::time::Duration;

use sluice_e2e::apiserver::{ExtraApiserver, free_port};
use sluice_e2e::{TestNamespace, World, bench};

/// The at-rest window, in seconds (`SLUICE_BENCH_REST_SECS`, default 300).
fn rest_window() -> Duration {
    let secs = std::env::var("SLUICE_BENCH_REST_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    Duration::from_secs(secs)
}

fn main() {
    sluice_e2e::install_crypto_provider();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let wanted: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| ["latency", "chart", "bulk", "fleet", "flux", "curves"].contains(a))
        .collect();
    let run = |name: &str| wanted.is_empty() || wanted.contains(&name);

    let world = World::get();
    let runtime = bench::runtime();
    // A section not run this time keeps the last run's figures.
    let mut figures = bench::Figures::new("deploy-synchronizer-world.txt", "deploy-synchronizer");
    runtime.block_on(async {
        let binary = bench::build("deploy-synchronizer");
        let client = world.kube_client().await;
        sync_support::install_crd(&client).await;
        let apiserver = ExtraApiserver::start(world, free_port()).await;
        let ns = TestNamespace::create(&client, "bench-sync").await;
        sync_support::git_secret(&ns, world, "git-credentials").await;
        let daemon = daemon::Daemon::start(world, &binary, &apiserver, ns.name()).await;
        figures.section(
            "## daemon",
            Some(format!(
                "## daemon: {} (pid {}), namespace {}, its own kube-apiserver on :{}\n\n",
                binary.display(),
                daemon.pid(),
                ns.name(),
                apiserver.port()
            )),
        );
        let mut repos = Vec::new();
        let extra = kube::Client::try_from(apiserver.kube_config(world).await)
            .expect("a client for the bench's apiserver");
        let mut latency = None;
        if run("latency") {
            let (text, repo) = latency::run(world, &ns, &daemon, &extra).await;
            latency = Some(text);
            repos.push(repo);
        }
        figures.section("## latency", latency);
        let mut chart = None;
        if run("chart") {
            let (text, repo) = chart::run(world, &ns, &daemon, &extra).await;
            chart = Some(text);
            repos.push(repo);
        }
        figures.section("## chart", chart);
        let mut bulk = None;
        if run("bulk") {
            let (text, repo) = bulk::run(world, &ns, &daemon, &extra, rest_window()).await;
            bulk = Some(text);
            repos.push(repo);
        }
        figures.section("## bulk", bulk);
        let mut fleet = None;
        if run("fleet") {
            let (text, repo) = fleet::run(world, &binary, &apiserver, &client).await;
            fleet = Some(text);
            repos.push(repo);
        }
        figures.section("## fleet", fleet);
        // Long (10,000 objects, 500 GitSyncs): only when asked for.
        let mut curves = None;
        if wanted.contains(&"curves") {
            let rig = curves::Rig {
                world,
                binary: &binary,
                apiserver: &apiserver,
                client: &client,
                bench: &extra,
            };
            let (text, made) = curves::run(&rig).await;
            curves = Some(text);
            repos.extend(made);
        }
        figures.section("## curves", curves);
        let mut flux = None;
        if run("flux") {
            let (text, made) = flux::run(world, &binary, &client).await;
            flux = Some(text);
            repos.extend(made);
        }
        figures.section("## flux", flux);
        figures.section("## daemon log", Some(daemon.save_log()));
        // The daemon first, so it does not fight the namespace's deletion; then the namespace
        // (deleted in the background by TestNamespace's drop), then the apiserver.
        drop(daemon);
        drop(ns);
        drop(apiserver);
        for repo in repos {
            let _ = std::fs::remove_dir_all(world.git_bare_repo(&repo));
        }
    });
    let path = figures.write();
    println!("figures written to {}", path.display());
}
