//! Sluice and Flux side by side, on the same world and the same workload, one after the other:
//! Flux's source-controller, kustomize-controller and notification-controller as the world's
//! optional part runs them (`e2e/env up --with flux`, default flags), and a Sluice daemon of this
//! section's own (release build, its own namespace and apiserver, so its memory and requests are
//! this workload's alone). Each side gets its own namespace and its own git repositories with
//! the same content ([`crate::manifests`]).
//!
//! - commit → applied: a 50-object app (interval 1h), commits that each change one ConfigMap,
//!   each announced by a signed GitHub push: to the daemon's `/webhook/github` for Sluice, to a
//!   `Receiver` of type `github` (notification-controller, Flux's push trigger) for Flux; timed
//!   from the POST until a watch sees the new value, and until the status names the commit;
//! - cold sync: 1,000 objects (600 ConfigMaps, 200 Deployments, 200 Services), interval 1m on
//!   both (Flux: GitRepository and Kustomization), from the creation of the resources until the
//!   status names the seed revision with 1,000 inventory entries;
//! - drift → healed on the 1,000: a managed ConfigMap value edited by another field manager,
//!   timed until a watch sees git's value back. Flux heals at its next reconcile: its edits land
//!   at a random point of the 1m interval. The interval Flux's docs recommend for a Kustomization
//!   (`60m0s # detect drift and undo kubectl edits every hour`) is measured only when asked
//!   (`SLUICE_BENCH_FLUX_DOCS_DRIFT=1`: up to an hour);
//! - at rest: both sides at once for the window (`SLUICE_BENCH_REST_SECS`), the writes and dry
//!   runs each side's own apiserver served (Flux's part has a kube-apiserver of its own over the
//!   world's etcd for that), and the RSS of the processes doing the job (Flux: source-controller
//!   plus kustomize-controller; notification-controller apart).

mod phases;
mod side;

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use kube::Client;
use sluice_e2e::apimetrics::{self, Writes};
use sluice_e2e::apiserver::{ExtraApiserver, free_port};
use sluice_e2e::bench::{mib, ms, quantile, summary};
use sluice_e2e::{TestNamespace, World};

use crate::daemon::Daemon;
use crate::manifests::{BULK_OBJECTS, SMALL_OBJECTS};
use crate::sync_support::git_secret;
use phases::{AtRest, Bench, ColdSync, Commits, Healed};
use side::Flux;

const COMMITS: usize = 10;
const SLUICE_DRIFTS: usize = 10;
/// Each Flux drift takes up to its interval.
const FLUX_DRIFTS: usize = 4;
/// The interval of the 1,000-object syncs on both sides (Flux's docs: "The minimum value
/// should be 60 seconds").
const INTERVAL: &str = "1m";
const INTERVAL_SECS: u64 = 60;
/// The Kustomization interval Flux's docs recommend ("Recommended settings").
const DOCS_INTERVAL: &str = "60m";
const DOCS_INTERVAL_SECS: u64 = 3600;
/// What the at-rest windows count: the managed kinds, each side's own resources, events.
const SLUICE_RESOURCES: &[&str] = &[
    "configmaps",
    "services",
    "deployments",
    "gitsyncs",
    "events",
];
const FLUX_RESOURCES: &[&str] = &[
    "configmaps",
    "services",
    "deployments",
    "gitrepositories",
    "kustomizations",
    "receivers",
    "events",
];
/// The processes of Flux's part whose RSS is "the controllers doing the job".
const FLUX_JOB: &[&str] = &["flux-source-controller", "flux-kustomize-controller"];
const FLUX_RECEIVER: &str = "flux-notification-controller";

/// Everything the table and its details show.
struct Figures {
    commits: Commits,
    cold: ColdSync,
    healed: Healed,
    rest: AtRest,
    /// Flux's drift → healed at its docs' recommended interval, when measured.
    docs_drift: Option<Duration>,
}

/// The section's figures and the git repositories it made (removed by the caller).
pub async fn run(world: &World, binary: &Path, client: &Client) -> (String, Vec<String>) {
    let mut report = String::from("## flux: the same workload through Sluice and through Flux\n");
    let flux = match Flux::find(world).await {
        Ok(flux) => flux,
        Err(e) => {
            let _ = writeln!(report, "skipped: {e}\n");
            return (report, Vec::new());
        }
    };
    let _ = writeln!(
        report,
        "Flux: {} (default flags, leader election off; its own kube-apiserver over the world's etcd); Sluice: {} (its own kube-apiserver)",
        world.var("SLUICE_FLUX_VERSIONS").unwrap_or("?"),
        binary.display()
    );

    // Sluice's side: a daemon of this section's own.
    let apiserver = ExtraApiserver::start(world, free_port()).await;
    let sluice_api = Client::try_from(apiserver.kube_config(world).await).expect("a client");
    let s_ns = TestNamespace::create(client, "bench-vs-sluice").await;
    git_secret(&s_ns, world, "git-credentials").await;
    let daemon = Daemon::start(world, binary, &apiserver, s_ns.name()).await;
    let f_ns = TestNamespace::create(client, "bench-vs-flux").await;
    git_secret(&f_ns, world, "git-credentials").await;

    let mut bench = Bench {
        world,
        s_ns: &s_ns,
        daemon: &daemon,
        sluice_api: &sluice_api,
        f_ns: &f_ns,
        flux: &flux,
        repos: Vec::new(),
        work_trees: Vec::new(),
    };
    // 1. Commit → applied, push-triggered, 50 objects.
    let commits = bench.commits().await;
    // 2. Cold sync of 1,000 objects, interval 1m.
    let cold = bench.cold_sync().await;
    // 3. Drift → healed on the 1,000 objects.
    let healed = bench.drift().await;
    // 4. At rest, both at once, once Sluice's health verdict is in (its status write).
    let rest = bench.at_rest().await;
    // 5. Optionally, drift at the Kustomization interval Flux's docs recommend.
    let docs_drift = bench.docs_drift().await;

    let figures = Figures {
        commits,
        cold,
        healed,
        rest,
        docs_drift,
    };
    report.push_str(&table(&figures));
    details(&mut report, &figures);
    // The work trees go last, after the daemon, the namespaces and the apiserver.
    let Bench {
        repos,
        work_trees: _work_trees,
        ..
    } = bench;
    drop(daemon);
    drop(s_ns);
    drop(f_ns);
    drop(apiserver);
    (report, repos)
}

/// The table: each figure, both columns and the ratio.
fn table(figures: &Figures) -> String {
    let Figures {
        commits,
        cold,
        healed,
        rest,
        docs_drift,
    } = figures;
    let (s_commits, s_healed, minutes) = (&commits.sluice, &healed.s_healed, rest.minutes);
    let mib_of = |kib: u64| kib as f64 / 1024.0;
    let mut table =
        String::from("| figure | Sluice | Flux | Flux / Sluice |\n| --- | --- | --- | --- |\n");
    row(
        &mut table,
        &format!("commit → applied, p50, push-triggered, {SMALL_OBJECTS} objects (new value seen)"),
        p50(&s_commits.to_object).as_secs_f64() * 1e3,
        p50(&commits.f_to_object).as_secs_f64() * 1e3,
        "ms",
    );
    row(
        &mut table,
        "commit → status names the commit, p50",
        p50(&s_commits.to_status).as_secs_f64() * 1e3,
        p50(&commits.f_to_status).as_secs_f64() * 1e3,
        "ms",
    );
    row(
        &mut table,
        &format!(
            "cold sync, {BULK_OBJECTS} objects (creation → applied, {BULK_OBJECTS} in the inventory)"
        ),
        cold.s_cold.as_secs_f64() * 1e3,
        cold.f_cold.as_secs_f64() * 1e3,
        "ms",
    );
    row(
        &mut table,
        &format!(
            "drift → healed, p50 (Flux: Kustomization interval {INTERVAL}, edits at random points of it)"
        ),
        p50(s_healed).as_secs_f64() * 1e3,
        p50(&healed.f_healed).as_secs_f64() * 1e3,
        "ms",
    );
    docs_drift_row(&mut table, s_healed, *docs_drift);
    row(
        &mut table,
        &format!(
            "apiserver writes per minute at rest, {BULK_OBJECTS} objects, interval {INTERVAL} (dry runs apart)"
        ),
        total(&rest.s_rest) as f64 / minutes,
        total(&rest.f_rest) as f64 / minutes,
        "",
    );
    row(
        &mut table,
        "apiserver dry runs per minute at rest",
        total(&rest.s_rest_dry) as f64 / minutes,
        total(&rest.f_rest_dry) as f64 / minutes,
        "",
    );
    row(
        &mut table,
        "RSS at rest with the 50 + 1,000 objects (Flux: source + kustomize controllers)",
        mib_of(rest.s_mem.rss_kib),
        mib_of(rest.f_mem),
        "MiB",
    );
    row(
        &mut table,
        "RSS, highest sampled during the cold sync",
        mib_of(cold.s_peak),
        mib_of(cold.f_peak),
        "MiB",
    );
    table
}

/// The row of drift → healed at Flux's docs' recommended interval: measured, or what it would be.
fn docs_drift_row(table: &mut String, s_healed: &[Duration], docs_drift: Option<Duration>) {
    match docs_drift {
        Some(d) => row(
            table,
            &format!(
                "drift → healed, Flux at its docs' recommended interval {DOCS_INTERVAL} (n = 1)"
            ),
            p50(s_healed).as_secs_f64() * 1e3,
            d.as_secs_f64() * 1e3,
            "ms",
        ),
        None => {
            let _ = writeln!(
                table,
                "| drift → healed, Flux at its docs' recommended interval {DOCS_INTERVAL} | {} | not measured (SLUICE_BENCH_FLUX_DOCS_DRIFT=1); at the next reconcile: mean {} s, worst {} s | ~{:.0}x (mean) |",
                ms(p50(s_healed)),
                DOCS_INTERVAL_SECS / 2,
                DOCS_INTERVAL_SECS,
                (DOCS_INTERVAL_SECS as f64 / 2.0) / p50(s_healed).as_secs_f64().max(1e-3)
            );
        }
    }
}

/// The details under the table: distributions, requests and memory, side by side.
fn details(report: &mut String, figures: &Figures) {
    let Figures {
        commits,
        cold,
        healed,
        rest,
        ..
    } = figures;
    let s_commits = &commits.sluice;
    let _ = writeln!(report, "details:");
    let _ = writeln!(
        report,
        "  commit → applied, {COMMITS} commits each: Sluice value {} / status {}; Flux value {} / status {}",
        summary(&s_commits.to_object),
        summary(&s_commits.to_status),
        summary(&commits.f_to_object),
        summary(&commits.f_to_status)
    );
    let _ = writeln!(
        report,
        "  requests per commit: Sluice writes {} + dry runs {}; Flux writes {} + dry runs {}",
        total(&s_commits.writes) as f64 / COMMITS as f64,
        total(&s_commits.dry_runs) as f64 / COMMITS as f64,
        total(&commits.f_writes) as f64 / COMMITS as f64,
        total(&commits.f_dry) as f64 / COMMITS as f64
    );
    let _ = writeln!(
        report,
        "    Flux writes, all commits: {}",
        apimetrics::describe(&commits.f_writes)
    );
    let _ = writeln!(
        report,
        "  cold sync RSS: Sluice before {} → peak {}; Flux job before {} → peak {}",
        mib(cold.s_before.rss_kib),
        mib(cold.s_peak),
        mib(cold.f_before),
        mib(cold.f_peak)
    );
    let _ = writeln!(
        report,
        "  drift → healed: Sluice {}; Flux (interval {INTERVAL}) {}",
        summary(&healed.s_healed),
        summary(&healed.f_healed)
    );
    let _ = writeln!(
        report,
        "  at rest for {:.1} min, both at once: Sluice writes {}, dry runs {}; Flux writes {}, dry runs {}",
        rest.minutes,
        apimetrics::describe(&rest.s_rest),
        apimetrics::describe(&rest.s_rest_dry),
        apimetrics::describe(&rest.f_rest),
        apimetrics::describe(&rest.f_rest_dry)
    );
    let _ = writeln!(
        report,
        "  memory at rest: Sluice {} (max sampled {}); Flux {} (job max sampled {})\n",
        rest.s_mem,
        mib(rest.s_max),
        rest.f_memory,
        mib(rest.f_max)
    );
}

fn p50(durations: &[Duration]) -> Duration {
    let mut sorted = durations.to_vec();
    sorted.sort();
    quantile(&sorted, 0.5)
}

/// One row of the table: the figure, both columns and Flux / Sluice.
fn row(table: &mut String, what: &str, sluice: f64, flux: f64, unit: &str) {
    let ratio = if sluice > 0.0 {
        format!("{:.1}x", flux / sluice)
    } else if flux > 0.0 {
        "∞ (Sluice 0)".into()
    } else {
        "=".into()
    };
    let fmt = |v: f64| match unit {
        "ms" => format!("{v:.1} ms"),
        "MiB" => format!("{v:.1} MiB"),
        _ => format!("{v:.1}"),
    };
    let _ = writeln!(
        table,
        "| {what} | {} | {} | {ratio} |",
        fmt(sluice),
        fmt(flux)
    );
}

fn total(writes: &Writes) -> u64 {
    writes.values().sum()
}
