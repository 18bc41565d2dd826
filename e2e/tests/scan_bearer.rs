//! Registry behaviour the world's registries do not show, put in front of the real plain registry
//! by a small gate (the only stand-in here; the tags come from the world):
//! - the bearer-token challenge, as Docker Hub, GHCR and Quay make it: `/v2/…` answers `401` with
//!   `WWW-Authenticate: Bearer realm=…,service=…`, and the realm issues a token for the right basic
//!   credentials;
//! - paging announced by `Link` with pages smaller than asked, `429` with `Retry-After`, `503`, and
//!   tag-list entries that are not tags.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use config_updater::scan::{
    ClientOptions, Credentials, ImageName, RegistryAccess, RegistryClient, ScanError, ScanMetrics,
    TagCache, list_all_tags, scan,
};
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

/// What the gate does instead of answering a tag-list request.
enum Fault {
    RateLimited { retry_after: &'static str },
    Unavailable,
}

/// How the gate pages and misbehaves.
#[derive(Default)]
struct Behaviour {
    /// At most this many tags a page, whatever `n` asks; `Link` announces the rest.
    page_cap: Option<usize>,
    /// Answers to the next tag-list requests (with a valid token), in order.
    faults: VecDeque<Fault>,
    /// Extra entries appended to the last page.
    junk: Vec<serde_json::Value>,
}

#[derive(Clone)]
struct Gate {
    realm: String,
    upstream: String,
    seen: Arc<Mutex<Seen>>,
    behaviour: Arc<Mutex<Behaviour>>,
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
    let fault = gate.behaviour.lock().unwrap().faults.pop_front();
    match fault {
        Some(Fault::RateLimited { retry_after }) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, retry_after)],
                "slow down",
            )
                .into_response();
        }
        Some(Fault::Unavailable) => {
            return (StatusCode::SERVICE_UNAVAILABLE, "maintenance").into_response();
        }
        None => {}
    }
    // The plain registry (distribution 2.8) sends every tag at once; the gate pages them itself.
    let upstream = oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(vec![gate.upstream.clone()]),
        ..Default::default()
    });
    let reference =
        oci_client::Reference::with_tag(gate.upstream.clone(), repo.to_owned(), "x".into());
    let all = match upstream
        .list_tags(&reference, &RegistryAuth::Anonymous, None, None)
        .await
    {
        Ok(list) => list.tags,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let mut all = all;
    all.sort();
    let behaviour = gate.behaviour.lock().unwrap();
    let n: usize = q
        .get("n")
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX);
    let n = behaviour.page_cap.map_or(n, |cap| cap.min(n));
    let start = q.get("last").map_or(0, |last| {
        all.iter().position(|t| t > last).unwrap_or(all.len())
    });
    let end = start.saturating_add(n).min(all.len());
    let mut page: Vec<serde_json::Value> = all[start..end]
        .iter()
        .map(|t| serde_json::json!(t))
        .collect();
    let mut response_headers = HeaderMap::new();
    if end < all.len() {
        let link = format!(
            r#"</v2/{repo}/tags/list?last={}&n={n}>; rel="next""#,
            all[end - 1]
        );
        response_headers.insert(header::LINK, link.parse().unwrap());
    } else {
        page.extend(behaviour.junk.iter().cloned());
    }
    (
        response_headers,
        axum::Json(serde_json::json!({"name": repo, "tags": page})),
    )
        .into_response()
}

/// Starts the gate in front of `upstream`; returns its `host:port` and what it saw.
async fn start_gate(upstream: &str, behaviour: Behaviour) -> (String, Arc<Mutex<Seen>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let gate = Gate {
        realm: format!("http://{addr}/token"),
        upstream: upstream.to_owned(),
        seen: seen.clone(),
        behaviour: Arc::new(Mutex::new(behaviour)),
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
    let (gate, seen) = start_gate(world.registry(), Behaviour::default()).await;

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
    assert_eq!(first.requests(), 3, "the challenge, the token, the list");
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

#[tokio::test]
async fn link_paging_retry_after_5xx_and_junk_entries_are_handled() {
    let world = World::get();
    let repo = format!("e2e/{}/app", unique_name("scan-faults"));
    let pushed: Vec<String> = (1..=5).map(|i| format!("{repo}:1.0.{i}")).collect();
    world
        .push_image(&pushed.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    let behaviour = Behaviour {
        page_cap: Some(2),
        faults: VecDeque::from([Fault::RateLimited { retry_after: "1" }, Fault::Unavailable]),
        junk: vec![
            serde_json::json!(42),
            serde_json::json!("not a tag!"),
            serde_json::Value::Null,
        ],
    };
    let (gate, seen) = start_gate(world.registry(), behaviour).await;

    let metrics = ScanMetrics::default();
    let image = ImageName::parse(&format!("{gate}/{repo}")).unwrap();
    let client = RegistryClient::new(
        image,
        ClientOptions {
            credentials: Credentials::Basic {
                username: USER.into(),
                password: PASSWORD.into(),
            },
            insecure: true,
            metrics: Some(metrics.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    let started = std::time::Instant::now();
    let list = list_all_tags(&client, None)
        .await
        .expect("the list, despite the faults");
    let took = started.elapsed();

    assert_eq!(list.tags, ["1.0.1", "1.0.2", "1.0.3", "1.0.4", "1.0.5"]);
    assert_eq!(
        list.malformed, 3,
        "42, null and \"not a tag!\" are ignored and counted"
    );
    assert_eq!(
        list.pages, 3,
        "pages of 2 followed by `Link`, though 1000 were asked for"
    );
    // challenge, token, 429, 503, then the three pages.
    assert_eq!(list.requests, 7);
    assert!(
        took.as_millis() >= 1000,
        "Retry-After: 1 was honoured ({took:?})"
    );
    assert_eq!(seen.lock().unwrap().tag_lists_with_token, 5);
    for (outcome, count) in [
        ("auth_challenge", 1),
        ("ok", 4),
        ("rate_limited", 1),
        ("server_error", 1),
    ] {
        assert_eq!(metrics.count(&gate, outcome), count, "{outcome}");
    }
}
