//! Commit → applied through a signed push webhook ([`crate::commits`]), and drift → healed, on a
//! 50-object GitSync.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use serde_json::json;
use sluice_e2e::bench::{ms, summary};
use sluice_e2e::{TestNamespace, World, unique_name};

use crate::commits;
use crate::daemon::Daemon;
use crate::manifests::{SMALL_CONFIG_MAPS, SMALL_OBJECTS, SMALL_PATH, write_small};
use crate::sync_support::{create_git_sync_spec, wait_applied};
use crate::watch::{self, Step};

const COMMITS: usize = 15;
const DRIFTS: usize = 20;
const NAME: &str = "web";

fn value_of(cm: &ConfigMap) -> Option<&str> {
    cm.data.as_ref()?.get("value").map(String::as_str)
}

fn value_is(want: String) -> Step<ConfigMap> {
    Box::new(move |cm: &ConfigMap| value_of(cm) == Some(want.as_str()))
}

/// The figures, and the git repository made (removed by the caller once the daemon is gone).
pub async fn run(
    world: &World,
    ns: &TestNamespace,
    daemon: &Daemon,
    apiserver: &Client,
) -> (String, String) {
    let mut report = format!(
        "## latency: GitSync over {SMALL_OBJECTS} objects (30 ConfigMaps, 10 Deployments, 10 Services), interval 1h\n"
    );
    let repo = unique_name("bench-sync-small");
    let url = world.git_http_url(&repo);
    let dir = tempfile::tempdir().expect("a work tree");
    write_small(dir.path(), "v1", world.registry());
    let seed = world
        .git_seed(&repo, Some(dir.path()))
        .await
        .expect("the seed commit");
    let created = Instant::now();
    create_git_sync_spec(
        ns,
        NAME,
        json!({
            "source": {"url": url, "ref": {"branch": "main"}, "path": SMALL_PATH,
                       "interval": "1h", "secretRef": {"name": "git-credentials"}},
            "targetNamespace": ns.name(),
            "healthTimeout": "5m"
        }),
    )
    .await;
    wait_applied(ns, NAME, &seed).await;
    let _ = writeln!(
        report,
        "first sync (creation → status applied, polled): {}",
        ms(created.elapsed())
    );

    // Commit → applied: one ConfigMap value per commit, announced by a signed GitHub push.
    let target = commits::Target {
        world,
        ns,
        daemon,
        apiserver,
        repo: &repo,
        sync: NAME,
        dir: dir.path(),
        config_map: "web-cm-00",
    };
    let timings = commits::run(&target, COMMITS, |dir, value| {
        write_small(dir, value, world.registry())
    })
    .await;
    commits::report(&mut report, &timings, "target p50 < 500 ms", "");
    let maps = ns.api::<ConfigMap>();

    // Drift → healed: another field manager edits a managed value; self-heal puts it back.
    // A different ConfigMap each time: the same one edited again and again is a fight, healed
    // with backoff on purpose.
    let mut healed = Vec::new();
    let mut patch_answered = Vec::new();
    for i in 0..DRIFTS {
        let name = format!("web-cm-{:02}", (i % (SMALL_CONFIG_MAPS - 1)) + 1);
        let cm = maps.get(&name).await.expect("a ConfigMap");
        let original = value_of(&cm).expect("a value").to_owned();
        let drifted = format!("drifted-{i}");
        let seen = watch::spawn(
            maps.clone(),
            &name,
            cm.metadata.resource_version.clone().unwrap_or_default(),
            vec![value_is(drifted.clone()), value_is(original.clone())],
            Duration::from_secs(60),
        );
        let edited = Instant::now();
        crate::watch::drift(&maps, &name, "value", &drifted).await;
        patch_answered.push(edited.elapsed());
        let at = seen.await.expect("the watch task").expect("healed");
        healed.push(at[1] - edited);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let _ = writeln!(
        report,
        "drift → healed, {DRIFTS} edits by field manager bench-drift (a different ConfigMap each):"
    );
    let _ = writeln!(
        report,
        "  from the edit's PATCH to git's value back:     {}   target p50 < 500 ms",
        summary(&healed)
    );
    let _ = writeln!(
        report,
        "  (the edit's PATCH alone, answered:             {})",
        summary(&patch_answered)
    );
    let _ = writeln!(
        report,
        "memory after the latency runs: {}\n",
        daemon.memory()
    );
    (report, repo)
}
