use super::*;
use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

const SECRET: &[u8] = b"It's a Secret to Everybody";
const BODY: &[u8] = b"Hello, World!";
// GitHub's documented example of X-Hub-Signature-256 for this secret and body.
const GITHUB_EXAMPLE: &str =
    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

#[test]
fn hmac_sha256_accepts_prefixed_and_bare_hex() {
    assert_eq!(verify_hmac_sha256(SECRET, BODY, GITHUB_EXAMPLE), Ok(()));
    assert_eq!(
        verify_hmac_sha256(SECRET, BODY, &GITHUB_EXAMPLE[7..]),
        Ok(())
    );
    assert_eq!(
        verify_hmac_sha256(
            SECRET,
            BODY,
            &GITHUB_EXAMPLE.to_uppercase().replace("SHA256=", "sha256=")
        ),
        Ok(())
    );
    assert_eq!(sign_hmac_sha256(SECRET, BODY), GITHUB_EXAMPLE);
}

#[test]
fn hmac_sha256_refuses_wrong_key_body_or_garbage() {
    let bad = Err(WebhookError::BadSignature);
    assert_eq!(verify_hmac_sha256(b"other", BODY, GITHUB_EXAMPLE), bad);
    assert_eq!(
        verify_hmac_sha256(SECRET, b"Hello, World?", GITHUB_EXAMPLE),
        bad
    );
    assert_eq!(verify_hmac_sha256(SECRET, BODY, "sha256=zz"), bad);
    assert_eq!(verify_hmac_sha256(SECRET, BODY, "sha256="), bad);
    assert_eq!(verify_hmac_sha256(SECRET, BODY, &GITHUB_EXAMPLE[..40]), bad);
    assert_eq!(verify_hmac_sha256(SECRET, BODY, "sha256=abc"), bad);
}

#[test]
fn hmac_sha1_for_the_legacy_github_header() {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(SECRET).unwrap();
    mac.update(BODY);
    let sig = format!("sha1={}", encode_hex(&mac.finalize().into_bytes()));
    assert_eq!(verify_hmac_sha1(SECRET, BODY, &sig), Ok(()));
    assert_eq!(
        verify_hmac_sha1(b"other", BODY, &sig),
        Err(WebhookError::BadSignature)
    );
}

#[test]
fn tokens_compare_whole_values() {
    assert_eq!(verify_token(b"s3cret", "s3cret"), Ok(()));
    for wrong in ["s3cre", "s3cret ", "S3CRET", "", "s3cret\n"] {
        assert_eq!(
            verify_token(b"s3cret", wrong),
            Err(WebhookError::BadSignature),
            "{wrong:?}"
        );
    }
    assert_eq!(
        verify_token(b"", ""),
        Err(WebhookError::BadSignature),
        "no empty secret"
    );
    assert_eq!(verify_bearer(b"tok", "Bearer tok"), Ok(()));
    assert_eq!(verify_bearer(b"tok", "bearer  tok "), Ok(()));
    assert_eq!(
        verify_bearer(b"tok", "tok"),
        Err(WebhookError::BadSignature)
    );
    assert_eq!(
        verify_bearer(b"tok", "Basic dG9r"),
        Err(WebhookError::BadSignature)
    );
}

#[test]
fn statuses() {
    assert_eq!(status_of::<u8>(&Ok(vec![])), StatusCode::NO_CONTENT);
    assert_eq!(status_of(&Ok(vec![1])), StatusCode::ACCEPTED);
    assert_eq!(
        status_of::<u8>(&Err(WebhookError::MissingSignature("X"))),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status_of::<u8>(&Err(WebhookError::BadSignature)),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status_of::<u8>(&Err(WebhookError::Malformed("x".into()))),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status_of::<u8>(&Err(WebhookError::UnknownEvent("x".into()))),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status_of::<u8>(&Err(WebhookError::UnknownProvider("x".into()))),
        StatusCode::NOT_FOUND
    );
}

#[test]
fn secrets_do_not_print() {
    let s = Secret::new("hunter2");
    assert_eq!(format!("{s:?}"), "Secret(***)");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    std::fs::write(&path, "hunter2\n").unwrap();
    assert_eq!(Secret::from_file(&path).unwrap().expose(), b"hunter2");
    std::fs::write(&path, " \n").unwrap();
    let e = Secret::from_file(&path).unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
}

#[test]
fn delivery_reads_query_and_headers() {
    let mut headers = HeaderMap::new();
    headers.insert("authorization", "Bearer abc".parse().unwrap());
    let d = Delivery {
        provider: "quay",
        headers: &headers,
        query: Some("a=1&token=x%2By+z&b"),
        body: b"{}",
    };
    assert_eq!(d.query_param("token").as_deref(), Some("x+y z"));
    assert_eq!(d.query_param("b").as_deref(), Some(""));
    assert_eq!(d.query_param("c"), None);
    let secret = Secret::new("x+y z");
    assert_eq!(d.verify_token_query(&secret, "token"), Ok(()));
    assert_eq!(
        d.verify_token_query(&secret, "secret"),
        Err(WebhookError::MissingSignature("secret"))
    );
    assert_eq!(
        d.verify_token_header(&Secret::new("abc"), "authorization"),
        Ok(())
    );
    assert_eq!(
        d.verify_token_header(&Secret::new("abc"), "x-gitlab-token"),
        Err(WebhookError::MissingSignature("x-gitlab-token"))
    );
    assert_eq!(percent_decode("100%"), "100%");
    assert_eq!(percent_decode("%4"), "%4");
    assert_eq!(percent_decode("%41%zz"), "A%zz");
}

/// A receiver for the router tests: `generic` with HMAC over the body; a body of `ping` is
/// ignored, `bad` is malformed, anything else is one trigger.
fn test_router(tx: mpsc::Sender<String>) -> Router {
    let secret = Secret::new(SECRET);
    router(
        "/webhook/",
        move |d: &Delivery<'_>| {
            if d.provider != "generic" {
                return Err(WebhookError::UnknownProvider(d.provider.to_string()));
            }
            d.verify_hmac_sha256(&secret, "x-signature-256")?;
            match d.body {
                b"ping" => Ok(vec![]),
                b"bad" => Err(WebhookError::Malformed("bad".into())),
                b => Ok(vec![String::from_utf8_lossy(b).into_owned()]),
            }
        },
        tx,
    )
}

async fn post(app: &Router, path: &str, signature: Option<&str>, body: Vec<u8>) -> StatusCode {
    let mut req = Request::post(path);
    if let Some(sig) = signature {
        req = req.header("X-Signature-256", sig);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    resp.status()
}

#[tokio::test]
async fn router_sends_only_verified_triggers() {
    let (tx, mut rx) = mpsc::channel(8);
    let app = test_router(tx);
    let sign = |b: &[u8]| sign_hmac_sha256(SECRET, b);

    assert_eq!(
        post(&app, "/webhook/generic", Some(&sign(b"go")), b"go".to_vec()).await,
        StatusCode::ACCEPTED
    );
    assert_eq!(rx.try_recv().unwrap(), "go");

    assert_eq!(
        post(
            &app,
            "/webhook/generic",
            Some(&sign(b"go")),
            b"gone".to_vec()
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(&app, "/webhook/generic", None, b"go".to_vec()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(
            &app,
            "/webhook/generic",
            Some(&sign(b"bad")),
            b"bad".to_vec()
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post(
            &app,
            "/webhook/generic",
            Some(&sign(b"ping")),
            b"ping".to_vec()
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        post(&app, "/webhook/other", Some(&sign(b"go")), b"go".to_vec()).await,
        StatusCode::NOT_FOUND
    );
    let big = vec![b'x'; MAX_BODY_BYTES + 1];
    assert_eq!(
        post(&app, "/webhook/generic", Some(&sign(&big)), big).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert!(rx.try_recv().is_err(), "nothing else was triggered");

    drop(rx);
    assert_eq!(
        post(&app, "/webhook/generic", Some(&sign(b"go")), b"go".to_vec()).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[test]
fn secrets_from_flags() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gh");
    std::fs::write(&path, "topsecret\n").unwrap();
    let flag = format!("github={}", path.display());
    let secrets = Secrets::from_flags(std::slice::from_ref(&flag), &["github", "gitlab"]).unwrap();
    assert_eq!(secrets.get("github").unwrap().expose(), b"topsecret");
    assert!(secrets.get("gitlab").is_none());
    assert_eq!(secrets.providers().collect::<Vec<_>>(), ["github"]);
    let e = Secrets::from_flags(&[flag.clone(), flag.clone()], &["github"]).unwrap_err();
    assert!(e.contains("twice"), "{e}");
    let e =
        Secrets::from_flags(&[format!("bitbucket={}", path.display())], &["github"]).unwrap_err();
    assert!(e.contains("unknown provider"), "{e}");
    let e = Secrets::from_flags(&["github".into()], &["github"]).unwrap_err();
    assert!(e.contains("PROVIDER=PATH"), "{e}");
    let e = Secrets::from_flags(&["github=/nonexistent/x".into()], &["github"]).unwrap_err();
    assert!(!e.contains("topsecret"), "{e}");
}
