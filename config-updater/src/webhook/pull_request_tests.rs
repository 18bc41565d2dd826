//! The forges' pull-request deliveries, through [`receive`](crate::webhook::receive) as the
//! router calls it, and the pure parsers on their own.

use super::*;
use crate::webhook::{Delivered, PROVIDERS, receive};
use sluice_shared::repo_url::same_repository;
use sluice_shared::webhook::{
    HeaderMap, HeaderName, HeaderValue, Secrets, StatusCode, sign_hmac_sha256, status_of,
};

const GITEA_CLOSED: &str = include_str!("testdata/gitea_pull_request_closed.json");
const GITHUB_MERGED: &str = include_str!("testdata/github_pull_request_merged.json");
const GITLAB_CLOSE: &str = include_str!("testdata/gitlab_merge_request_close.json");

const KEY: &str = "forge-webhook-secret";

type Outcome = Result<Vec<Delivered>, WebhookError>;

fn secrets() -> Secrets {
    PROVIDERS
        .iter()
        .fold(Secrets::new(), |s, p| s.with(p, Secret::new(KEY)))
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

fn call(provider: &str, hdrs: &[(&str, &str)], body: &str) -> Outcome {
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

/// Gitea signs with bare hex.
fn bare(body: &str) -> String {
    sig(body)["sha256=".len()..].to_string()
}

fn gitea(kind: &str, body: &str) -> Outcome {
    call(
        "gitea",
        &[("x-gitea-event", kind), ("x-gitea-signature", &bare(body))],
        body,
    )
}

fn github(kind: &str, body: &str) -> Outcome {
    call(
        "github",
        &[
            ("x-github-event", kind),
            ("x-hub-signature-256", &sig(body)),
        ],
        body,
    )
}

fn gitlab(kind: &str, body: &str) -> Outcome {
    call(
        "gitlab",
        &[("x-gitlab-event", kind), ("x-gitlab-token", KEY)],
        body,
    )
}

fn one(outcome: Outcome) -> PullRequestEvent {
    let mut delivered = outcome.expect("accepted");
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    match delivered.remove(0) {
        Delivered::PullRequest(e) => e,
        other => panic!("not a pull-request event: {other:?}"),
    }
}

fn ignored(outcome: Outcome) {
    assert_eq!(outcome, Ok(vec![]));
    assert_eq!(status_of(&outcome), StatusCode::NO_CONTENT);
}

fn refused(outcome: Outcome, status: StatusCode) {
    assert_eq!(status_of(&outcome), status, "{outcome:?}");
}

#[test]
fn gitea_closed_signed_with_bare_hex() {
    let e = one(gitea("pull_request", GITEA_CLOSED));
    assert_eq!(
        e,
        PullRequestEvent {
            repository_urls: vec![
                "https://gitea.example.org:3000/ops/config.git".into(),
                "ssh://git@gitea.example.org:2222/ops/config.git".into(),
                "https://gitea.example.org:3000/ops/config".into(),
            ],
            head: "sluice/bumps".into(),
            base: "main".into(),
            action: "closed".into(),
        }
    );
    assert!(same_repository(
        "http://gitea.example.org/ops/config.git",
        &e.repository_urls
    ));
    assert_eq!(
        status_of(&gitea("pull_request", GITEA_CLOSED)),
        StatusCode::ACCEPTED
    );

    let merged = GITEA_CLOSED.replace("\"merged\": false", "\"merged\": true");
    assert_eq!(one(gitea("pull_request", &merged)).action, "merged");
    let reopened = GITEA_CLOSED.replace("\"action\": \"closed\"", "\"action\": \"reopened\"");
    assert_eq!(one(gitea("pull_request", &reopened)).action, "reopened");
    // Once its branch is gone Gitea names the pull ref; the label is the branch.
    let gone = GITEA_CLOSED.replace("\"ref\": \"sluice/bumps\"", "\"ref\": \"refs/pull/4/head\"");
    assert_eq!(one(gitea("pull_request", &gone)).head, "sluice/bumps");
}

#[test]
fn gitea_refusals() {
    refused(
        call("gitea", &[("x-gitea-event", "pull_request")], GITEA_CLOSED),
        StatusCode::UNAUTHORIZED,
    );
    let r = call(
        "gitea",
        &[
            ("x-gitea-event", "pull_request"),
            ("x-gitea-signature", &bare("another body")),
        ],
        GITEA_CLOSED,
    );
    assert_eq!(r, Err(WebhookError::BadSignature));
    // A tampered body under the original signature.
    let tampered = GITEA_CLOSED.replace("sluice/bumps", "sluice/other");
    let r = call(
        "gitea",
        &[
            ("x-gitea-event", "pull_request"),
            ("x-gitea-signature", &bare(GITEA_CLOSED)),
        ],
        &tampered,
    );
    assert_eq!(r, Err(WebhookError::BadSignature));
    // Signed but without an event header, or not JSON, or without its parts.
    let r = call(
        "gitea",
        &[("x-gitea-signature", &bare(GITEA_CLOSED))],
        GITEA_CLOSED,
    );
    assert!(matches!(r, Err(WebhookError::UnknownEvent(_))), "{r:?}");
    refused(
        gitea("pull_request", "{\"action\": "),
        StatusCode::BAD_REQUEST,
    );
    refused(
        gitea("pull_request", r#"{"action": "closed"}"#),
        StatusCode::BAD_REQUEST,
    );
    let nameless = r#"{"action": "closed", "pull_request": {"merged": false,
        "head": {"ref": "b"}, "base": {"ref": "main"}}, "repository": {}}"#;
    refused(gitea("pull_request", nameless), StatusCode::BAD_REQUEST);
}

#[test]
fn gitea_ignored_actions_and_events() {
    for action in ["opened", "synchronized", "edited", "label_updated"] {
        let body = GITEA_CLOSED.replace(
            "\"action\": \"closed\"",
            &format!("\"action\": \"{action}\""),
        );
        ignored(gitea("pull_request", &body));
    }
    ignored(gitea("push", "{}"));
    ignored(gitea("issues", "{}"));
    // Ignored, but still verified first.
    refused(
        call("gitea", &[("x-gitea-event", "push")], "{}"),
        StatusCode::UNAUTHORIZED,
    );
}

#[test]
fn github_pull_request_merged_and_closed() {
    let e = one(github("pull_request", GITHUB_MERGED));
    assert_eq!(e.action, "merged");
    assert_eq!(
        e.head, "sluice/bumps",
        "the ref, not the owner:branch label"
    );
    assert_eq!(e.base, "main");
    assert_eq!(
        e.repository_urls,
        [
            "https://github.com/Example-Org/config.git",
            "git@github.com:Example-Org/config.git",
            "https://github.com/Example-Org/config",
        ]
    );
    assert!(same_repository(
        "ssh://git@github.com/example-org/config",
        &e.repository_urls
    ));
    let closed = GITHUB_MERGED.replace("\"merged\": true", "\"merged\": false");
    assert_eq!(one(github("pull_request", &closed)).action, "closed");
    let reopened = closed.replace("\"action\": \"closed\"", "\"action\": \"reopened\"");
    assert_eq!(one(github("pull_request", &reopened)).action, "reopened");
    for action in ["opened", "synchronize", "edited", "labeled"] {
        let body = GITHUB_MERGED.replace(
            "\"action\": \"closed\"",
            &format!("\"action\": \"{action}\""),
        );
        ignored(github("pull_request", &body));
    }
}

#[test]
fn github_one_secret_for_packages_and_pull_requests() {
    // Unsigned or badly signed pull requests are refused like packages.
    refused(
        call(
            "github",
            &[("x-github-event", "pull_request")],
            GITHUB_MERGED,
        ),
        StatusCode::UNAUTHORIZED,
    );
    refused(
        call(
            "github",
            &[
                ("x-github-event", "pull_request"),
                ("x-hub-signature-256", &sig("{}")),
            ],
            GITHUB_MERGED,
        ),
        StatusCode::UNAUTHORIZED,
    );
    // A package delivery still comes out as a registry event.
    let package = include_str!("testdata/github_package.json");
    let r = github("package", package).unwrap();
    assert!(matches!(r.as_slice(), [Delivered::Image(_)]), "{r:?}");
    // Other events are ignored.
    ignored(github("ping", "{}"));
    ignored(github("push", "{}"));
}

#[test]
fn gitlab_merge_request_actions() {
    let e = one(gitlab("Merge Request Hook", GITLAB_CLOSE));
    assert_eq!(
        e,
        PullRequestEvent {
            repository_urls: vec![
                "https://gitlab.example.com/platform/team/config.git".into(),
                "git@gitlab.example.com:platform/team/config.git".into(),
                "https://gitlab.example.com/platform/team/config".into(),
            ],
            head: "sluice/bumps".into(),
            base: "main".into(),
            action: "closed".into(),
        }
    );
    let merged = GITLAB_CLOSE
        .replace("\"action\": \"close\"", "\"action\": \"merge\"")
        .replace("\"state\": \"closed\"", "\"state\": \"merged\"");
    assert_eq!(one(gitlab("Merge Request Hook", &merged)).action, "merged");
    let reopened = GITLAB_CLOSE
        .replace("\"action\": \"close\"", "\"action\": \"reopen\"")
        .replace("\"state\": \"closed\"", "\"state\": \"opened\"");
    assert_eq!(
        one(gitlab("Merge Request Hook", &reopened)).action,
        "reopened"
    );
    // Without an action (old GitLab), the state says it.
    let stateful = GITLAB_CLOSE.replace(",\n    \"action\": \"close\"", "");
    assert_ne!(stateful, GITLAB_CLOSE);
    assert_eq!(
        one(gitlab("Merge Request Hook", &stateful)).action,
        "closed"
    );
    for action in ["open", "update", "approved", "unapproved"] {
        let body = GITLAB_CLOSE
            .replace(
                "\"action\": \"close\"",
                &format!("\"action\": \"{action}\""),
            )
            .replace("\"state\": \"closed\"", "\"state\": \"opened\"");
        ignored(gitlab("Merge Request Hook", &body));
    }
    // An updated merge request that was closed long ago is not news.
    let update = GITLAB_CLOSE.replace("\"action\": \"close\"", "\"action\": \"update\"");
    ignored(gitlab("Merge Request Hook", &update));
    ignored(gitlab("Push Hook", "{}"));
    ignored(gitlab("Note Hook", "{}"));
    let push = r#"{"object_kind": "push"}"#;
    ignored(gitlab("System Hook", push));
    assert_eq!(
        one(gitlab("System Hook", GITLAB_CLOSE)).action,
        "closed",
        "a system hook of a merge request"
    );
}

#[test]
fn gitlab_token_refusals() {
    let r = call(
        "gitlab",
        &[("x-gitlab-event", "Merge Request Hook")],
        GITLAB_CLOSE,
    );
    assert_eq!(r, Err(WebhookError::MissingSignature("X-Gitlab-Token")));
    let r = call(
        "gitlab",
        &[
            ("x-gitlab-event", "Merge Request Hook"),
            ("x-gitlab-token", "not-the-token"),
        ],
        GITLAB_CLOSE,
    );
    assert_eq!(r, Err(WebhookError::BadSignature));
    refused(
        call("gitlab", &[("x-gitlab-token", KEY)], GITLAB_CLOSE),
        StatusCode::BAD_REQUEST,
    );
    refused(
        gitlab("Merge Request Hook", "not json"),
        StatusCode::BAD_REQUEST,
    );
    let headless = r#"{"object_kind": "merge_request", "object_attributes": {"action": "close",
        "target_branch": "main"}, "project": {"web_url": "https://gitlab.example.com/a/b"}}"#;
    refused(
        gitlab("Merge Request Hook", headless),
        StatusCode::BAD_REQUEST,
    );
}

#[test]
fn providers_without_a_secret_are_not_served() {
    let h = headers(&[
        ("x-gitea-event", "pull_request"),
        ("x-gitea-signature", &bare(GITEA_CLOSED)),
    ]);
    let d = Delivery {
        provider: "gitea",
        headers: &h,
        query: None,
        body: GITEA_CLOSED.as_bytes(),
    };
    let only_github = Secrets::new().with("github", Secret::new(KEY));
    let r = receive(&only_github, &d);
    assert_eq!(r, Err(WebhookError::UnknownProvider("gitea".into())));
    assert_eq!(status_of(&r), StatusCode::NOT_FOUND);
}

#[test]
fn the_parsers_on_their_own() {
    let h = headers(&[
        ("x-gitea-event", "pull_request"),
        ("x-gitea-signature", &bare(GITEA_CLOSED)),
    ]);
    let d = Delivery {
        provider: "gitea",
        headers: &h,
        query: None,
        body: GITEA_CLOSED.as_bytes(),
    };
    let secret = Secret::new(KEY);
    let e = parse_gitea_pull_request(&secret, &d).unwrap().unwrap();
    assert!(ACTIONS.contains(&e.action.as_str()));
    // Gitea's delivery is no GitHub one (no X-GitHub-Event) nor a GitLab one (no token).
    assert!(matches!(
        parse_github_pull_request(&secret, &d),
        Err(WebhookError::MissingSignature(_))
    ));
    assert!(matches!(
        parse_gitlab_merge_request(&secret, &d),
        Err(WebhookError::MissingSignature(_))
    ));
}

#[test]
fn an_event_concerns_the_updates_proposing_from_its_head_into_its_base() {
    let e = one(gitea("pull_request", GITEA_CLOSED));
    let url = "https://gitea.example.org:3000/ops/config.git";
    assert!(e.concerns(url, "main", "sluice/bumps"));
    assert!(e.concerns("git@gitea.example.org:ops/Config", "main", "sluice/bumps"));
    assert!(e.concerns(url, "refs/heads/main", "refs/heads/sluice/bumps"));
    assert!(
        !e.concerns(url, "main", "sluice/other"),
        "another push branch"
    );
    assert!(!e.concerns(url, "release", "sluice/bumps"), "another base");
    assert!(
        !e.concerns(
            "https://gitea.example.org:3000/ops/other.git",
            "main",
            "sluice/bumps"
        ),
        "another repository"
    );
    assert!(
        !e.concerns(
            "https://elsewhere.example.org/ops/config.git",
            "main",
            "sluice/bumps"
        ),
        "another host"
    );
}
