//! Git faults on an SSH source that was syncing fine: a git server that does not answer (a closed
//! port) and an SSH host key missing from known_hosts. Each is Ready=False GitFailed with a
//! message naming the problem; nothing of the branch's new commit is applied and nothing applied
//! before is deleted; fixing the spec, or the Secret, recovers.

mod sync_support;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Patch, PatchParams};
use serde_json::json;
use sluice_e2e::{TestNamespace, World, unique_name, wait_until};
use sync_support::*;

fn config_map(name: &str, tier: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  # which tier of the shop\ndata: {{tier: {tier}}}\n"
    )
}

/// A known_hosts that lists the world's git server, with a key that is not the server's.
fn known_hosts_with_another_key(world: &World) -> String {
    let real = std::fs::read_to_string(world.git_known_hosts()).unwrap();
    let host = real
        .split_whitespace()
        .next()
        .expect("a host in the world's known_hosts")
        .to_owned();
    // An ed25519 key of some other server.
    format!(
        "# the git server's key, long ago\n{host} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
    )
}

/// A TCP port on loopback nobody listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

struct Before {
    revision: String,
    uids: Vec<(String, Option<String>)>,
}

/// The applied objects are those of `before`: same revision, same objects (same uids), same data.
async fn unchanged(ns: &TestNamespace, before: &Before) {
    let status = status(ns, "shop").await.unwrap();
    assert_eq!(
        status.last_applied_revision.as_deref(),
        Some(before.revision.as_str()),
        "{}",
        describe(&status)
    );
    assert_eq!(
        status.inventory.len(),
        before.uids.len(),
        "{}",
        describe(&status)
    );
    for (name, uid) in &before.uids {
        let cm = ns
            .api::<ConfigMap>()
            .get_opt(name)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("ConfigMap {name} was deleted"));
        assert_eq!(&cm.metadata.uid, uid, "{name} was re-created");
        assert_eq!(cm.data.unwrap()["tier"], "one", "{name} changed");
    }
    assert!(
        ns.api::<ConfigMap>()
            .get_opt("newcomer")
            .await
            .unwrap()
            .is_none(),
        "the new commit's object was applied"
    );
}

/// Waits for Ready=False GitFailed; returns the message.
async fn git_failed(ns: &TestNamespace) -> String {
    let status = wait_refused(ns, "shop", "GitFailed").await;
    let (_, _, message) = condition(&status, "Ready").unwrap();
    assert_eq!(
        condition(&status, "Stalled").map(|c| c.0).as_deref(),
        Some("False"),
        "a git fault is retried, not stalled: {}",
        describe(&status)
    );
    message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_and_unknown_host_key_fail_clearly_and_recover() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-gitfault").await;
    let repo = unique_name("sync-gitfault");
    let seed_files = tree(&[
        ("shop/front.yaml", &config_map("front", "one")),
        ("shop/back.yaml", &config_map("back", "one")),
    ]);
    let seed = world
        .git_seed(&repo, Some(seed_files.path()))
        .await
        .unwrap();
    let known_hosts = std::fs::read_to_string(world.git_known_hosts()).unwrap();
    ssh_secret(&ns, world, "deploy-key", &known_hosts).await;
    let url = world.git_ssh_url(&repo);
    create_git_sync_spec(
        &ns,
        "shop",
        json!({
            "source": {
                "url": url,
                "path": "shop",
                "interval": "2s",
                "secretRef": {"name": "deploy-key"}
            },
            "targetNamespace": ns.name(),
            "healthTimeout": "1m"
        }),
    )
    .await;
    let synchronizer = Synchronizer::start(world, ns.name()).await;
    wait_applied(&ns, "shop", &seed).await;
    let mut uids = Vec::new();
    for name in ["back", "front"] {
        let cm = ns.api::<ConfigMap>().get(name).await.unwrap();
        uids.push((name.to_owned(), cm.metadata.uid));
    }
    let before = Before {
        revision: seed.clone(),
        uids,
    };

    // The branch moves on: one object changes, one is gone, one is new. None of it may land
    // while git is out of reach.
    let next_files = tree(&[
        ("shop/front.yaml", &config_map("front", "two")),
        ("shop/newcomer.yaml", &config_map("newcomer", "two")),
    ]);
    let port = closed_port();
    let unreachable_url = url.replace(":12222/", &format!(":{port}/"));
    assert_ne!(unreachable_url, url, "the world's ssh port is 12222: {url}");
    patch_spec(&ns, "shop", json!({"source": {"url": unreachable_url}})).await;

    // 1. Nobody listens at the URL's port.
    let message = git_failed(&ns).await;
    println!("unreachable: {message}");
    let next = commit_dir(world, &repo, next_files.path(), "shop: tier two").await;
    // A few retries (the backoff is capped at the 2 s interval) see the same.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let (ready, reason, _) = condition(&status(&ns, "shop").await.unwrap(), "Ready").unwrap();
    assert_eq!((ready.as_str(), reason.as_str()), ("False", "GitFailed"));
    assert!(message.contains("unreachable"), "{message}");
    assert!(
        message.contains(&format!("127.0.0.1:{port}")),
        "names the server: {message}"
    );
    unchanged(&ns, &before).await;

    // 2. The server answers, but known_hosts holds another key for it.
    ns.api::<Secret>()
        .patch(
            "deploy-key",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"stringData": {"known_hosts": known_hosts_with_another_key(world)}}),
            ),
        )
        .await
        .unwrap();
    patch_spec(&ns, "shop", json!({"source": {"url": url}})).await;
    let message = wait_until(
        "the host key to be refused",
        std::time::Duration::from_secs(60),
        || async {
            let message = git_failed(&ns).await;
            if message.contains("host key") {
                Ok(message)
            } else {
                Err(message)
            }
        },
    )
    .await;
    println!("unknown host key: {message}");
    assert!(message.contains("SSH host key of"), "{message}");
    assert!(message.contains("127.0.0.1"), "names the host: {message}");
    let key = std::fs::read_to_string(world.git_ssh_key()).unwrap();
    let key_body = key.lines().nth(1).unwrap();
    assert!(
        !message.contains(key_body),
        "leaks the private key: {message}"
    );
    unchanged(&ns, &before).await;

    // 3. The right known_hosts again: the new commit lands, the removed object is pruned.
    ns.api::<Secret>()
        .patch(
            "deploy-key",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"known_hosts": known_hosts}})),
        )
        .await
        .unwrap();
    let recovered = wait_applied(&ns, "shop", &next).await;
    let front = ns.api::<ConfigMap>().get("front").await.unwrap();
    assert_eq!(front.data.unwrap()["tier"], "two");
    assert!(
        ns.api::<ConfigMap>()
            .get_opt("newcomer")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        ns.api::<ConfigMap>()
            .get_opt("back")
            .await
            .unwrap()
            .is_none()
    );
    let reasons: Vec<_> = recovered
        .history
        .iter()
        .map(|h| (h.revision.as_str(), h.reason.as_deref()))
        .collect();
    assert_eq!(reasons[0].0, next, "{reasons:?}");
    assert!(
        recovered.history.iter().any(|h| h.revision == seed),
        "{reasons:?}"
    );

    synchronizer.stop().await;
}
