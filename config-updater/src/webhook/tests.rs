use super::*;
use sluice_shared::webhook::{
    HeaderMap, HeaderName, HeaderValue, Secret, StatusCode, sign_hmac_sha256, status_of,
};

const DISTRIBUTION: &str = include_str!("testdata/distribution_push.json");
const DOCKERHUB: &str = include_str!("testdata/dockerhub_push.json");
const HARBOR: &str = include_str!("testdata/harbor_push.json");
const QUAY: &str = include_str!("testdata/quay_push.json");
const GITHUB_PACKAGE: &str = include_str!("testdata/github_package.json");

const KEY: &str = "registry-webhook-secret";
const INDEX_DIGEST: &str =
    "sha256:a0b1c2d3e4f5061728394a5b6c7d8e9f00112233445566778899aabbccddeeff";

type Outcome = Result<Vec<RegistryEvent>, WebhookError>;

fn secrets() -> Secrets {
    PROVIDERS
        .iter()
        .fold(Secrets::new(), |s, p| s.with(p, Secret::new(KEY)))
}

fn call(provider: &str, hdrs: &[(&str, &str)], query: Option<&str>, body: &str) -> Outcome {
    let h: HeaderMap = hdrs
        .iter()
        .map(|(k, v)| {
            (
                k.parse::<HeaderName>().unwrap(),
                v.parse::<HeaderValue>().unwrap(),
            )
        })
        .collect();
    let d = Delivery {
        provider,
        headers: &h,
        query,
        body: body.as_bytes(),
    };
    // Registry deliveries only here (pull requests: pull_request_tests.rs).
    receive(&secrets(), &d).map(|delivered| {
        delivered
            .into_iter()
            .map(|d| match d {
                Delivered::Image(e) => e,
                other => panic!("a registry delivery came out as {other:?}"),
            })
            .collect()
    })
}

fn sig(body: &str) -> String {
    sign_hmac_sha256(KEY.as_bytes(), body.as_bytes())
}

fn event(host: &str, repository: &str, tag: &str, digest: Option<&str>) -> RegistryEvent {
    RegistryEvent {
        registry_host: Some(host.into()),
        repository: repository.into(),
        tag: Some(tag.into()),
        digest: digest.map(Into::into),
    }
}

fn assert_refused(r: &Outcome, status: StatusCode) {
    assert_eq!(status_of(r), status, "{r:?}");
}

#[test]
fn distribution_tagged_push_only() {
    let bearer = format!("Bearer {KEY}");
    let r = call(
        "distribution",
        &[("authorization", &bearer)],
        None,
        DISTRIBUTION,
    );
    // The blob, the untagged child manifest and the pull are ignored.
    assert_eq!(
        r,
        Ok(vec![event(
            "registry.example.com:5000",
            "team/app",
            "1.4.2",
            Some(INDEX_DIGEST)
        )])
    );
    let e = &r.unwrap()[0];
    assert!(matches("registry.example.com:5000/team/app", e));
    assert!(matches("Registry.Example.com:5000/team/app:1.4.1", e));
    assert!(
        !matches("registry.example.com/team/app", e),
        "another port is another registry"
    );
    assert!(!matches("registry.example.com:5000/team/other", e));
}

#[test]
fn distribution_refusals() {
    let r = call(
        "distribution",
        &[("authorization", "Bearer nope")],
        None,
        DISTRIBUTION,
    );
    assert_refused(&r, StatusCode::UNAUTHORIZED);
    let r = call(
        "distribution",
        &[("authorization", KEY)],
        None,
        DISTRIBUTION,
    );
    assert_refused(&r, StatusCode::UNAUTHORIZED); // not a bearer
    let r = call("distribution", &[], None, DISTRIBUTION);
    assert_eq!(r, Err(WebhookError::MissingSignature("Authorization")));
    let bearer = format!("Bearer {KEY}");
    let r = call(
        "distribution",
        &[("authorization", &bearer)],
        None,
        "{\"events\": 3}",
    );
    assert_refused(&r, StatusCode::BAD_REQUEST);
    let r = call(
        "distribution",
        &[("authorization", &bearer), ("content-type", "text/plain")],
        None,
        DISTRIBUTION,
    );
    assert_refused(&r, StatusCode::BAD_REQUEST);
    let r = call(
        "distribution",
        &[
            ("authorization", &bearer),
            ("content-type", ENVELOPE_MEDIA_TYPE),
        ],
        None,
        DISTRIBUTION,
    );
    assert_eq!(r.map(|e| e.len()), Ok(1));
    // Distribution 3 names the same envelope v2.
    let r = call(
        "distribution",
        &[
            ("authorization", &bearer),
            (
                "content-type",
                "application/vnd.docker.distribution.events.v2+json",
            ),
        ],
        None,
        DISTRIBUTION,
    );
    assert_eq!(r.map(|e| e.len()), Ok(1));
    let r = call(
        "distribution",
        &[("authorization", &bearer)],
        None,
        "{\"events\": []}",
    );
    assert_eq!(r, Ok(vec![]));
    assert_refused(&r, StatusCode::NO_CONTENT);
}

#[test]
fn distribution_host_falls_back_to_the_target_url_and_duplicates_collapse() {
    let body = r#"{"events": [
      {"action": "push", "target": {"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "digest": "sha256:11", "repository": "app", "tag": "v2",
        "url": "http://127.0.0.1:15000/v2/app/manifests/sha256:11"}, "request": {}},
      {"action": "push", "target": {"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "digest": "sha256:11", "repository": "app", "tag": "v2",
        "url": "http://127.0.0.1:15000/v2/app/manifests/sha256:11"}, "request": {"host": ""}}
    ]}"#;
    let bearer = format!("Bearer {KEY}");
    let r = call("distribution", &[("authorization", &bearer)], None, body);
    assert_eq!(
        r,
        Ok(vec![event(
            "127.0.0.1:15000",
            "app",
            "v2",
            Some("sha256:11")
        )])
    );
}

#[test]
fn dockerhub_token_in_the_query() {
    let q = format!("token={KEY}");
    let r = call("dockerhub", &[], Some(&q), DOCKERHUB);
    assert_eq!(
        r,
        Ok(vec![event("docker.io", "examplecorp/app", "1.4.2", None)])
    );
    let e = &r.unwrap()[0];
    assert!(matches("examplecorp/app", e));
    assert!(matches("index.docker.io/examplecorp/app", e));
    assert!(!matches("ghcr.io/examplecorp/app", e));

    assert_refused(
        &call("dockerhub", &[], Some("token=nope"), DOCKERHUB),
        StatusCode::UNAUTHORIZED,
    );
    assert_refused(
        &call("dockerhub", &[], None, DOCKERHUB),
        StatusCode::UNAUTHORIZED,
    );
    assert_refused(
        &call("dockerhub", &[], Some(&q), "{"),
        StatusCode::BAD_REQUEST,
    );
    let official = DOCKERHUB.replace("\"examplecorp/app\"", "\"nginx\"");
    let e = &call("dockerhub", &[], Some(&q), &official).unwrap()[0];
    assert_eq!(e.repository, "library/nginx");
    assert!(matches("nginx", e));
    assert!(matches("docker.io/library/nginx:1.27", e));
}

#[test]
fn harbor_auth_header() {
    let r = call("harbor", &[("authorization", KEY)], None, HARBOR);
    let want = event(
        "harbor.example.com",
        "team/app",
        "1.4.2",
        Some(INDEX_DIGEST),
    );
    assert_eq!(r, Ok(vec![want.clone()]));
    assert!(matches("harbor.example.com/team/app", &want));
    let bearer = format!("Bearer {KEY}");
    assert_eq!(
        call("harbor", &[("authorization", &bearer)], None, HARBOR),
        Ok(vec![want])
    );

    assert_refused(
        &call("harbor", &[("authorization", "nope")], None, HARBOR),
        StatusCode::UNAUTHORIZED,
    );
    assert_refused(&call("harbor", &[], None, HARBOR), StatusCode::UNAUTHORIZED);
    assert_refused(
        &call("harbor", &[("authorization", KEY)], None, "[]"),
        StatusCode::BAD_REQUEST,
    );
    let pull = HARBOR.replace("PUSH_ARTIFACT", "PULL_ARTIFACT");
    assert_eq!(
        call("harbor", &[("authorization", KEY)], None, &pull),
        Ok(vec![])
    );
    let untagged = HARBOR.replace("\"tag\": \"1.4.2\"", "\"tag\": \"\"");
    assert_eq!(
        call("harbor", &[("authorization", KEY)], None, &untagged),
        Ok(vec![])
    );
}

#[test]
fn quay_token_in_the_query() {
    let q = format!("a=b&token={KEY}");
    let r = call("quay", &[], Some(&q), QUAY);
    assert_eq!(
        r,
        Ok(vec![
            event("quay.io", "examplecorp/app", "1.4.2", None),
            event("quay.io", "examplecorp/app", "latest", None),
        ])
    );
    assert!(matches("quay.io/examplecorp/app", &r.unwrap()[0]));
    assert_refused(
        &call("quay", &[], Some("token=x"), QUAY),
        StatusCode::UNAUTHORIZED,
    );
    assert_refused(&call("quay", &[], None, QUAY), StatusCode::UNAUTHORIZED);
    assert_refused(
        &call("quay", &[], Some(&q), "{\"updated_tags\": []}"),
        StatusCode::BAD_REQUEST,
    );
    let build = r#"{"repository": "examplecorp/app", "build_id": "296ec063"}"#;
    assert_eq!(call("quay", &[], Some(&q), build), Ok(vec![]));
}

#[test]
fn github_package_event() {
    // A signed GitHub delivery of event `kind`.
    let github = |kind: &str, body: &str| {
        let signature = sig(body);
        call(
            "github",
            &[
                ("x-github-event", kind),
                ("x-hub-signature-256", &signature),
            ],
            None,
            body,
        )
    };
    let r = github("package", GITHUB_PACKAGE);
    let want = event("ghcr.io", "example-org/app", "1.4.2", Some(INDEX_DIGEST));
    assert_eq!(r, Ok(vec![want.clone()]));
    assert!(matches("ghcr.io/example-org/app", &want));

    let bad = [
        ("x-github-event", "package"),
        ("x-hub-signature-256", "sha256=00"),
    ];
    assert_refused(
        &call("github", &bad, None, GITHUB_PACKAGE),
        StatusCode::UNAUTHORIZED,
    );
    assert_refused(
        &call(
            "github",
            &[("x-github-event", "package")],
            None,
            GITHUB_PACKAGE,
        ),
        StatusCode::UNAUTHORIZED,
    );
    assert_eq!(github("ping", "{}"), Ok(vec![]));
    assert_refused(&github("package", "{}"), StatusCode::BAD_REQUEST);
    let untagged = GITHUB_PACKAGE.replace("\"name\": \"1.4.2\"", "\"name\": \"\"");
    assert_eq!(github("package", &untagged), Ok(vec![]));
    let npm = GITHUB_PACKAGE.replace(
        "\"package_type\": \"CONTAINER\"",
        "\"package_type\": \"npm\"",
    );
    assert_eq!(github("package", &npm), Ok(vec![]));
}

#[test]
fn generic_hmac() {
    let body = r#"{"image": "registry.example.com/team/app", "tag": "1.4.2"}"#;
    let r = call("generic", &[("x-signature-256", &sig(body))], None, body);
    assert_eq!(
        r,
        Ok(vec![event(
            "registry.example.com",
            "team/app",
            "1.4.2",
            None
        )])
    );
    let body = r#"{"image": "nginx"}"#;
    let r = call("generic", &[("x-signature-256", &sig(body))], None, body).unwrap();
    assert_eq!(r[0].repository, "library/nginx");
    assert_eq!(r[0].tag, None);

    assert_refused(
        &call("generic", &[("x-signature-256", &sig("x"))], None, body),
        StatusCode::UNAUTHORIZED,
    );
    assert_refused(&call("generic", &[], None, body), StatusCode::UNAUTHORIZED);
    for bad in [
        "{}",
        r#"{"image": ""}"#,
        r#"{"image": "a", "color": 1}"#,
        "nope",
    ] {
        assert_refused(
            &call("generic", &[("x-signature-256", &sig(bad))], None, bad),
            StatusCode::BAD_REQUEST,
        );
    }
}

#[test]
fn unknown_provider() {
    assert_refused(&call("acr", &[], None, "{}"), StatusCode::NOT_FOUND);
}

#[test]
fn image_normalization() {
    let key = |s| normalize_image(s).map(|k| format!("{}|{}", k.host, k.path));
    assert_eq!(key("nginx"), Some("docker.io|library/nginx".into()));
    assert_eq!(
        key("nginx:1.27@sha256:abc"),
        Some("docker.io|library/nginx".into())
    );
    assert_eq!(key("bitnami/redis"), Some("docker.io|bitnami/redis".into()));
    assert_eq!(
        key("registry-1.docker.io/nginx"),
        Some("docker.io|library/nginx".into())
    );
    assert_eq!(key("localhost/app"), Some("localhost|app".into()));
    assert_eq!(
        key("127.0.0.1:15000/e2e/x/app:1.0"),
        Some("127.0.0.1:15000|e2e/x/app".into())
    );
    assert_eq!(key("GHCR.io/org/app"), Some("ghcr.io|org/app".into()));
    assert_eq!(key(""), None);
    let hostless = RegistryEvent {
        registry_host: None,
        repository: "team/app".into(),
        tag: None,
        digest: None,
    };
    assert!(matches("any.registry/team/app", &hostless));
    assert!(!matches("any.registry/team/other", &hostless));
}
