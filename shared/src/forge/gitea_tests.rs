use super::*;
use crate::forge::PullRequestState;

const PULLS: &str = include_str!("testdata/gitea-pulls.json");
const STATUSES: &str = include_str!("testdata/gitea-statuses.json");

fn repo() -> Repo {
    Repo {
        owner: "team".into(),
        name: "config".into(),
    }
}

#[test]
fn picks_the_newest_pull_request_of_a_branch_even_merged_with_its_branch_deleted() {
    let listing = Gitea
        .pick_pull_request(PULLS.as_bytes(), "sluice/rollback/abc", "main")
        .unwrap();
    assert_eq!(listing.entries, 3);
    let pr = listing.found.unwrap();
    assert_eq!(pr.number, 2);
    assert_eq!(pr.state, PullRequestState::Merged);
    assert_eq!(pr.head, "sluice/rollback/abc");
    assert_eq!(pr.base, "main");
    assert_eq!(pr.url, "https://git.example.com/team/config/pulls/2");
    assert_eq!(
        pr.merge_commit.as_deref(),
        Some("8e778e229c0b7841c5b7e852b4244d794c8c0c34")
    );
    assert_eq!(
        pr.head_sha.as_deref(),
        Some("7d080c109b5dda29aeb737aa07388a15c077dc51")
    );
    assert_eq!((pr.title.as_str(), pr.body.as_str()), ("two", "b2"));

    let open = Gitea.pick_pull_request(PULLS.as_bytes(), "feature-x", "main");
    let open = open.unwrap().found.unwrap();
    assert_eq!((open.number, open.state), (3, PullRequestState::Open));
    assert_eq!(open.merge_commit, None);
    let other_base = Gitea.pick_pull_request(PULLS.as_bytes(), "feature-x", "release");
    assert_eq!(other_base.unwrap().found, None);
    assert!(Gitea.pick_pull_request(b"{}", "x", "main").is_err());
}

#[test]
fn closed_without_merge_is_closed() {
    let pulls: Vec<serde_json::Value> = serde_json::from_str(PULLS).unwrap();
    let first = serde_json::to_vec(&pulls[2]).unwrap();
    let pr = Gitea.parse_pull_request(&first).unwrap();
    assert_eq!((pr.number, pr.state), (1, PullRequestState::Closed));
    assert_eq!(pr.merge_commit, None);
}

#[test]
fn paths_and_bodies() {
    let (list, size) = Gitea.list_pull_requests(&repo(), "h", "release/1.x", 2);
    assert_eq!(list.path, "/repos/team/config/pulls");
    assert_eq!(size, 50);
    let query = [
        ("state", "all"),
        ("base_branch", "release/1.x"),
        ("limit", "50"),
    ];
    for (k, v) in query {
        assert!(list.query.contains(&(k, v.to_string())), "{list:?}");
    }
    assert!(list.query.contains(&("page", "2".into())));
    let new = NewPullRequest {
        head: "sluice/update".into(),
        base: "main".into(),
        title: "Update".into(),
        body: "why".into(),
        labels: vec!["sluice".into()],
    };
    let create = Gitea.create_pull_request(&repo(), &new, &[7]);
    assert_eq!(
        (create.method, create.path.as_str()),
        (Method::POST, "/repos/team/config/pulls")
    );
    let expected = json!({"head": "sluice/update", "base": "main", "title": "Update", "body": "why", "labels": [7]});
    assert_eq!(create.body, Some(expected));
    let merge = Gitea.merge_pull_request(&repo(), 4);
    assert_eq!(merge.path, "/repos/team/config/pulls/4/merge");
    assert_eq!(merge.body, Some(json!({"Do": "merge"})));
    let close = Gitea.close_pull_request(&repo(), 4);
    assert_eq!(
        (close.method, close.body),
        (Method::PATCH, Some(json!({"state": "closed"})))
    );
    assert_eq!(
        Gitea.comment(&repo(), 4, "hi").path,
        "/repos/team/config/issues/4/comments"
    );
    let label = create_label(&repo(), "sluice");
    assert_eq!(
        label.body,
        Some(json!({"name": "sluice", "color": "#e11d21"}))
    );
    assert_eq!(Gitea.auth_header("t0k").1, "token t0k");
}

#[test]
fn probes_only_where_the_route_is_unambiguous() {
    let probe = Gitea
        .probe_pull_request(&repo(), "sluice/rollback/a b", "main")
        .unwrap();
    assert_eq!(
        probe.path,
        "/repos/team/config/pulls/main/sluice/rollback/a%20b"
    );
    assert!(
        Gitea
            .probe_pull_request(&repo(), "x", "release/1.x")
            .is_none()
    );
    assert!(Gitea.probe_pull_request(&repo(), "files", "main").is_none());
    assert!(
        Gitea
            .probe_pull_request(&repo(), "reviews/x", "main")
            .is_none()
    );
}

#[test]
fn statuses_newest_first_and_descriptions_cut() {
    let statuses = Gitea.parse_commit_statuses(STATUSES.as_bytes()).unwrap();
    let seen: Vec<_> = statuses
        .iter()
        .map(|s| (s.context.as_str(), s.state))
        .collect();
    let expected = [
        ("other-ci", StatusState::Failure),
        ("sluice/health", StatusState::Success),
        ("sluice/health", StatusState::Pending),
    ];
    assert_eq!(seen, expected);
    assert_eq!(statuses[1].target_url, None);
    assert_eq!(statuses[2].target_url.as_deref(), Some("http://x/y"));
    assert_eq!(statuses[2].description, "rolling out");
    let status = CommitStatus {
        state: StatusState::Error,
        context: "sluice/health".into(),
        description: "x".repeat(300),
        target_url: Some("https://sluice.example/r".into()),
    };
    let call = Gitea.set_commit_status(&repo(), "abc123", &status);
    assert_eq!(call.path, "/repos/team/config/statuses/abc123");
    let body = call.body.unwrap();
    assert_eq!(body["state"], "error");
    assert_eq!(body["description"].as_str().unwrap().chars().count(), 140);
    assert_eq!(body["target_url"], "https://sluice.example/r");
}

#[test]
fn labels() {
    let body = br#"[{"id":1,"name":"sluice","exclusive":false,"is_archived":false,"color":"e11d21","description":"","url":"https://git.example.com/api/v1/repos/team/config/labels/1"}]"#;
    assert_eq!(parse_labels(body).unwrap(), vec![(1, "sluice".to_string())]);
    assert_eq!(
        parse_label(br#"{"id":9,"name":"x","color":"e11d21"}"#),
        Ok(9)
    );
    let (call, _) = list_labels(&repo(), 1);
    assert_eq!(call.path, "/repos/team/config/labels");
}
