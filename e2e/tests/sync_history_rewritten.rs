//! A person rewrites the synced branch (`git push --force`): main moves to a commit that does not
//! descend from the applied one. The GitSync applies the new tip as it is: what the new tip still
//! holds stays (changed where it changed), what only the dropped commit added is pruned, and
//! nothing else is touched.

mod sync_support;

use k8s_openapi::api::core::v1::ConfigMap;
use sluice_e2e::{TestNamespace, World, unique_name};
use sync_support::*;

fn settings(name: &str, value: &str) -> String {
    format!(
        "# {name}'s settings.\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: \"{value}\"\n"
    )
}

async fn value(ns: &TestNamespace, name: &str) -> Option<String> {
    let cm = ns.api::<ConfigMap>().get_opt(name).await.unwrap()?;
    cm.data.and_then(|d| d.get("value").cloned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_force_pushed_branch_is_applied_as_it_now_is() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-rewrite").await;
    let repo = unique_name("sync-rewrite");
    let (a, b) = (settings("a", "1"), settings("b", "1"));
    let files = tree(&[("app/a.yaml", &a), ("app/b.yaml", &b)]);
    let seed = world.git_seed(&repo, Some(files.path())).await.unwrap();
    git_secret(&ns, world, "git").await;
    create_git_sync(&ns, "app", &world.git_http_url(&repo), "app", "git").await;
    let synchronizer = Synchronizer::start(world, ns.name()).await;
    wait_applied(&ns, "app", &seed).await;

    // A commit adds c; it is applied.
    let c = settings("c", "1");
    let files = tree(&[("app/a.yaml", &a), ("app/b.yaml", &b), ("app/c.yaml", &c)]);
    let added = commit_dir(world, &repo, files.path(), "add c").await;
    wait_applied(&ns, "app", &added).await;
    assert_eq!(value(&ns, "c").await.as_deref(), Some("1"));

    // Someone rewrites main from the seed: no c, b changed, d new. Force-pushed.
    let (b2, d) = (settings("b", "2"), settings("d", "1"));
    let files = tree(&[("app/a.yaml", &a), ("app/b.yaml", &b2), ("app/d.yaml", &d)]);
    let rewritten = commit_dir_onto(world, &repo, files.path(), Some(&seed), "rewrite").await;
    let merge_base = git_in(world, &repo, &["merge-base", &added, &rewritten]);
    assert_eq!(
        merge_base, seed,
        "the applied commit is no longer in main's history"
    );
    let status = wait_status(&ns, "app", "the rewritten tip applied", |s| {
        s.applied(&rewritten)
    })
    .await;
    assert!(status.is("Ready=True"), "{status:?}");
    assert_eq!(value(&ns, "a").await.as_deref(), Some("1"), "kept");
    assert_eq!(value(&ns, "b").await.as_deref(), Some("2"), "changed");
    assert_eq!(value(&ns, "d").await.as_deref(), Some("1"), "added");
    assert_eq!(
        value(&ns, "c").await,
        None,
        "only what the dropped commit added is pruned"
    );
    let mut inventory: Vec<String> = status.inventory.iter().map(|e| e.name.clone()).collect();
    inventory.sort();
    assert_eq!(inventory, ["a", "b", "d"]);
    synchronizer.stop().await;
}
