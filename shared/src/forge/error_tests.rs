use super::*;

fn cx(provider: Provider, has_token: bool) -> Context<'static> {
    Context {
        provider,
        api: "https://git.example.com/api/v1",
        repo: "team/config",
        what: "pull request #4 of team/config",
        has_token,
    }
}

fn error(status: u16, body: &str) -> ForgeError {
    from_status(status, body.as_bytes(), None, &cx(Provider::Gitea, true))
}

#[test]
fn statuses_map_to_kinds() {
    let gitea = r#"{"message":"not found","url":"https://git.example.com/api/swagger"}"#;
    let kinds = [
        (401, "auth"),
        (403, "forbidden"),
        (404, "not_found"),
        (405, "conflict"),
        (409, "conflict"),
        (412, "conflict"),
        (400, "invalid"),
        (422, "invalid"),
        (410, "invalid"),
        (429, "server"),
        (500, "server"),
        (503, "server"),
        (302, "protocol"),
    ];
    for (status, kind) in kinds {
        let e = error(status, gitea);
        assert_eq!(e.metric_label(), kind, "{status}: {e}");
        assert_eq!(e.is_transient(), kind == "server", "{status}");
    }
    assert_eq!(error(401, "").reason(), "ForgeAuth");
    assert_eq!(error(404, "").reason(), "ForgeNotFound");
}

#[test]
fn messages_name_the_api_the_subject_and_the_forges_words() {
    let e = error(
        409,
        r#"{"message":"pull request already exists for these targets [id: 2]","url":"x"}"#,
    );
    let text = e.to_string();
    assert!(text.contains("pull request #4 of team/config"), "{text}");
    assert!(text.contains("https://git.example.com/api/v1"), "{text}");
    assert!(text.contains("already exists for these targets"), "{text}");
    let e = error(404, r#"{"message":"not found"}"#);
    let text = e.to_string();
    assert!(
        text.starts_with("pull request #4 of team/config not found (404)"),
        "{text}"
    );
    assert!(text.contains("team/config in the git URL"), "{text}");
    let e = error(401, r#"{"message":"invalid username, password or token"}"#);
    assert!(e.to_string().contains("secretRef (key `token`)"), "{e}");
    let e = from_status(401, b"{}", None, &cx(Provider::GitLab, false));
    assert!(e.to_string().contains("no token is configured"), "{e}");
    let e = from_status(403, b"{}", None, &cx(Provider::GitLab, true));
    assert!(e.to_string().contains("Developer role"), "{e}");
    let e = from_status(
        301,
        b"",
        Some("https://x/api/v3"),
        &cx(Provider::GitHub, true),
    );
    assert!(e.to_string().contains("to https://x/api/v3"), "{e}");
}

#[test]
fn github_rate_limits_are_transient() {
    let body = r#"{"message":"API rate limit exceeded for user ID 1.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}"#;
    let e = from_status(403, body.as_bytes(), None, &cx(Provider::GitHub, true));
    assert!(e.is_transient(), "{e}");
}

#[test]
fn reads_the_message_of_each_forge() {
    // GitHub validation failure.
    let github = r#"{"message":"Validation Failed","errors":[{"resource":"PullRequest","code":"custom","message":"A pull request already exists for octo:sluice/update."}],"documentation_url":"https://docs.github.com/rest/pulls/pulls#create-a-pull-request","status":"422"}"#;
    assert_eq!(
        forge_message(github.as_bytes()),
        "Validation Failed; A pull request already exists for octo:sluice/update."
    );
    let github = r#"{"message":"Validation Failed","errors":[{"resource":"Issue","field":"title","code":"missing_field"}]}"#;
    assert_eq!(
        forge_message(github.as_bytes()),
        "Validation Failed; title: missing_field"
    );
    // GitLab: a list, a map of field errors, OAuth's error.
    let gitlab =
        r#"{"message":["Another open merge request already exists for this source branch: !12"]}"#;
    assert_eq!(
        forge_message(gitlab.as_bytes()),
        "Another open merge request already exists for this source branch: !12"
    );
    let gitlab = r#"{"message":{"target_branch":["can't be blank","is invalid"],"title":["can't be blank"]}}"#;
    assert_eq!(
        forge_message(gitlab.as_bytes()),
        "target_branch: can't be blank, is invalid; title: can't be blank"
    );
    let oauth = r#"{"error":"invalid_token","error_description":"Token was revoked. You have to re-authenticate."}"#;
    assert_eq!(
        forge_message(oauth.as_bytes()),
        "Token was revoked. You have to re-authenticate."
    );
    assert_eq!(
        forge_message(b"upstream connect error\n  reset"),
        "upstream connect error reset"
    );
    assert_eq!(
        forge_message(b"<html><body>502 Bad Gateway</body></html>"),
        ""
    );
    assert_eq!(forge_message(b""), "");
}

#[test]
fn long_messages_are_cut_on_a_char_boundary() {
    let long = format!(r#"{{"message":"{}"}}"#, "é".repeat(400));
    let message = forge_message(long.as_bytes());
    assert_eq!(message.chars().count(), MESSAGE_LIMIT);
    assert!(message.ends_with("é…"));
    assert_eq!(truncate("short", 10), "short");
    assert_eq!(truncate("exactly", 7), "exactly");
    assert_eq!(truncate("abcdef", 3), "ab…");
}

#[test]
fn scrub_removes_the_token_everywhere() {
    let e = error(422, r#"{"message":"bad header token s3cr3t-t0ken"}"#).scrub("s3cr3t-t0ken");
    assert!(!e.to_string().contains("s3cr3t-t0ken"), "{e}");
    assert!(e.to_string().contains("token ***"), "{e}");
    let e = ForgeError::NotFound {
        what: "x s3cr3t".into(),
        message: "s3cr3t".into(),
    }
    .scrub("s3cr3t");
    assert_eq!(e.to_string(), "x *** not found (404): ***");
}
