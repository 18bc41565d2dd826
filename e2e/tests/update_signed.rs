//! Signed bumps through the controllers: an `ImageUpdate` whose `commit.signingKeyRef` names a
//! Secret with an OpenSSH key (`identity`) pushes a bump commit that the real
//! `git verify-commit` accepts; one whose Secret holds an encrypted key without its passphrase
//! pushes nothing and says why in its Ready condition, without the key in any condition or
//! event.

mod update_support;

use config_updater::resource::{ImagePolicy, ImageRepository, ImageUpdate};
use k8s_openapi::api::core::v1::Event;
use kube::api::ListParams;
use serde_json::json;
use update_support::{
    Conditions, Updater, clone_from_server, image_update, keygen, push_web, repository,
    semver_policy, verify,
};

const EMAIL: &str = "images@sluice.dev";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signing_key_secret_makes_signed_bumps_and_a_locked_key_is_reported() {
    let mut u = Updater::idle("update-signed").await;
    let world = u.world;
    let (_, image) = push_web(world, "signed", &["1.4.2", "1.4.3"]).await;
    let (signed_repo, _) = u.seed_web("signed-config", &image, "1.4.2").await;
    let (locked_repo, locked_seed) = u.seed_web("signed-config", &image, "1.4.2").await;

    let keys = tempfile::tempdir().unwrap();
    let ed25519 = ["-t", "ed25519"];
    let (key, public) = keygen(keys.path(), "signing", &ed25519, "");
    let (locked_key, _) = keygen(keys.path(), "locked", &ed25519, "its passphrase");
    u.world_git_secret("git").await;
    u.secret("signing", "Opaque", json!({"identity": key}))
        .await;
    u.secret("locked", "Opaque", json!({"identity": locked_key}))
        .await;

    u.create::<ImageRepository>(repository("web", &image, "1h"))
        .await;
    u.create::<ImagePolicy>(semver_policy("web", "web")).await;
    for (name, repo, key_secret) in [
        ("signed", &signed_repo, "signing"),
        ("locked", &locked_repo, "locked"),
    ] {
        let mut update = image_update(name, &world.git_http_url(repo), None);
        update["spec"]["git"]["commit"] = json!({"authorName": "Sluice Images", "authorEmail": EMAIL,
                                                 "signingKeyRef": {"name": key_secret}});
        u.create::<ImageUpdate>(update).await;
    }
    u.run(None).await;

    // The signed one: lastPushCommit is main's tip on the server, and git verifies it.
    let commit = u.wait_last_push("signed").await;
    assert_eq!(world.git_main_on_server(&signed_repo).to_string(), commit);
    let clones = tempfile::tempdir().unwrap();
    let clone = clone_from_server(world, &signed_repo, clones.path());
    let (ok, said) = verify(&clone, &format!("{EMAIL} {public}"), &commit);
    assert!(ok, "git verify-commit: {said}");
    assert!(
        said.contains(&format!("Good \"git\" signature for {EMAIL}")),
        "{said}"
    );

    // The locked one: Ready=False naming the Secret and why; nothing pushed.
    let updates = u.api::<ImageUpdate>();
    let said = u
        .wait_status::<ImageUpdate>("locked", "the locked ImageUpdate to say why", |s| {
            s.is("Ready=False") && s.message("Ready").contains("encrypted")
        })
        .await;
    let ready = said.condition_of("Ready").unwrap();
    assert_eq!(ready.reason, "GitSecret", "{ready:?}");
    let message = &ready.message;
    assert!(
        message.contains("locked") && message.contains("signingKeyRef"),
        "{message}"
    );
    assert_eq!(world.git_main_on_server(&locked_repo), locked_seed);

    // No key material in any condition or event of the namespace.
    let events = u.api::<Event>().list(&ListParams::default()).await.unwrap();
    let mut shown = serde_json::to_string(&events.items).unwrap();
    for u in updates.list(&ListParams::default()).await.unwrap().items {
        shown.push_str(&serde_json::to_string(&u.status).unwrap());
    }
    for line in key.lines().chain(locked_key.lines()) {
        if !line.starts_with("-----") {
            assert!(!shown.contains(line), "key material shown: {shown}");
        }
    }

    u.stop().await;
}
