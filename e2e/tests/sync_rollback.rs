//! A rollout that goes bad proposes its own rollback, and merging it rolls the cluster back:
//! the crash-looping revision times out, Sluice pushes `git revert`'s commit to branch
//! `sluice/rollback/<short>` (never to main), records it in the revision's history and says so in
//! an event; a person merges the branch, and the sync applies the revert — the old image runs
//! again and the sync is Healthy.

mod sync_support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::events::v1::Event;
use serde_json::json;
use sluice_e2e::{TestNamespace, World, unique_name};
use sync_support::*;

async fn image_running(ns: &TestNamespace) -> String {
    let live = ns.api::<Deployment>().get("storefront").await.unwrap();
    live.spec.template.spec.unwrap().containers[0]
        .image
        .clone()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_rollout_proposes_its_revert_and_merging_it_rolls_back() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-rollback").await;
    world
        .push_image(&["demo/storefront:2.0.1", "demo/storefront:2.0.13"])
        .await;
    let image = |tag: &str| format!("{}/demo/storefront:{tag}", world.registry());

    let repo = unique_name("sync-rollback");
    let good = tree(&[(
        "storefront/deployment.yaml",
        &STOREFRONT.replace("{image}", &image("2.0.1")),
    )]);
    let seed = world.git_seed(&repo, Some(good.path())).await.unwrap();
    git_secret(&ns, world, "git").await;
    create_git_sync(
        &ns,
        "storefront",
        &world.git_http_url(&repo),
        "storefront",
        "git",
    )
    .await;
    patch_spec(
        &ns,
        "storefront",
        json!({"healthTimeout": "8s", "rollback": {"enabled": true}}),
    )
    .await;
    let synchronizer = Synchronizer::start(world, ns.name()).await;
    wait_applied(&ns, "storefront", &seed).await;

    // The bad bump lands and does not become healthy within 8 s.
    let bad_tree = tree(&[(
        "storefront/deployment.yaml",
        &STOREFRONT.replace("{image}", &image("2.0.13")),
    )]);
    let bad = commit_dir(world, &repo, bad_tree.path(), "storefront: 2.0.13").await;
    let seen = wait_status(&ns, "storefront", "a rollback proposal", |s| {
        let entry = s.history.iter().find(|e| e.revision == bad);
        entry.is_some_and(|e| e.rollback_branch.is_some())
    })
    .await;
    let entry = seen.history.iter().find(|e| e.revision == bad).unwrap();
    let branch = entry.rollback_branch.clone().unwrap();
    assert_eq!(branch, format!("sluice/rollback/{}", &bad[..7]));
    assert!(entry.failed_at.is_some(), "{entry:?}");
    assert_eq!(image_running(&ns).await, image("2.0.13"));

    // The proposal: on its own branch, main untouched, `git revert`'s form, the seed's tree.
    assert_eq!(git_in(world, &repo, &["rev-parse", "refs/heads/main"]), bad);
    let revert = git_in(
        world,
        &repo,
        &["rev-parse", &format!("refs/heads/{branch}")],
    );
    assert_eq!(
        git_in(world, &repo, &["rev-parse", &format!("{revert}^")]),
        bad
    );
    assert_eq!(
        git_in(world, &repo, &["rev-parse", &format!("{revert}^{{tree}}")]),
        git_in(world, &repo, &["rev-parse", &format!("{seed}^{{tree}}")])
    );
    let message = git_in(world, &repo, &["log", "-1", "--format=%B", &revert]);
    assert!(
        message.starts_with("Revert \"storefront: 2.0.13\"")
            && message.contains(&format!("This reverts commit {bad}."))
            && message.contains(&format!("Sluice-Rollback-Of: {bad}")),
        "{message}"
    );
    let events = ns.api::<Event>().list(&Default::default()).await.unwrap();
    assert!(
        events
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("RollbackProposed")
                && e.note.as_deref().is_some_and(|n| n.contains(&branch))),
        "no RollbackProposed event"
    );

    // A person merges the proposal (a fast-forward, as a merge button may): the cluster rolls back.
    git_in(
        world,
        &repo,
        &["update-ref", "refs/heads/main", &revert, &bad],
    );
    wait_applied(&ns, "storefront", &revert).await;
    assert_eq!(image_running(&ns).await, image("2.0.1"));
    let healthy = wait_status(&ns, "storefront", "Healthy again", |s| s.is("Healthy=True")).await;
    assert_eq!(healthy.history[0].revision, revert);
    assert!(healthy.history[0].healthy_at.is_some());
    // The failed revision keeps its record, branch included.
    let entry = healthy.history.iter().find(|e| e.revision == bad).unwrap();
    assert_eq!(entry.rollback_branch.as_deref(), Some(branch.as_str()));

    synchronizer.stop().await;
}
