//! Notifications of a bad rollout: an on-call team's `Alert` sends every GitSync event of its
//! namespace to their webhook (a receiver on loopback), signed with HMAC-SHA256. A bump that
//! crash-loops is applied, times out and has its revert proposed; the receiver gets `Synced`,
//! then `HealthTimeout`, then `RollbackProposed`, in that order, each once, each signed with the
//! key from the Alert's Secret. A second Alert for errors only gets just the timeout.

mod sync_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DynamicObject, PostParams};
use serde_json::{Value, json};
use sluice_e2e::{TestNamespace, World, unique_name, wait_until};
use sluice_shared::notify::SIGNATURE_HEADER;
use sluice_shared::webhook::verify_hmac_sha256;
use sync_support::*;

const KEY: &str = "on-call-hmac-key";

/// What the receiver got, per path: (signature header, body).
type Received = Arc<Mutex<Vec<(String, Option<String>, Value)>>>;

async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let record = |path: &'static str| {
        move |State(received): State<Received>, headers: HeaderMap, body: Bytes| async move {
            let signature = headers
                .get(SIGNATURE_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if let Some(signature) = &signature {
                assert!(
                    verify_hmac_sha256(KEY.as_bytes(), &body, signature).is_ok(),
                    "a bad signature"
                );
            }
            let body: Value = serde_json::from_slice(&body).unwrap();
            received
                .lock()
                .unwrap()
                .push((path.to_owned(), signature, body));
            "ok"
        }
    };
    let app = axum::Router::new()
        .route("/on-call", post(record("/on-call")))
        .route("/errors", post(record("/errors")))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, received)
}

async fn create(ns: &TestNamespace, kind: &str, value: Value) {
    let ar = kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
        "sluice.dev",
        "v1alpha1",
        kind,
    ));
    let api: kube::Api<DynamicObject> =
        kube::Api::namespaced_with(World::get().kube_client().await, ns.name(), &ar);
    let object: DynamicObject = serde_json::from_value(value).unwrap();
    api.create(&PostParams::default(), &object).await.unwrap();
}

fn reasons(received: &Received, path: &str) -> Vec<String> {
    received
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _, _)| p == path)
        .map(|(_, _, body)| body["reason"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_on_call_webhook_gets_a_bad_rollout_in_order_signed_once_each() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    // The Alert CRD, with the rest of manifests/.
    sluice_e2e::installed::apply_manifests(world);
    let ns = TestNamespace::create(&client, "notify").await;
    world
        .push_image(&["demo/storefront:2.0.1", "demo/storefront:2.0.13"])
        .await;
    let image = |tag: &str| format!("{}/demo/storefront:{tag}", world.registry());
    let (addr, received) = receiver().await;

    // The on-call team's webhook: its URL and HMAC key in a Secret; every GitSync event.
    for (name, path, key) in [
        ("on-call", "/on-call", Some(KEY)),
        ("errors", "/errors", None),
    ] {
        let mut data = json!({"address": format!("{addr}{path}")});
        if let Some(key) = key {
            data["hmacKey"] = key.into();
        }
        let secret: Secret =
            serde_json::from_value(json!({"metadata": {"name": name}, "stringData": data}))
                .unwrap();
        ns.api::<Secret>()
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
    }
    create(
        &ns,
        "Alert",
        json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "Alert",
        "metadata": {"name": "on-call", "namespace": ns.name()},
        "spec": {"provider": {"type": "generic", "secretRef": {"name": "on-call"}},
                 "eventSources": [{"kind": "GitSync"}]}}),
    )
    .await;
    create(
        &ns,
        "Alert",
        json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "Alert",
        "metadata": {"name": "errors", "namespace": ns.name()},
        "spec": {"provider": {"type": "generic", "secretRef": {"name": "errors"}},
                 "eventSources": [{"kind": "GitSync", "name": "storefront"}],
                 "eventSeverity": "error"}}),
    )
    .await;

    let repo = unique_name("notify");
    let good = tree(&[(
        "storefront/deployment.yaml",
        &STOREFRONT.replace("{image}", &image("2.0.1")),
    )]);
    let seed = world.git_seed(&repo, Some(good.path())).await.unwrap();
    git_secret(&ns, world, "git").await;
    let url = world.git_http_url(&repo);
    create_git_sync(&ns, "storefront", &url, "storefront", "git").await;
    patch_spec(
        &ns,
        "storefront",
        json!({"healthTimeout": "8s", "rollback": {"enabled": true}}),
    )
    .await;
    let synchronizer = Synchronizer::start(world, ns.name()).await;
    wait_applied(&ns, "storefront", &seed).await;
    wait_until("the first notices", Duration::from_secs(60), || async {
        let got = reasons(&received, "/on-call");
        if got.contains(&"Healthy".to_owned()) {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await;
    received.lock().unwrap().clear();

    // The bad bump: applied, not healthy within 8 s, its revert proposed.
    let bad_tree = tree(&[(
        "storefront/deployment.yaml",
        &STOREFRONT.replace("{image}", &image("2.0.13")),
    )]);
    commit_dir(world, &repo, bad_tree.path(), "storefront: 2.0.13").await;
    wait_until("the rollout's notices", Duration::from_secs(90), || async {
        let got = reasons(&received, "/on-call");
        if got.contains(&"RollbackProposed".to_owned()) {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await;
    // Anything still in flight arrives, and nothing more.
    tokio::time::sleep(Duration::from_secs(3)).await;
    synchronizer.stop().await;

    let got = reasons(&received, "/on-call");
    let at = |reason: &str| {
        got.iter()
            .position(|r| r == reason)
            .unwrap_or_else(|| panic!("{reason} in {got:?}"))
    };
    assert!(at("Synced") < at("HealthTimeout"), "{got:?}");
    assert!(at("HealthTimeout") < at("RollbackProposed"), "{got:?}");
    let all = received.lock().unwrap().clone();
    let mut seen = std::collections::HashSet::new();
    for (path, signature, body) in &all {
        assert!(
            seen.insert((
                path.clone(),
                body["reason"].clone(),
                body["message"].clone()
            )),
            "sent twice: {body}"
        );
        if path == "/on-call" {
            assert!(signature.is_some(), "signed: {body}");
            assert_eq!(body["involvedObject"]["kind"], "GitSync");
            assert_eq!(body["involvedObject"]["name"], "storefront");
            assert_eq!(body["reportingController"], "sluice-deploy-synchronizer");
        } else {
            assert!(signature.is_none(), "no key, no signature");
        }
    }
    // Errors only: the timeout (a Warning), not Synced.
    let errors = reasons(&received, "/errors");
    assert!(errors.contains(&"HealthTimeout".to_owned()), "{errors:?}");
    assert!(!errors.contains(&"Synced".to_owned()), "{errors:?}");
    let timeout = all
        .iter()
        .find(|(_, _, b)| b["reason"] == "HealthTimeout")
        .map(|(_, _, b)| b["severity"].clone());
    assert_eq!(timeout, Some(json!("error")));
}
