//! A push webhook syncs at once: with a one-hour interval only the hook can bring a new commit
//! in. A GitHub-shaped push signed with the right secret gets the commit applied within seconds;
//! one with a bad signature gets 401 and leaves the next commit unapplied; a new value of the
//! `sluice.dev/reconcile-requested-at` annotation then syncs it.

mod sync_support;

use std::time::Duration;

use deploy_synchronizer::resource::GitSync;
use deploy_synchronizer::webhook::{self, PROVIDERS};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use sluice_e2e::http::post;
use sluice_e2e::{TestNamespace, World, unique_name};
use sluice_shared::webhook::{Secrets, sign_hmac_sha256};
use sync_support::*;
use tokio::sync::mpsc;

const SECRET: &[u8] = b"e2e-webhook-secret";

fn config_map(version: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  version: \"{version}\"\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_push_syncs_at_once_and_a_forged_one_does_not() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-webhook").await;

    let repo = unique_name("sync-webhook");
    let url = world.git_http_url(&repo);
    let v1 = tree(&[("apps/web/configmap.yaml", &config_map("1"))]);
    let seed = world
        .git_seed(&repo, Some(v1.path()))
        .await
        .expect("the seed commit");
    git_secret(&ns, world, "git-credentials").await;
    // One hour: after the first sync, nothing but a trigger fetches again during this test.
    let sync: GitSync = serde_json::from_value(json!({
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "GitSync",
        "metadata": {"name": "web"},
        "spec": {
            "source": {"url": url, "ref": {"branch": "main"}, "path": "apps/web",
                       "interval": "1h", "secretRef": {"name": "git-credentials"}},
            "targetNamespace": ns.name(),
            "healthTimeout": "1m"
        }
    }))
    .unwrap();
    ns.api::<GitSync>()
        .create(&PostParams::default(), &sync)
        .await
        .expect("creating the GitSync");

    // The daemon's wiring, in-process: the receiver's pushes feed the controller.
    let secret_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret_file.path(), SECRET).unwrap();
    let flag = format!("github={}", secret_file.path().display());
    let secrets = Secrets::from_flags(&[flag], PROVIDERS).expect("the secret flag");
    assert!(secrets.get("github").is_some());
    let (tx, rx) = mpsc::channel(16);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server =
        tokio::spawn(async move { axum::serve(listener, webhook::router(secrets, tx)).await });
    let synchronizer = Synchronizer::start_with_pushes(world, ns.name(), Some(rx)).await;

    wait_status(&ns, "web", "the seed commit to be applied", |s| {
        s.applied(&seed)
    })
    .await;

    // (a) A new commit and a signed push: applied within seconds, not an hour.
    let v2 = tree(&[("apps/web/configmap.yaml", &config_map("2"))]);
    let second = commit_dir(world, &repo, v2.path(), "version 2").await;
    let body = github_push(&url, &second);
    let signature = sign_hmac_sha256(SECRET, body.as_bytes());
    let headers = [
        ("Content-Type", "application/json"),
        ("X-GitHub-Event", "push"),
        ("X-Hub-Signature-256", signature.as_str()),
    ];
    assert_eq!(post(&addr, "/webhook/github", &headers, &body).await, 202);
    let pushed = "the pushed commit to be applied";
    wait_status_within(&ns, "web", pushed, Duration::from_secs(15), |s| {
        s.applied(&second)
    })
    .await;
    let cm = ns.api::<ConfigMap>().get("web-config").await.unwrap();
    assert_eq!(cm.data.unwrap()["version"], "2");

    // (b) Another commit, announced with a bad signature: 401, and nothing syncs it.
    let v3 = tree(&[("apps/web/configmap.yaml", &config_map("3"))]);
    let third = commit_dir(world, &repo, v3.path(), "version 3").await;
    let body = github_push(&url, &third);
    let forged = sign_hmac_sha256(b"not-the-secret", body.as_bytes());
    let headers = [
        ("Content-Type", "application/json"),
        ("X-GitHub-Event", "push"),
        ("X-Hub-Signature-256", forged.as_str()),
    ];
    assert_eq!(post(&addr, "/webhook/github", &headers, &body).await, 401);
    // Proving absence needs a wait: a fixed 5 s is well beyond the ~1 s the signed push took.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = status(&ns, "web").await.unwrap();
    assert_eq!(
        after.last_applied_revision.as_deref(),
        Some(second.as_str()),
        "a forged push synced: {}",
        describe(&after)
    );

    // (c) The reconcile-now annotation syncs it, although the interval is an hour away.
    let patch = json!({"metadata": {"annotations": {
        "sluice.dev/reconcile-requested-at": "2026-11-22T06:30:00Z"}}});
    ns.api::<GitSync>()
        .patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("annotating the GitSync");
    let annotated = "the annotated GitSync to sync the third commit";
    wait_status_within(&ns, "web", annotated, Duration::from_secs(15), |s| {
        s.applied(&third)
    })
    .await;

    synchronizer.stop().await;
    server.abort();
}
