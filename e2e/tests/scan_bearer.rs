//! The bearer-token challenge, as Docker Hub, GHCR and Quay make it. The world's registries use
//! basic auth or none, so this test puts a token gate in front of the real plain registry: `/v2/`
//! answers `401` with `WWW-Authenticate: Bearer realm=…,service=…`, the realm issues a token for
//! the right basic credentials, and tag lists with that token are passed through to the real
//! registry (paging parameters included). The gate is the only stand-in; tags come from the world.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use config_updater::scan::client::{ClientOptions, RegistryClient, list_all_tags, scan};
use config_updater::scan::{Credentials, ImageName, RegistryAccess, ScanError, TagCache};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use sluice_e2e::{World, unique_name};

const TOKEN: &str = "e2e-bearer-token";
const USER: &str = "robot";
const PASSWORD: &str = "s3cret-for-the-gate";

#[derive(Default)]
struct Seen {
    token_requests: u32,
    scopes: Vec<String>,
    tag_lists_with_token: u32,
}

#[derive(Clone)]
struct Gate {
    realm: String,
    upstream: String,
    seen: Arc<Mutex<Seen>>,
}

fn bearer_ok(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {TOKEN}"))
}

fn challenge(gate: &Gate) -> Response {
    let value = format!(r#"Bearer realm="{}",service="e2e-gate""#, gate.realm);
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, value)],
        r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#,
    )
        .into_response()
}

async fn version(State(gate): State<Gate>, headers: HeaderMap) -> Response {
    if bearer_ok(&headers) {
        "{}".into_response()
    } else {
        challenge(&gate)
    }
}

async fn token(
    State(gate): State<Gate>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    let mut seen = gate.seen.lock().unwrap();
    seen.token_requests += 1;
    seen.scopes
        .push(q.get("scope").cloned().unwrap_or_default());
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(expected.as_str())
        || q.get("service").map(String::as_str) != Some("e2e-gate")
    {
        return (StatusCode::UNAUTHORIZED, "bad credentials").into_response();
    }
    axum::Json(serde_json::json!({"token": TOKEN, "expires_in": 300})).into_response()
}

async fn tags(
    State(gate): State<Gate>,
    Path(rest): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(repo) = rest.strip_suffix("/tags/list") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !bearer_ok(&headers) {
        return challenge(&gate);
    }
    gate.seen.lock().unwrap().tag_lists_with_token += 1;
    let upstream = oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(vec![gate.upstream.clone()]),
        ..Default::default()
    });
    let reference =
        oci_client::Reference::with_tag(gate.upstream.clone(), repo.to_owned(), "x".into());
    let n = q.get("n").and_then(|n| n.parse().ok());
    match upstream
        .list_tags(
            &reference,
            &RegistryAuth::Anonymous,
            n,
            q.get("last").map(String::as_str),
        )
        .await
    {
        Ok(list) => {
            axum::Json(serde_json::json!({"name": list.name, "tags": list.tags})).into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

/// Starts the gate in front of `upstream`; returns its `host:port` and what it saw.
async fn start_gate(upstream: &str) -> (String, Arc<Mutex<Seen>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let gate = Gate {
        realm: format!("http://{addr}/token"),
        upstream: upstream.to_owned(),
        seen: seen.clone(),
    };
    let app = Router::new()
        .route("/v2/", get(version))
        .route("/token", get(token))
        .route("/v2/{*rest}", get(tags))
        .with_state(gate);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

fn gated_client(gate: &str, repo: &str, credentials: Credentials) -> RegistryClient {
    let image = ImageName::parse(&format!("{gate}/{repo}")).unwrap();
    RegistryClient::new(
        image,
        ClientOptions {
            credentials,
            insecure: true,
            ..Default::default()
        },
    )
    .unwrap()
}

#[tokio::test]
async fn a_bearer_challenge_is_answered_with_a_token_from_the_realm() {
    let world = World::get();
    let repo = format!("e2e/{}/app", unique_name("scan-bearer"));
    world
        .push_image(&[&format!("{repo}:1.0.0"), &format!("{repo}:1.1.0")])
        .await;
    let (gate, seen) = start_gate(world.registry()).await;

    let credentials = Credentials::Basic {
        username: USER.into(),
        password: PASSWORD.into(),
    };
    let client = gated_client(&gate, &repo, credentials);
    let access = RegistryAccess {
        insecure: true,
        ..RegistryAccess::new(format!("{gate}/{repo}"))
    }
    .validate()
    .unwrap();
    let mut cache = TagCache::default();
    let first = scan(&client, &access, &mut cache)
        .await
        .expect("listing behind a bearer challenge");
    assert_eq!(first.list.tags, ["1.0.0", "1.1.0"]);
    let second = scan(&client, &access, &mut cache).await.expect("a rescan");
    assert!(!second.changed);
    assert_eq!(second.requests(), 1);
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.token_requests, 1, "the token is cached between scans");
        assert_eq!(seen.scopes, [format!("repository:{repo}:pull")]);
        assert_eq!(seen.tag_lists_with_token, 2);
    }

    // The wrong password gets no token, and the listing is refused.
    let wrong = Credentials::Basic {
        username: USER.into(),
        password: "wrong".into(),
    };
    let err = list_all_tags(&gated_client(&gate, &repo, wrong), None)
        .await
        .expect_err("no token");
    assert!(matches!(err, ScanError::Unauthorized { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains(PASSWORD));
}
