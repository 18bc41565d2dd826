//! Wrong git credentials: Ready=False GitFailed with a message that names the URL and never the
//! password, nothing applied; fixing the Secret recovers at the next retry.

mod sync_support;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use sluice_e2e::{TestNamespace, World, unique_name};
use sync_support::*;

const WRONG_PASSWORD: &str = "not-the-password-0f8e2c";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_fail_clearly_and_a_fixed_secret_recovers() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-gitfail").await;
    let repo = unique_name("sync-gitfail");
    let files = tree(&[(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {ok: \"yes\"}\n",
    )]);
    let seed = world.git_seed(&repo, Some(files.path())).await.unwrap();
    let (user, password) = world.git_credentials();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "git"},
        "stringData": {"username": user, "password": WRONG_PASSWORD}
    }))
    .unwrap();
    ns.api::<Secret>()
        .create(&Default::default(), &secret)
        .await
        .unwrap();
    create_git_sync(&ns, "app", &world.git_http_url(&repo), "", "git").await;
    let synchronizer = Synchronizer::start(world, ns.name()).await;

    let failed = wait_status(&ns, "app", "the fetch to fail", |s| {
        s.is("Ready=False GitFailed")
    })
    .await;
    let message = failed.message("Ready");
    assert!(message.contains("authentication"), "{message}");
    assert!(
        message.contains(&format!("{repo}.git")),
        "names the repository: {message}"
    );
    assert!(
        !message.contains(WRONG_PASSWORD),
        "leaks the password: {message}"
    );
    assert!(!message.contains(password), "leaks the password: {message}");
    assert!(
        ns.api::<ConfigMap>()
            .get_opt("app")
            .await
            .unwrap()
            .is_none()
    );
    let events = ns.api::<Event>().list(&Default::default()).await.unwrap();
    for event in &events.items {
        let note = event.note.as_deref().unwrap_or("");
        assert!(
            !note.contains(WRONG_PASSWORD) && !note.contains(password),
            "{note}"
        );
    }

    ns.api::<Secret>()
        .patch(
            "git",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"password": password}})),
        )
        .await
        .unwrap();
    wait_status(&ns, "app", "the fixed Secret to be used", |s| {
        s.applied(&seed)
    })
    .await;
    assert!(
        ns.api::<ConfigMap>()
            .get_opt("app")
            .await
            .unwrap()
            .is_some()
    );

    synchronizer.stop().await;
}
