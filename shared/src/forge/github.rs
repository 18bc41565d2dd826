//! GitHub's REST API (api.github.com, or `/api/v3` of GitHub Enterprise Server), version
//! 2022-11-28. The calls and shapes Gitea copied from it are in `github_shaped.rs`; here is
//! what is GitHub's alone.
//!
//! The listing filters on `head=owner:branch` itself; `merged` is only in single pull requests,
//! so a merge is read from `merged_at`. `merge_commit_sha` is a test merge until the merge:
//! it is kept only for merged pull requests. Labels are added after creation (issues API),
//! which creates missing ones.

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::dialect::{Call, Dialect, Listing};
use super::github_shaped::{self, pulls_path, repos_path};
use super::{CommitStatus, NewPullRequest, PullRequest, Repo, StatusState};

const PAGE_SIZE: usize = 30;

pub(super) struct GitHub;

/// GitHub's pull request: `merged` is only in single pull requests.
type Pull = github_shaped::Pull<Branch, Option<bool>>;

#[derive(Deserialize)]
struct Branch {
    #[serde(rename = "ref")]
    reference: String,
    sha: Option<String>,
    repo: Option<RepoId>,
}

#[derive(Deserialize)]
struct RepoId {
    id: u64,
}

impl github_shaped::Branch for Branch {
    fn reference(&self) -> &str {
        &self.reference
    }

    fn sha(&self) -> Option<&str> {
        self.sha.as_deref()
    }

    /// Not when either repository is unknown (a deleted fork).
    fn same_repo(&self, other: &Self) -> bool {
        match (&self.repo, &other.repo) {
            (Some(h), Some(b)) => h.id == b.id,
            _ => false,
        }
    }
}

#[derive(Deserialize)]
struct Status {
    id: u64,
    state: String,
    #[serde(default)]
    context: String,
    description: Option<String>,
    target_url: Option<String>,
}

impl Dialect for GitHub {
    fn auth_header(&self, token: &str) -> (&'static str, String) {
        ("authorization", format!("Bearer {token}"))
    }

    fn headers(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("accept", "application/vnd.github+json"),
            ("x-github-api-version", "2022-11-28"),
        ]
    }

    fn list_pull_requests(&self, repo: &Repo, head: &str, base: &str, page: u32) -> (Call, usize) {
        let call = Call::get(pulls_path(repo))
            .query("head", format!("{}:{head}", repo.owner))
            .query("base", base)
            .query("state", "all")
            .query("sort", "created")
            .query("direction", "desc")
            .query("per_page", PAGE_SIZE)
            .query("page", page);
        (call, PAGE_SIZE)
    }

    fn pick_pull_request(&self, body: &[u8], head: &str, base: &str) -> Result<Listing, String> {
        Pull::pick(body, head, base)
    }

    fn get_pull_request(&self, repo: &Repo, number: u64) -> Call {
        github_shaped::get_pull_request(repo, number)
    }

    fn parse_pull_request(&self, body: &[u8]) -> Result<PullRequest, String> {
        Pull::parse(body)
    }

    fn create_pull_request(&self, repo: &Repo, new: &NewPullRequest, _label_ids: &[u64]) -> Call {
        let body = github_shaped::new_pull_request_body(new);
        Call::send(Method::POST, pulls_path(repo), body)
    }

    fn label_pull_request(&self, repo: &Repo, number: u64, labels: &[String]) -> Option<Call> {
        (!labels.is_empty()).then(|| {
            let path = format!("{}/issues/{number}/labels", repos_path(repo));
            Call::send(Method::POST, path, json!({"labels": labels}))
        })
    }

    fn edit_pull_request(&self, repo: &Repo, number: u64, title: &str, body: &str) -> Call {
        github_shaped::edit_pull_request(repo, number, title, body)
    }

    fn close_pull_request(&self, repo: &Repo, number: u64) -> Call {
        github_shaped::close_pull_request(repo, number)
    }

    fn comment(&self, repo: &Repo, number: u64, body: &str) -> Call {
        github_shaped::comment(repo, number, body)
    }

    fn merge_pull_request(&self, repo: &Repo, number: u64) -> Call {
        let path = github_shaped::merge_path(repo, number);
        Call::send(Method::PUT, path, json!({"merge_method": "merge"}))
    }

    fn set_commit_status(&self, repo: &Repo, sha: &str, status: &CommitStatus) -> Call {
        github_shaped::set_commit_status(repo, sha, status)
    }

    fn list_commit_statuses(&self, repo: &Repo, sha: &str) -> Call {
        github_shaped::list_commit_statuses(repo, sha).query("per_page", 100)
    }

    fn parse_commit_statuses(&self, body: &[u8]) -> Result<Vec<CommitStatus>, String> {
        github_shaped::parse_commit_statuses(body, |s: Status| {
            let state = match s.state.as_str() {
                "pending" => StatusState::Pending,
                "success" => StatusState::Success,
                "failure" => StatusState::Failure,
                _ => StatusState::Error,
            };
            github_shaped::commit_status(s.id, state, s.context, s.description, s.target_url)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forge::PullRequestState;

    const PULLS: &str = include_str!("testdata/github-pulls.json");
    const OPEN: &str = include_str!("testdata/github-pull-open.json");
    const STATUSES: &str = include_str!("testdata/github-statuses.json");

    fn repo() -> Repo {
        Repo {
            owner: "octocat".into(),
            name: "Hello-World".into(),
        }
    }

    #[test]
    fn lists_by_owner_and_branch_newest_first() {
        let (call, size) = GitHub.list_pull_requests(&repo(), "sluice/update", "main", 1);
        assert_eq!(call.path, "/repos/octocat/Hello-World/pulls");
        assert_eq!(size, 30);
        for (k, v) in [
            ("head", "octocat:sluice/update"),
            ("base", "main"),
            ("state", "all"),
            ("sort", "created"),
            ("direction", "desc"),
        ] {
            assert!(call.query.contains(&(k, v.to_string())), "{call:?}");
        }
    }

    #[test]
    fn merged_is_read_from_merged_at_in_listings() {
        let listing = GitHub
            .pick_pull_request(PULLS.as_bytes(), "sluice/rollback/1a2b3c4", "main")
            .unwrap();
        assert_eq!(listing.entries, 2);
        let pr = listing.found.unwrap();
        assert_eq!((pr.number, pr.state), (1348, PullRequestState::Merged));
        assert_eq!(pr.url, "https://github.com/octocat/Hello-World/pull/1348");
        assert_eq!(
            pr.merge_commit.as_deref(),
            Some("e5bd3914e2e596debea16f433f57875b5b90bcd6")
        );
        let pulls: Vec<serde_json::Value> = serde_json::from_str(PULLS).unwrap();
        let closed = GitHub
            .parse_pull_request(&serde_json::to_vec(&pulls[1]).unwrap())
            .unwrap();
        assert_eq!(closed.state, PullRequestState::Closed);
        // A test merge commit is no merge.
        assert_eq!((closed.merge_commit, closed.body.as_str()), (None, ""));
    }

    #[test]
    fn an_open_pull_request() {
        let pr = GitHub.parse_pull_request(OPEN.as_bytes()).unwrap();
        assert_eq!((pr.number, pr.state), (1349, PullRequestState::Open));
        assert_eq!(
            (pr.head.as_str(), pr.base.as_str()),
            ("sluice/update", "main")
        );
        assert_eq!(pr.merge_commit, None);
        assert_eq!(
            pr.head_sha.as_deref(),
            Some("6dcb09b5b57875f334f61aebed695e2e4193db5e")
        );
    }

    #[test]
    fn creation_then_labels() {
        let new = NewPullRequest {
            head: "sluice/update".into(),
            base: "main".into(),
            title: "Update".into(),
            body: String::new(),
            labels: vec!["sluice".into(), "automated".into()],
        };
        let create = GitHub.create_pull_request(&repo(), &new, &[]);
        assert_eq!(create.body.as_ref().unwrap()["head"], "sluice/update");
        assert!(create.body.as_ref().unwrap().get("labels").is_none());
        let label = GitHub.label_pull_request(&repo(), 5, &new.labels).unwrap();
        assert_eq!(label.path, "/repos/octocat/Hello-World/issues/5/labels");
        assert_eq!(label.body, Some(json!({"labels": ["sluice", "automated"]})));
        assert!(GitHub.label_pull_request(&repo(), 5, &[]).is_none());
        let merge = GitHub.merge_pull_request(&repo(), 5);
        assert_eq!(
            (merge.method, merge.path.as_str()),
            (Method::PUT, "/repos/octocat/Hello-World/pulls/5/merge")
        );
        assert_eq!(GitHub.auth_header("t").1, "Bearer t");
    }

    #[test]
    fn statuses() {
        let statuses = GitHub.parse_commit_statuses(STATUSES.as_bytes()).unwrap();
        assert_eq!(statuses.len(), 2);
        assert_eq!(statuses[0].state, StatusState::Success);
        assert_eq!(statuses[0].context, "continuous-integration/jenkins");
        assert_eq!(statuses[1].state, StatusState::Pending);
        assert_eq!(
            (statuses[1].description.as_str(), &statuses[1].target_url),
            ("", &None)
        );
        let call = GitHub.list_commit_statuses(&repo(), "6dcb09b");
        assert_eq!(
            call.path,
            "/repos/octocat/Hello-World/commits/6dcb09b/statuses"
        );
        let status = CommitStatus {
            state: StatusState::Failure,
            context: "sluice/health".into(),
            description: "CrashLoopBackOff".into(),
            target_url: None,
        };
        let call = GitHub.set_commit_status(&repo(), "6dcb09b", &status);
        assert_eq!(call.path, "/repos/octocat/Hello-World/statuses/6dcb09b");
        let expected = json!({"state": "failure", "context": "sluice/health", "description": "CrashLoopBackOff"});
        assert_eq!(call.body, Some(expected));
    }
}
