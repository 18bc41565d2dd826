//! The 10,000-tag scan: the scanner's full listing of a repository on the paged registry
//! (distribution 3, pages of 1,000 with a `Link` to the next) and the policy's choice, in a
//! child process (this binary re-executed) that does only that, so its VmHWM is the scan's peak.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use config_updater::policy::{CompiledPolicy, Policy};
use config_updater::scan::{ClientOptions, ImageName, RegistryClient, TagList, list_all_tags};
use sluice_e2e::World;

use sluice_e2e::bench::ms;
use sluice_e2e::bench::{Memory, mib};

/// The first argument that makes this binary the scanning child.
pub const CHILD_ARG: &str = "--scan-child";
/// The repository holding the tags, kept across runs (pushing 10,000 tags takes a minute).
/// The heading of this section in the figures file.
pub const HEADING: &str = "## 10,000-tag scan";
const REPOSITORY: &str = "bench/tags10k";
const PREFIX: &str = "build";
const COUNT: usize = 10_000;
const ROUNDS: usize = 5;

fn client(registry: &str) -> RegistryClient {
    let image = ImageName::parse(&format!("{registry}/{REPOSITORY}")).expect("an image name");
    let options = ClientOptions {
        insecure: true,
        ..Default::default()
    };
    RegistryClient::new(image, options).expect("a registry client")
}

/// Numerical on the build number: `build-10000` wins.
fn policy() -> CompiledPolicy {
    let policy: Policy = serde_json::from_value(serde_json::json!({
        "policy": {"numerical": {"order": "asc"}},
        "filterTags": {"pattern": format!("^{PREFIX}-(?P<n>[0-9]+)$"), "extract": "$n"}
    }))
    .expect("a policy");
    CompiledPolicy::new(&policy).expect("a valid policy")
}

async fn list(registry: &str) -> TagList {
    list_all_tags(&client(registry), None)
        .await
        .expect("the complete tag list")
}

/// The child: one listing and one choice on a current-thread runtime, then one line:
/// `tags pages requests list_us choose_us chosen hwm_kib rss_kib`.
pub fn child(args: &[String]) {
    let registry = args.first().expect("the registry address");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let start = Instant::now();
    let list = runtime.block_on(list(registry));
    let listed = start.elapsed();
    let start = Instant::now();
    let choice = policy().choose(&list.tags, &HashSet::new());
    let chosen = start.elapsed();
    let memory = Memory::of("self");
    println!(
        "{} {} {} {} {} {} {} {}",
        list.tags.len(),
        list.pages,
        list.requests,
        listed.as_micros(),
        chosen.as_micros(),
        choice.tag().unwrap_or("-"),
        memory.hwm_kib,
        memory.rss_kib
    );
}

struct Round {
    tags: usize,
    pages: usize,
    requests: u32,
    list: Duration,
    choose: Duration,
    chosen: String,
    hwm_kib: u64,
    wall: Duration,
}

fn child_round(registry: &str) -> Round {
    let start = Instant::now();
    let out = std::process::Command::new(std::env::current_exe().expect("this binary"))
        .args([CHILD_ARG, registry])
        .output()
        .expect("running the scan child");
    let wall = start.elapsed();
    assert!(
        out.status.success(),
        "the scan child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = line.split_whitespace().collect();
    let num = |i: usize| f[i].parse::<u64>().expect("a number");
    Round {
        tags: num(0) as usize,
        pages: num(1) as usize,
        requests: num(2) as u32,
        list: Duration::from_micros(num(3)),
        choose: Duration::from_micros(num(4)),
        chosen: f[5].to_owned(),
        hwm_kib: num(6),
        wall,
    }
}

pub async fn run(world: &World) -> String {
    let registry = world.require("SLUICE_REGISTRY_PAGED").to_owned();
    let mut report = String::from("## 10,000-tag scan (paged registry, distribution 3)\n");
    let present = match list_all_tags(&client(&registry), None).await {
        Ok(list) => list.tags.len(),
        Err(_) => 0,
    };
    if present >= COUNT {
        let _ = writeln!(
            report,
            "tags: {present} already in {registry}/{REPOSITORY}, reused"
        );
    } else {
        let start = Instant::now();
        world
            .run(
                "push-image",
                &[
                    "--paged",
                    "--count",
                    &COUNT.to_string(),
                    &format!("{REPOSITORY}:{PREFIX}"),
                ],
            )
            .await;
        let _ = writeln!(
            report,
            "tags: pushed {COUNT} to {registry}/{REPOSITORY} in {:.0} s (push-image --paged --count)",
            start.elapsed().as_secs_f64()
        );
    }
    let mut rounds: Vec<Round> = (0..ROUNDS).map(|_| child_round(&registry)).collect();
    let first = &rounds[0];
    let _ = writeln!(
        report,
        "listing: {} tags in {} pages, {} requests; policy (numerical on the build number) chose {}",
        first.tags, first.pages, first.requests, first.chosen
    );
    rounds.sort_by_key(|r| r.list + r.choose);
    let median = &rounds[rounds.len() / 2];
    let best = &rounds[0];
    let hwm = rounds.iter().map(|r| r.hwm_kib).max().unwrap_or(0);
    let _ = writeln!(
        report,
        "scan (full listing + choice), median of {ROUNDS} child processes: {} (listing {}, choice {}); best {}; target < 2 s",
        ms(median.list + median.choose),
        ms(median.list),
        ms(median.choose),
        ms(best.list + best.choose),
    );
    let _ = writeln!(
        report,
        "peak memory of the scanning process (VmHWM of a child that only lists and chooses, current-thread runtime): {} (max of {ROUNDS}); child wall time incl. start-up {}\n",
        mib(hwm),
        ms(median.wall),
    );
    report
}
