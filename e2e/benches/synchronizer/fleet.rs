//! A fleet: 300 GitSyncs of 20 objects each (6,000 objects: 18 ConfigMaps and 2 Services per
//! GitSync, no pods), applied cold on one replica, then on three replicas sharing 6 shards, each
//! run in a namespace of its own: the time from the first GitSync created to all 300 applied,
//! and each replica's memory.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use kube::Client;
use serde_json::json;
use sluice_e2e::apiserver::ExtraApiserver;
use sluice_e2e::bench::mib;
use sluice_e2e::{TestNamespace, World, unique_name};

use crate::daemon::Daemon;
use crate::sync_support::{applied_at, create_git_sync_spec, git_secret};

const SYNCS: usize = 300;
const CONFIG_MAPS: usize = 18;
const SERVICES: usize = 2;
const SHARDS: &str = "6";

/// One directory per GitSync, its objects in one file.
fn write_fleet(dir: &Path) {
    for s in 0..SYNCS {
        let mut text = format!("# Team {s:03}'s settings and services.\n");
        for c in 0..CONFIG_MAPS {
            let _ = write!(
                text,
                "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: team-{s:03}-settings-{c:02}}}\ndata: {{level: \"{c}\", owner: team-{s:03}}}\n"
            );
        }
        for v in 0..SERVICES {
            let _ = write!(
                text,
                "---\napiVersion: v1\nkind: Service\nmetadata: {{name: team-{s:03}-svc-{v}}}\nspec:\n  selector: {{app: team-{s:03}}}\n  ports: [{{port: {}, targetPort: 8080}}]\n",
                80 + v
            );
        }
        let path = dir.join(format!("teams/team-{s:03}/objects.yaml"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// How many of the namespace's GitSyncs have applied `revision` (0 while it cannot be read).
async fn applied(ns: &TestNamespace, revision: &str) -> usize {
    applied_at(ns, revision).await.unwrap_or(0)
}

/// One cold run on `replicas` replicas; returns the time to all applied and each replica's memory.
async fn cold(
    world: &World,
    binary: &Path,
    apiserver: &ExtraApiserver,
    client: &Client,
    url: &str,
    revision: &str,
    replicas: usize,
) -> (Duration, Vec<String>) {
    let ns = TestNamespace::create(client, &format!("bench-fleet-{replicas}")).await;
    git_secret(&ns, world, "git-credentials").await;
    let mut daemons = Vec::new();
    for r in 0..replicas {
        let name = format!("replica-{r}");
        let args: Vec<&str> = if replicas > 1 {
            vec!["--shards", SHARDS, "--leader-election-namespace", ns.name()]
        } else {
            Vec::new()
        };
        let env = [("POD_NAME", name.as_str())];
        daemons.push(Daemon::start_with(world, binary, apiserver, ns.name(), &args, &env).await);
    }
    if replicas > 1 {
        // The ring settles before the work comes: every shard held.
        let settle = Instant::now();
        loop {
            let mut held = 0.0;
            for d in &daemons {
                held += d.metric("sluice_working").await;
            }
            if held >= 6.0 || settle.elapsed() > Duration::from_secs(60) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let start = Instant::now();
    for s in 0..SYNCS {
        create_git_sync_spec(
            &ns,
            &format!("team-{s:03}"),
            json!({
                "source": {"url": url, "ref": {"branch": "main"}, "path": format!("teams/team-{s:03}"),
                           "interval": "1h", "secretRef": {"name": "git-credentials"}},
                "targetNamespace": ns.name(),
            }),
        )
        .await;
    }
    let mut max_rss = vec![0u64; replicas];
    loop {
        for (i, d) in daemons.iter().enumerate() {
            max_rss[i] = max_rss[i].max(d.memory().rss_kib);
        }
        if applied(&ns, revision).await == SYNCS {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(900),
            "{replicas} replica(s): {} of {SYNCS} applied after 15 min",
            applied(&ns, revision).await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let took = start.elapsed();
    let memory = daemons
        .iter()
        .zip(&max_rss)
        .map(|(d, peak)| format!("{} (peak sampled {})", d.memory(), mib(*peak)))
        .collect();
    drop(daemons);
    drop(ns);
    (took, memory)
}

pub async fn run(
    world: &World,
    binary: &Path,
    apiserver: &ExtraApiserver,
    client: &Client,
) -> (String, String) {
    let repo = unique_name("bench-fleet");
    let dir = tempfile::tempdir().unwrap();
    write_fleet(dir.path());
    let revision = world.git_seed(&repo, Some(dir.path())).await.unwrap();
    let url = world.git_http_url(&repo);
    let mut text = format!(
        "## fleet: {SYNCS} GitSyncs of {} objects each ({} objects: {CONFIG_MAPS} ConfigMaps and \
         {SERVICES} Services per GitSync), cold, interval 1h\n",
        CONFIG_MAPS + SERVICES,
        SYNCS * (CONFIG_MAPS + SERVICES)
    );
    let (one, one_memory) = cold(world, binary, apiserver, client, &url, &revision, 1).await;
    let _ = writeln!(
        text,
        "1 replica: all {SYNCS} applied {:.1} s after the first was created; memory: {}",
        one.as_secs_f64(),
        one_memory.join("; ")
    );
    let (three, three_memory) = cold(world, binary, apiserver, client, &url, &revision, 3).await;
    let _ = writeln!(
        text,
        "3 replicas (--shards {SHARDS}): all {SYNCS} applied {:.1} s after the first was created \
         ({:.2}x the one replica's speed; same 2-core machine, shared with the API server and etcd); \
         memory each: {}\n",
        three.as_secs_f64(),
        one.as_secs_f64() / three.as_secs_f64(),
        three_memory.join("; ")
    );
    (text, repo)
}
