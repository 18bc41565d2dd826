//! etcd freezes (SIGSTOP) for 20 s in the middle of a sync of 300 objects, then thaws: the
//! apiserver stalls rather than fails, the synchronizer's requests time out or hang, and once
//! etcd is back the sync converges by itself: every object of the commit applied, whole, none of
//! those kept deleted on the way (their uids never change), the status at the commit.
//!
//! A cluster of the test's own (an etcd and a kube-apiserver, the world's binaries and
//! certificates, see `sluice_e2e::etcd`): freezing the world's etcd would stall every other test
//! and cost the world's controller-manager its leadership.

mod sync_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sluice_e2e::apiserver::{ExtraApiserver, free_port};
use sluice_e2e::etcd::TestEtcd;
use sluice_e2e::{TestNamespace, World, unique_name, wait_until};
use sync_support::*;

const KEPT: usize = 100;
const ADDED: usize = 200;
const PAUSE: Duration = Duration::from_secs(20);

/// The catalogue's price lists: `KEPT` of them, plus `added` new ones, each stamped `rev`.
fn prices(added: usize, rev: &str) -> tempfile::TempDir {
    let mut text = String::from("# Price lists per market; regenerated nightly.\n");
    let names = (0..KEPT)
        .map(|i| format!("prices-{i:03}"))
        .chain((0..added).map(|i| format!("promo-{i:03}")));
    for name in names {
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  currency: EUR\n  rev:  {rev}\n"
        ));
    }
    tree(&[("catalogue/prices.yaml", &text)])
}

/// name → (uid, rev) of the namespace's price lists.
async fn live(ns: &TestNamespace) -> BTreeMap<String, (String, String)> {
    let all = config_maps(ns, "").await.into_iter();
    all.filter_map(|(name, (uid, data))| Some((name, (uid, data.get("rev")?.clone()))))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_through_a_frozen_etcd_converges_once_it_thaws() {
    let world = World::get();
    let etcd = TestEtcd::start(world).await;
    let apiserver = ExtraApiserver::start_over(world, free_port(), Some(&etcd.url())).await;
    let config = apiserver.kube_config(world).await;
    let client = kube::Client::try_from(config.clone()).unwrap();
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "etcd-paused").await;
    let repo = unique_name("etcd-paused");
    let first = prices(0, "one");
    let seed = world.git_seed(&repo, Some(first.path())).await.unwrap();
    git_secret(&ns, world, "git").await;
    create_git_sync(
        &ns,
        "catalogue",
        &world.git_http_url(&repo),
        "catalogue",
        "git",
    )
    .await;
    let synchronizer = Synchronizer::start_with(config, ns.name(), Default::default(), None);
    wait_applied(&ns, "catalogue", &seed).await;
    let before = live(&ns).await;
    assert_eq!(before.len(), KEPT);

    // The next commit restamps the 100 and adds 200; etcd freezes once the first are written.
    let second = prices(ADDED, "two");
    let next = commit_dir(world, &repo, second.path(), "catalogue: winter promotions").await;
    let written = wait_until("the first writes", Duration::from_secs(60), || async {
        let written = live(&ns)
            .await
            .values()
            .filter(|(_, rev)| rev == "two")
            .count();
        if written >= 20 {
            Ok(written)
        } else {
            Err(format!("{written} written"))
        }
    })
    .await;
    etcd.pause();
    tokio::time::sleep(PAUSE).await;
    etcd.resume();
    let thawed = Instant::now();

    wait_status_within(
        &ns,
        "catalogue",
        "the commit to be applied after the thaw",
        Duration::from_secs(180),
        |s| s.applied(&next) && s.is("Ready=True"),
    )
    .await;
    println!(
        "etcd frozen {PAUSE:?} with {written} of {} written; applied {:?} after the thaw",
        KEPT + ADDED,
        thawed.elapsed()
    );
    let after = live(&ns).await;
    assert_eq!(after.len(), KEPT + ADDED, "every object applied");
    assert!(after.values().all(|(_, rev)| rev == "two"), "each whole");
    for (name, (uid, _)) in &before {
        assert_eq!(&after[name].0, uid, "{name} was deleted on the way");
    }
    synchronizer.stop().await;
}
