use super::*;
use crate::resource::GitRef;
use sluice_shared::webhook::{
    HeaderMap, HeaderName, HeaderValue, Secret, StatusCode, sign_hmac_sha256, status_of,
};

const GITHUB_PUSH: &str = include_str!("testdata/github_push.json");
const GITHUB_PING: &str = include_str!("testdata/github_ping.json");
const GITLAB_PUSH: &str = include_str!("testdata/gitlab_push.json");
const GITLAB_TAG_DELETE: &str = include_str!("testdata/gitlab_tag_delete.json");
const GITEA_PUSH: &str = include_str!("testdata/gitea_push.json");
const GENERIC_PUSH: &str = include_str!("testdata/generic_push.json");

const KEY: &str = "webhook-secret-for-tests";

fn secrets() -> Secrets {
    let s = Secret::new(KEY);
    Secrets::new()
        .with("github", s.clone())
        .with("gitlab", s.clone())
        .with("gitea", s.clone())
        .with("generic", s)
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(k, v)| {
            (
                k.parse::<HeaderName>().unwrap(),
                v.parse::<HeaderValue>().unwrap(),
            )
        })
        .collect()
}

fn call(provider: &str, hdrs: &[(&str, &str)], body: &str) -> Result<Vec<PushEvent>, WebhookError> {
    let h = headers(hdrs);
    let d = Delivery {
        provider,
        headers: &h,
        query: None,
        body: body.as_bytes(),
    };
    receive(&secrets(), &d)
}

fn sig(body: &str) -> String {
    sign_hmac_sha256(KEY.as_bytes(), body.as_bytes())
}

fn bare(body: &str) -> String {
    sig(body)["sha256=".len()..].to_string()
}

fn one(result: Result<Vec<PushEvent>, WebhookError>) -> PushEvent {
    let mut events = result.expect("accepted");
    assert_eq!(events.len(), 1, "{events:?}");
    events.remove(0)
}

#[test]
fn github_push_signed() {
    let e = one(call(
        "github",
        &[
            ("x-github-event", "push"),
            ("x-hub-signature-256", &sig(GITHUB_PUSH)),
        ],
        GITHUB_PUSH,
    ));
    assert_eq!(e.reference, "refs/heads/main");
    assert_eq!(
        e.revision.as_deref(),
        Some("0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c")
    );
    assert_eq!(
        e.repo_urls,
        [
            "https://github.com/Example-Org/config.git",
            "git@github.com:Example-Org/config.git",
            "https://github.com/Example-Org/config",
            "git://github.com/Example-Org/config.git",
        ]
    );
    assert!(matches("ssh://git@github.com/example-org/config", None, &e));
    assert!(matches(
        "https://github.com/Example-Org/config.git",
        Some(&GitRef::Branch("main".into())),
        &e
    ));
    assert!(!matches(
        "https://github.com/Example-Org/config.git",
        Some(&GitRef::Branch("dev".into())),
        &e
    ));
    assert!(!matches(
        "https://github.com/Example-Org/other.git",
        None,
        &e
    ));
}

#[test]
fn github_bad_missing_and_legacy_signatures() {
    let bad = sig("something else");
    let r = call(
        "github",
        &[("x-github-event", "push"), ("x-hub-signature-256", &bad)],
        GITHUB_PUSH,
    );
    assert_eq!(r, Err(WebhookError::BadSignature));
    assert_eq!(status_of(&r), StatusCode::UNAUTHORIZED);
    let r = call("github", &[("x-github-event", "push")], GITHUB_PUSH);
    assert_eq!(
        r,
        Err(WebhookError::MissingSignature("X-Hub-Signature-256"))
    );
    assert_eq!(status_of(&r), StatusCode::UNAUTHORIZED);
    // A tampered body under the original signature.
    let tampered = GITHUB_PUSH.replace("refs/heads/main", "refs/heads/evil");
    let r = call(
        "github",
        &[
            ("x-github-event", "push"),
            ("x-hub-signature-256", &sig(GITHUB_PUSH)),
        ],
        &tampered,
    );
    assert_eq!(r, Err(WebhookError::BadSignature));
    // A wrong legacy SHA-1 signature alone is refused too.
    let r = call(
        "github",
        &[("x-github-event", "push"), ("x-hub-signature", "sha1=0123")],
        GITHUB_PUSH,
    );
    assert_eq!(r, Err(WebhookError::BadSignature));
}

#[test]
fn github_ping_and_other_events_are_ignored_but_still_verified() {
    let r = call(
        "github",
        &[
            ("x-github-event", "ping"),
            ("x-hub-signature-256", &sig(GITHUB_PING)),
        ],
        GITHUB_PING,
    );
    assert_eq!(r, Ok(vec![]));
    assert_eq!(status_of(&r), StatusCode::NO_CONTENT);
    let r = call(
        "github",
        &[
            ("x-github-event", "issues"),
            ("x-hub-signature-256", &sig("{}")),
        ],
        "{}",
    );
    assert_eq!(r, Ok(vec![]));
    let r = call("github", &[("x-github-event", "ping")], GITHUB_PING);
    assert_eq!(status_of(&r), StatusCode::UNAUTHORIZED);
    let r = call(
        "github",
        &[("x-hub-signature-256", &sig(GITHUB_PING))],
        GITHUB_PING,
    );
    assert!(matches!(r, Err(WebhookError::UnknownEvent(_))), "{r:?}");
}

#[test]
fn github_malformed_and_deleted() {
    let body = "{\"ref\": ";
    let r = call(
        "github",
        &[
            ("x-github-event", "push"),
            ("x-hub-signature-256", &sig(body)),
        ],
        body,
    );
    assert!(matches!(r, Err(WebhookError::Malformed(_))), "{r:?}");
    assert_eq!(status_of(&r), StatusCode::BAD_REQUEST);
    let body = r#"{"ref": "refs/heads/main", "after": "abc"}"#;
    let r = call(
        "github",
        &[
            ("x-github-event", "push"),
            ("x-hub-signature-256", &sig(body)),
        ],
        body,
    );
    assert!(
        matches!(r, Err(WebhookError::Malformed(_))),
        "no repository: {r:?}"
    );
    let deleted = GITHUB_PUSH
        .replace("\"deleted\": false", "\"deleted\": true")
        .replace(
            "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
            "0000000000000000000000000000000000000000",
        );
    let r = call(
        "github",
        &[
            ("x-github-event", "push"),
            ("x-hub-signature-256", &sig(&deleted)),
        ],
        &deleted,
    );
    assert_eq!(r, Ok(vec![]), "a branch deletion syncs nothing");
}

#[test]
fn gitlab_push_with_token() {
    let e = one(call(
        "gitlab",
        &[("x-gitlab-event", "Push Hook"), ("x-gitlab-token", KEY)],
        GITLAB_PUSH,
    ));
    assert_eq!(e.reference, "refs/heads/main");
    assert_eq!(
        e.revision.as_deref(),
        Some("da1560886d4f094c3e6c9ef40349f7d38b5d27d7")
    );
    assert!(
        e.repo_urls
            .contains(&"https://gitlab.example.com/platform/team/config.git".to_string())
    );
    assert!(matches(
        "ssh://git@gitlab.example.com:2222/platform/team/config.git",
        None,
        &e
    ));
    assert!(
        !matches("ssh://git@gitlab.example.com/platform/config.git", None, &e),
        "subgroup path differs"
    );

    let r = call(
        "gitlab",
        &[("x-gitlab-event", "Push Hook"), ("x-gitlab-token", "wrong")],
        GITLAB_PUSH,
    );
    assert_eq!(r, Err(WebhookError::BadSignature));
    let r = call("gitlab", &[("x-gitlab-event", "Push Hook")], GITLAB_PUSH);
    assert_eq!(r, Err(WebhookError::MissingSignature("X-Gitlab-Token")));
    let r = call(
        "gitlab",
        &[("x-gitlab-event", "Push Hook"), ("x-gitlab-token", KEY)],
        "not json",
    );
    assert!(matches!(r, Err(WebhookError::Malformed(_))), "{r:?}");
    let r = call(
        "gitlab",
        &[
            ("x-gitlab-event", "Merge Request Hook"),
            ("x-gitlab-token", KEY),
        ],
        "{}",
    );
    assert_eq!(r, Ok(vec![]));
}

#[test]
fn gitlab_tag_deletion_is_ignored() {
    let r = call(
        "gitlab",
        &[("x-gitlab-event", "Tag Push Hook"), ("x-gitlab-token", KEY)],
        GITLAB_TAG_DELETE,
    );
    assert_eq!(r, Ok(vec![]));
    let created = GITLAB_TAG_DELETE.replace(
        "\"checkout_sha\": null",
        "\"checkout_sha\": \"82b3d5ae55f7080f1e6022629cdb57bfae7cccc7\"",
    );
    let e = one(call(
        "gitlab",
        &[("x-gitlab-event", "Tag Push Hook"), ("x-gitlab-token", KEY)],
        &created,
    ));
    assert_eq!(e.reference, "refs/tags/v1.0.0");
    assert!(matches(
        "git@gitlab.example.com:platform/team/config",
        Some(&GitRef::Tag("v1.0.0".into())),
        &e
    ));
}

#[test]
fn gitea_push_bare_hex_signature() {
    let e = one(call(
        "gitea",
        &[
            ("x-gitea-event", "push"),
            ("x-gitea-signature", &bare(GITEA_PUSH)),
        ],
        GITEA_PUSH,
    ));
    assert_eq!(e.reference, "refs/tags/v1.2.0");
    assert_eq!(
        e.revision.as_deref(),
        Some("4b9ef10a4f7d5e08c3d2f8d1bd0ce7be6dcf0b1e")
    );
    // The source uses https on another port, the payload ssh on 2222: one repository.
    assert!(matches(
        "https://Gitea.Example.org/ops/config/",
        Some(&GitRef::Tag("v1.2.0".into())),
        &e
    ));
    assert!(matches(
        "https://gitea.example.org/ops/config",
        Some(&GitRef::Commit("4b9ef10".into())),
        &e
    ));
    assert!(!matches(
        "https://gitea.example.org/ops/config",
        Some(&GitRef::Commit("4b9e".into())),
        &e
    ));
    assert!(
        !matches("https://gitea.example.org/ops/config", None, &e),
        "a tag push is not main"
    );

    let r = call(
        "gitea",
        &[("x-gitea-event", "push"), ("x-gitea-signature", &bare("x"))],
        GITEA_PUSH,
    );
    assert_eq!(r, Err(WebhookError::BadSignature));
    let r = call("gitea", &[("x-gitea-event", "push")], GITEA_PUSH);
    assert_eq!(r, Err(WebhookError::MissingSignature("X-Gitea-Signature")));
    let r = call(
        "gitea",
        &[
            ("x-gitea-event", "create"),
            ("x-gitea-signature", &bare("{}")),
        ],
        "{}",
    );
    assert_eq!(r, Ok(vec![]));
}

#[test]
fn generic_push() {
    let e = one(call(
        "generic",
        &[("x-signature-256", &sig(GENERIC_PUSH))],
        GENERIC_PUSH,
    ));
    assert_eq!(
        e,
        PushEvent {
            repo_urls: vec!["https://git.example.net/platform/config.git".into()],
            reference: "refs/heads/production".into(),
            revision: Some("3f786850e387550fdab836ed7e6dc881de23001b".into()),
        }
    );
    let body = r#"{"urls": ["git@git.example.net:platform/config"], "ref": "production"}"#;
    let e = one(call("generic", &[("x-signature-256", &sig(body))], body));
    assert_eq!(
        e.reference, "refs/heads/production",
        "a bare ref is a branch"
    );
    assert_eq!(e.revision, None);

    let r = call(
        "generic",
        &[("x-signature-256", &sig("other"))],
        GENERIC_PUSH,
    );
    assert_eq!(r, Err(WebhookError::BadSignature));
    let r = call("generic", &[], GENERIC_PUSH);
    assert_eq!(r, Err(WebhookError::MissingSignature("X-Signature-256")));
    for body in [
        "[]",
        r#"{"ref": "main"}"#,
        r#"{"url": "https://h/r"}"#,
        r#"{"url": "https://h/r", "ref": "main", "extra": 1}"#,
    ] {
        let r = call("generic", &[("x-signature-256", &sig(body))], body);
        assert!(
            matches!(r, Err(WebhookError::Malformed(_))),
            "{body}: {r:?}"
        );
    }
}

#[test]
fn unknown_or_unconfigured_provider_is_404() {
    let r = call("bitbucket", &[], "{}");
    assert_eq!(status_of(&r), StatusCode::NOT_FOUND);
    let h = HeaderMap::new();
    let d = Delivery {
        provider: "github",
        headers: &h,
        query: None,
        body: b"{}",
    };
    let r = receive(&Secrets::new().with("gitlab", Secret::new("x")), &d);
    assert_eq!(r, Err(WebhookError::UnknownProvider("github".into())));
}

#[test]
fn repositories_match_by_host_and_path_and_refs_exactly() {
    // URL normalization itself is sluice_shared::repo_url's (tested there).
    let e = PushEvent {
        repo_urls: vec!["https://a.example/org/repo".into()],
        reference: "refs/heads/main".into(),
        revision: None,
    };
    assert!(!matches("https://b.example/org/repo", None, &e));
    assert!(matches(
        "https://a.example:444/org/repo.git",
        Some(&GitRef::Branch("refs/heads/main".into())),
        &e
    ));
    assert!(!matches("/srv/git/org/repo.git", None, &e), "a local path");
    assert!(
        !matches(
            "https://a.example/org/repo",
            Some(&GitRef::Commit("abcdef0".into())),
            &e
        ),
        "no revision"
    );
}
