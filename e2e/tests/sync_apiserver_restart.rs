//! The kube-apiserver dies in the middle of an apply and comes back: a synchronizer talking to an
//! apiserver of the test's own (a second one over the world's etcd) is applying a revision of 300
//! ConfigMaps when that apiserver is killed; once it is restarted the GitSync ends Ready on the
//! revision with every object applied, the objects the revision dropped pruned only then, none of
//! the kept ones re-created; the reconcile counters show the failed attempts before the success.

mod sync_support;

use std::time::{Duration, Instant};

use deploy_synchronizer::controller::Metrics;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, WatchEvent, WatchParams};
use sluice_e2e::apiserver::{ExtraApiserver, free_port};
use sluice_e2e::{TestNamespace, World, unique_name};
use sync_support::*;

const KEPT: usize = 10;
const DROPPED: usize = 20;
const BULK: usize = 290;
const FILES: usize = 10;
/// The apiserver dies once this many objects of the 300 are written.
const KILL_AFTER: usize = 100;

fn config_map(name: &str, rev: &str) -> String {
    format!(
        "---\n# generated settings shard\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  labels: {{app: shards}}\ndata:\n  rev: {rev}\n  payload: \"{}\"\n",
        "x".repeat(64)
    )
}

/// `count` ConfigMaps `prefix-NNN` at `rev`, spread over `FILES` multi-document files.
fn shards(files: &mut Vec<(String, String)>, prefix: &str, count: usize, rev: &str) {
    for n in 0..count {
        let file = format!("shards/{prefix}-{}.yaml", n % FILES);
        let doc = config_map(&format!("{prefix}-{n:03}"), rev);
        match files.iter_mut().find(|(path, _)| *path == file) {
            Some((_, text)) => text.push_str(&doc),
            None => files.push((file, doc)),
        }
    }
}

fn revision(kept_rev: &str, with_dropped: bool, with_bulk: bool) -> tempfile::TempDir {
    let mut files = Vec::new();
    shards(&mut files, "kept", KEPT, kept_rev);
    if with_dropped {
        shards(&mut files, "dropped", DROPPED, "one");
    }
    if with_bulk {
        shards(&mut files, "bulk", BULK, "two");
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    tree(&refs)
}

/// `sluice_reconcile_total` by result, from the registry's text.
fn reconciles(registry: &prometheus_client::registry::Registry) -> Vec<(String, f64)> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text.lines()
        .filter_map(|line| line.strip_prefix("sluice_reconcile_total{result=\""))
        .filter_map(|rest| {
            let (result, value) = rest.split_once("\"} ")?;
            Some((result.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apiserver_killed_mid_apply_ends_with_every_object_applied_once_back() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-apirestart").await;
    let repo = unique_name("sync-apirestart");
    let first = revision("one", true, false);
    let seed = world.git_seed(&repo, Some(first.path())).await.unwrap();
    git_secret(&ns, world, "git").await;
    create_git_sync(&ns, "shards", &world.git_http_url(&repo), "shards", "git").await;

    let started = Instant::now();
    let mut apiserver = ExtraApiserver::start(world, free_port()).await;
    println!(
        "extra apiserver {} ready in {:?}",
        apiserver.url(),
        started.elapsed()
    );
    let mut registry = prometheus_client::registry::Registry::with_prefix("sluice");
    let metrics = Metrics::register(&mut registry);
    let synchronizer =
        Synchronizer::start_with(apiserver.kube_config(world).await, ns.name(), metrics, None);
    wait_applied(&ns, "shards", &seed).await;
    let configmaps = ns.api::<ConfigMap>();
    let uid = |name: String| {
        let api = configmaps.clone();
        async move { api.get(&name).await.unwrap().metadata.uid.unwrap() }
    };
    let mut kept_uids = Vec::new();
    for n in 0..KEPT {
        kept_uids.push(uid(format!("kept-{n:03}")).await);
    }

    // Watch (through the world's apiserver) for the first write of the next revision.
    let list = configmaps.list(&ListParams::default()).await.unwrap();
    let version = list.metadata.resource_version.unwrap();
    let mut watch = configmaps
        .watch(&WatchParams::default(), &version)
        .await
        .unwrap()
        .boxed();
    let second = revision("two", false, true);
    let next = commit_dir(
        world,
        &repo,
        second.path(),
        "shards: 300 of them, dropped ones gone",
    )
    .await;
    let committed = Instant::now();
    // Killed a third of the way through the writes.
    let seen = tokio::time::timeout(Duration::from_secs(60), async {
        let mut seen = std::collections::BTreeSet::new();
        while let Some(event) = watch.try_next().await.unwrap() {
            if let WatchEvent::Added(cm) | WatchEvent::Modified(cm) = event
                && cm
                    .data
                    .as_ref()
                    .and_then(|d| d.get("rev"))
                    .map(String::as_str)
                    == Some("two")
            {
                seen.insert(cm.metadata.name.unwrap_or_default());
                if seen.len() >= KILL_AFTER {
                    return seen.len();
                }
            }
        }
        panic!(
            "the watch ended after {} writes of the next revision",
            seen.len()
        );
    })
    .await
    .expect("the next revision's apply gets that far within 60 s");
    apiserver.kill();
    let killed = Instant::now();
    drop(watch);

    // What the cluster holds at the kill: part of the revision, no prune yet.
    let live = configmaps.list(&ListParams::default()).await.unwrap().items;
    let written = live
        .iter()
        .filter(|cm| {
            cm.data
                .as_ref()
                .and_then(|d| d.get("rev"))
                .map(String::as_str)
                == Some("two")
        })
        .count();
    let dropped_left = live
        .iter()
        .filter(|cm| {
            cm.metadata
                .name
                .as_deref()
                .unwrap_or("")
                .starts_with("dropped-")
        })
        .count();
    println!(
        "killed {:?} after the commit, having seen {seen} writes; {written} of {} written then",
        killed - committed,
        KEPT + BULK
    );
    assert!(
        written < KEPT + BULK,
        "the apply finished before the kill ({written} written): nothing was interrupted"
    );
    assert_eq!(dropped_left, DROPPED, "pruned before the apply was done");

    // Down for a while: the synchronizer's attempts fail. Then back.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let restarting = Instant::now();
    apiserver.restart(world).await;
    println!("restarted and ready in {:?}", restarting.elapsed());
    let recovering = Instant::now();
    let recovered = wait_status_within(
        &ns,
        "shards",
        "the revision to be applied after the restart",
        Duration::from_secs(120),
        |s| s.applied(&next) && s.is("Ready=True"),
    )
    .await;
    println!("applied {:?} after the restart", recovering.elapsed());

    // Every object of the revision, at the revision; the kept ones never re-created; the
    // dropped ones pruned; the inventory exactly the revision.
    let live = configmaps.list(&ListParams::default()).await.unwrap().items;
    let mut names: Vec<&str> = live
        .iter()
        .filter(|cm| {
            cm.data
                .as_ref()
                .and_then(|d| d.get("rev"))
                .map(String::as_str)
                == Some("two")
        })
        .filter_map(|cm| cm.metadata.name.as_deref())
        .collect();
    names.sort();
    assert_eq!(names.len(), KEPT + BULK, "objects at the revision");
    assert!(
        !live.iter().any(|cm| cm
            .metadata
            .name
            .as_deref()
            .unwrap_or("")
            .starts_with("dropped-")),
        "the dropped ones are pruned"
    );
    for (n, before) in kept_uids.iter().enumerate() {
        assert_eq!(
            &uid(format!("kept-{n:03}")).await,
            before,
            "kept-{n:03} re-created"
        );
    }
    assert_eq!(recovered.inventory.len(), KEPT + BULK);
    assert_eq!(recovered.history[0].revision, next);
    assert!(recovered.history[0].applied_at.is_some());
    assert_eq!(recovered.history[1].revision, seed);

    // The story: failed attempts while the apiserver was away, then the success.
    let counts = reconciles(&registry);
    println!("sluice_reconcile_total: {counts:?}");
    let failed: f64 = counts
        .iter()
        .filter(|(result, _)| result != "success")
        .map(|(_, n)| n)
        .sum();
    assert!(failed >= 1.0, "no failed reconcile counted: {counts:?}");
    let events = ns.api::<Event>().list(&Default::default()).await.unwrap();
    let story: Vec<String> = events
        .items
        .iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("shards"))
        .map(|e| {
            format!(
                "{} {}: {}",
                e.type_.as_deref().unwrap_or(""),
                e.reason.as_deref().unwrap_or(""),
                e.note.as_deref().unwrap_or("")
            )
        })
        .collect();
    println!("events: {story:#?}");
    // (Repeated events are folded into one series by the recorder, so count reasons, not
    // objects.) The prune of the dropped objects happened once, after the whole apply.
    assert!(
        story
            .iter()
            .any(|e| e.starts_with("Normal Pruned: pruned 20 object(s)")),
        "{story:#?}"
    );

    synchronizer.stop().await;
    drop(apiserver);
}
