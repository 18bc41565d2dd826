//! A commit costs what it changes. A GitSync holds 200 ConfigMaps; the synchronizer talks to an
//! apiserver of the test's own, whose `apiserver_request_total` counts its requests alone. A
//! commit that changes one ConfigMap sends exactly that one (one dry-run, one apply); a commit
//! that removes a field from a manifest sends that object, and the field leaves the live object;
//! an object edited by hand while the synchronizer was down is put back as soon as it starts
//! again, without a new commit, because a synchronizer without a record of what it applied sends
//! everything (and says so in `sluice_sync_applies_total`).

mod sync_support;

use std::time::Duration;

use deploy_synchronizer::controller::Metrics;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use prometheus_client::registry::Registry;
use serde_json::json;
use sluice_e2e::apimetrics::{self, Writes};
use sluice_e2e::apiserver::{ExtraApiserver, free_port};
use sluice_e2e::{TestNamespace, World, edit_by_hand, unique_name, wait_until};
use sync_support::*;

const COUNT: usize = 200;
const FILES: usize = 10;

/// ConfigMap `name`, written the way people write them: a comment, flow maps, quoting.
fn config_map(name: &str, rev: &str, debug: bool) -> String {
    let debug = if debug {
        "\n  debug: 'true'   # remove before go-live"
    } else {
        ""
    };
    format!(
        "---\n# settings shard, owned by the platform team\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  labels: {{app: shards, tier: \"config\"}}\ndata:\n  rev: \"{rev}\"{debug}\n  payload: {}\n",
        "x".repeat(48)
    )
}

/// The repository's tree: `shard-000` at `rev`, `shard-001` with a `debug` key when `debug`,
/// every other shard at `1`, spread over `FILES` multi-document files.
fn revision(rev: &str, debug: bool) -> tempfile::TempDir {
    let mut files: Vec<(String, String)> = Vec::new();
    for n in 0..COUNT {
        let file = format!("shards/shards-{}.yaml", n % FILES);
        let doc = match n {
            0 => config_map("shard-000", rev, false),
            1 => config_map("shard-001", "1", debug),
            _ => config_map(&format!("shard-{n:03}"), "1", false),
        };
        match files.iter_mut().find(|(path, _)| *path == file) {
            Some((_, text)) => text.push_str(&doc),
            None => files.push((file, doc)),
        }
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    tree(&refs)
}

/// Applies and dry-run applies of ConfigMaps the apiserver behind `client` has served.
async fn config_map_applies(client: &Client) -> (Writes, Writes) {
    let text = apimetrics::metrics_text(client).await.unwrap();
    (
        apimetrics::parse(&text, &["configmaps"]),
        apimetrics::parse_dry_runs(&text, &["configmaps"]),
    )
}

/// How many ConfigMap applies and dry-runs were served since `before`.
async fn applies_since(client: &Client, before: &(Writes, Writes)) -> (u64, u64) {
    let after = config_map_applies(client).await;
    let grown = |b: &Writes, a: &Writes| {
        let grown = apimetrics::grown(b, a);
        apimetrics::count(&grown, "configmaps", "APPLY")
    };
    (grown(&before.0, &after.0), grown(&before.1, &after.1))
}

fn sends(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text.lines()
        .filter(|line| line.starts_with("sluice_sync_applies_total{"))
        .collect::<Vec<_>>()
        .join("; ")
}

async fn data(ns: &TestNamespace, name: &str) -> serde_json::Value {
    let cm = ns.api::<ConfigMap>().get(name).await.unwrap();
    serde_json::to_value(cm.data.unwrap_or_default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_sends_only_what_it_changes_and_a_restart_sends_everything() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-changeset").await;
    let repo = unique_name("sync-changeset");
    let first = revision("1", true);
    let seed = world.git_seed(&repo, Some(first.path())).await.unwrap();
    git_secret(&ns, world, "git").await;
    create_git_sync(&ns, "shards", &world.git_http_url(&repo), "shards", "git").await;

    let apiserver = ExtraApiserver::start(world, free_port()).await;
    let ours = Client::try_from(apiserver.kube_config(world).await).unwrap();
    let mut registry = Registry::with_prefix("sluice");
    let metrics = Metrics::register(&mut registry);
    let synchronizer =
        Synchronizer::start_with(apiserver.kube_config(world).await, ns.name(), metrics, None);
    wait_applied(&ns, "shards", &seed).await;
    assert_eq!(data(&ns, "shard-001").await["debug"], "true");

    // One ConfigMap changes: it is the only one dry-run and applied.
    let before = config_map_applies(&ours).await;
    let second = revision("2", true);
    let next = commit_dir(world, &repo, second.path(), "shards: shard-000 to rev 2").await;
    wait_applied(&ns, "shards", &next).await;
    assert_eq!(data(&ns, "shard-000").await["rev"], "2");
    let (applies, dry_runs) = applies_since(&ours, &before).await;
    assert_eq!(
        (applies, dry_runs),
        (1, 1),
        "one changed ConfigMap of {COUNT}: one apply and one dry-run (applies, dry-runs)"
    );

    // A field removed from a manifest leaves the live object; again only that object is sent.
    let before = config_map_applies(&ours).await;
    let third = revision("2", false);
    let next = commit_dir(world, &repo, third.path(), "shards: no debug on shard-001").await;
    wait_applied(&ns, "shards", &next).await;
    let shard_001 = data(&ns, "shard-001").await;
    assert!(
        shard_001.get("debug").is_none(),
        "debug removed from Git stays in the cluster: {shard_001}"
    );
    assert_eq!(applies_since(&ours, &before).await, (1, 1));
    let counted = sends(&registry);
    assert!(
        counted.contains("scope=\"full\",reason=\"no_record\"} 1")
            && counted.contains("scope=\"changes\",reason=\"\"}"),
        "the first sync sends everything, the commits their changes: {counted}"
    );

    // Edited by hand while the synchronizer is down: put back when it starts, with no commit.
    synchronizer.stop().await;
    edit_by_hand(
        &ns.api::<ConfigMap>(),
        "shard-002",
        json!({"data": {"rev": "by-hand"}}),
    )
    .await;
    let mut registry = Registry::with_prefix("sluice");
    let metrics = Metrics::register(&mut registry);
    let restarted =
        Synchronizer::start_with(apiserver.kube_config(world).await, ns.name(), metrics, None);
    wait_until("shard-002 to be put back", Duration::from_secs(60), || {
        let ns = &ns;
        async move {
            let rev = data(ns, "shard-002").await["rev"].clone();
            if rev == "1" {
                Ok(())
            } else {
                Err(format!("rev is {rev}"))
            }
        }
    })
    .await;
    assert!(
        sends(&registry).contains("scope=\"full\",reason=\"no_record\"} 1"),
        "a restart without a record sends everything: {}",
        sends(&registry)
    );
    restarted.stop().await;
}
