//! GitLab's REST API (`/api/v4`): merge requests, notes and commit statuses of a project named
//! by its URL-encoded path (`group%2Fsub%2Fapp`).
//!
//! A merge request's `number` is its `iid`. States: `opened` and `locked` are open, `merged`,
//! `closed`. The merge method is the project's (merge commit unless configured otherwise).
//! Statuses are written as `pending`, `success` and `failed` (failure and error alike); GitLab
//! refuses `pending` over a status that is pending or running already, which
//! [`Dialect::status_already_set`] recognizes.

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::dialect::{Call, Dialect, Listing, description, encode, newest_first, non_empty, read};
use super::{CommitStatus, NewPullRequest, PullRequest, PullRequestState, Repo, StatusState};

const PAGE_SIZE: usize = 20;

pub(super) struct GitLab;

#[derive(Deserialize)]
struct MergeRequest {
    iid: u64,
    web_url: String,
    state: String,
    source_branch: String,
    target_branch: String,
    source_project_id: Option<u64>,
    target_project_id: Option<u64>,
    sha: Option<String>,
    merge_commit_sha: Option<String>,
    squash_commit_sha: Option<String>,
    #[serde(default)]
    title: String,
    description: Option<String>,
}

impl MergeRequest {
    fn is_from(&self, head: &str, base: &str) -> bool {
        self.source_branch == head
            && self.target_branch == base
            && self.source_project_id == self.target_project_id
    }

    fn into_pull_request(self) -> Result<PullRequest, String> {
        let state = match self.state.as_str() {
            "opened" | "locked" => PullRequestState::Open,
            "merged" => PullRequestState::Merged,
            "closed" => PullRequestState::Closed,
            other => return Err(format!("unknown merge request state {other:?}")),
        };
        let head_sha = non_empty(self.sha);
        // A fast-forward merge without squash leaves the head itself on the target branch.
        let merge_commit = (state == PullRequestState::Merged).then(|| {
            non_empty(self.merge_commit_sha)
                .or(non_empty(self.squash_commit_sha))
                .or(head_sha.clone())
        });
        Ok(PullRequest {
            number: self.iid,
            url: self.web_url,
            state,
            head: self.source_branch,
            base: self.target_branch,
            head_sha,
            merge_commit: merge_commit.flatten(),
            title: self.title,
            body: self.description.unwrap_or_default(),
        })
    }
}

#[derive(Deserialize)]
struct Status {
    id: u64,
    status: String,
    #[serde(default)]
    name: String,
    description: Option<String>,
    target_url: Option<String>,
}

fn project_path(repo: &Repo) -> String {
    format!(
        "/projects/{}",
        encode(&format!("{}/{}", repo.owner, repo.name))
    )
}

fn merge_request_path(repo: &Repo, number: u64) -> String {
    format!("{}/merge_requests/{number}", project_path(repo))
}

impl Dialect for GitLab {
    fn auth_header(&self, token: &str) -> (&'static str, String) {
        ("private-token", token.to_string())
    }

    fn headers(&self) -> &'static [(&'static str, &'static str)] {
        &[("accept", "application/json")]
    }

    fn list_pull_requests(&self, repo: &Repo, head: &str, base: &str, page: u32) -> (Call, usize) {
        let call = Call::get(format!("{}/merge_requests", project_path(repo)))
            .query("source_branch", head)
            .query("target_branch", base)
            .query("state", "all")
            .query("order_by", "created_at")
            .query("sort", "desc")
            .query("per_page", PAGE_SIZE)
            .query("page", page);
        (call, PAGE_SIZE)
    }

    fn pick_pull_request(&self, body: &[u8], head: &str, base: &str) -> Result<Listing, String> {
        let requests: Vec<MergeRequest> = read(body, "merge request list")?;
        let entries = requests.len();
        let found = requests.into_iter().find(|m| m.is_from(head, base));
        Ok(Listing {
            found: found.map(MergeRequest::into_pull_request).transpose()?,
            entries,
        })
    }

    fn get_pull_request(&self, repo: &Repo, number: u64) -> Call {
        Call::get(merge_request_path(repo, number))
    }

    fn parse_pull_request(&self, body: &[u8]) -> Result<PullRequest, String> {
        read::<MergeRequest>(body, "merge request")?.into_pull_request()
    }

    fn create_pull_request(&self, repo: &Repo, new: &NewPullRequest, _label_ids: &[u64]) -> Call {
        let mut body = json!({
            "source_branch": new.head,
            "target_branch": new.base,
            "title": new.title,
            "description": new.body,
        });
        if !new.labels.is_empty() {
            body["labels"] = json!(new.labels.join(","));
        }
        let path = format!("{}/merge_requests", project_path(repo));
        Call::send(Method::POST, path, body)
    }

    fn edit_pull_request(&self, repo: &Repo, number: u64, title: &str, body: &str) -> Call {
        let body = json!({"title": title, "description": body});
        Call::send(Method::PUT, merge_request_path(repo, number), body)
    }

    fn close_pull_request(&self, repo: &Repo, number: u64) -> Call {
        let body = json!({"state_event": "close"});
        Call::send(Method::PUT, merge_request_path(repo, number), body)
    }

    fn comment(&self, repo: &Repo, number: u64, body: &str) -> Call {
        let path = format!("{}/notes", merge_request_path(repo, number));
        Call::send(Method::POST, path, json!({"body": body}))
    }

    fn merge_pull_request(&self, repo: &Repo, number: u64) -> Call {
        let path = format!("{}/merge", merge_request_path(repo, number));
        Call::send(Method::PUT, path, json!({}))
    }

    fn set_commit_status(&self, repo: &Repo, sha: &str, status: &CommitStatus) -> Call {
        let state = match status.state {
            StatusState::Pending => "pending",
            StatusState::Success => "success",
            StatusState::Failure | StatusState::Error => "failed",
        };
        let mut body = json!({
            "state": state,
            "name": status.context,
            "description": description(status),
        });
        if let Some(url) = &status.target_url {
            body["target_url"] = json!(url);
        }
        let path = format!("{}/statuses/{}", project_path(repo), encode(sha));
        Call::send(Method::POST, path, body)
    }

    fn list_commit_statuses(&self, repo: &Repo, sha: &str) -> Call {
        let path = format!(
            "{}/repository/commits/{}/statuses",
            project_path(repo),
            encode(sha)
        );
        Call::get(path).query("all", "true").query("per_page", 100)
    }

    fn parse_commit_statuses(&self, body: &[u8]) -> Result<Vec<CommitStatus>, String> {
        let statuses: Vec<Status> = read(body, "commit status list")?;
        let statuses = statuses.into_iter().map(|s| {
            let state = match s.status.as_str() {
                "success" | "skipped" => StatusState::Success,
                "failed" => StatusState::Failure,
                "canceled" | "canceling" => StatusState::Error,
                // pending, running, created, preparing, scheduled, manual, waiting_for_resource…
                _ => StatusState::Pending,
            };
            let status = CommitStatus {
                state,
                context: s.name,
                description: s.description.unwrap_or_default(),
                target_url: non_empty(s.target_url),
            };
            (s.id, status)
        });
        Ok(newest_first(statuses.collect()))
    }

    fn status_already_set(&self, status: u16, message: &str) -> bool {
        status == 400 && message.contains("Cannot transition status via :enqueue from")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MERGE_REQUESTS: &str = include_str!("testdata/gitlab-merge-requests.json");
    const OPEN: &str = include_str!("testdata/gitlab-merge-request-open.json");
    const STATUSES: &str = include_str!("testdata/gitlab-statuses.json");

    fn repo() -> Repo {
        Repo {
            owner: "group/sub".into(),
            name: "app".into(),
        }
    }

    #[test]
    fn projects_are_named_by_their_encoded_path() {
        let (call, _) = GitLab.list_pull_requests(&repo(), "sluice/update", "main", 1);
        assert_eq!(call.path, "/projects/group%2Fsub%2Fapp/merge_requests");
        for (k, v) in [
            ("source_branch", "sluice/update"),
            ("target_branch", "main"),
            ("state", "all"),
            ("order_by", "created_at"),
            ("sort", "desc"),
        ] {
            assert!(call.query.contains(&(k, v.to_string())), "{call:?}");
        }
        let note = GitLab.comment(&repo(), 7, "hi");
        assert_eq!(
            note.path,
            "/projects/group%2Fsub%2Fapp/merge_requests/7/notes"
        );
        let close = GitLab.close_pull_request(&repo(), 7);
        assert_eq!(
            (close.method, close.body),
            (Method::PUT, Some(json!({"state_event": "close"})))
        );
        let merge = GitLab.merge_pull_request(&repo(), 7);
        assert_eq!(
            merge.path,
            "/projects/group%2Fsub%2Fapp/merge_requests/7/merge"
        );
        assert_eq!(
            GitLab.auth_header("glpat-x"),
            ("private-token", "glpat-x".to_string())
        );
    }

    #[test]
    fn reads_merge_requests() {
        let listing = GitLab
            .pick_pull_request(MERGE_REQUESTS.as_bytes(), "sluice/rollback/e82eb4a", "main")
            .unwrap();
        assert_eq!(listing.entries, 2);
        let merged = listing.found.unwrap();
        assert_eq!(
            (merged.number, merged.state),
            (134, PullRequestState::Merged)
        );
        assert_eq!(
            merged.url,
            "https://gitlab.com/marcel.amirault/test-project/-/merge_requests/134"
        );
        assert_eq!(
            merged.merge_commit.as_deref(),
            Some("4b1d2c3e5f60718293a4b5c6d7e8f90123456789")
        );
        assert_eq!(merged.body, "");
        let open = GitLab.parse_pull_request(OPEN.as_bytes()).unwrap();
        assert_eq!((open.number, open.state), (135, PullRequestState::Open));
        assert_eq!(
            (open.head.as_str(), open.base.as_str()),
            ("sluice/update", "main")
        );
        assert_eq!(open.merge_commit, None);
        let requests: Vec<serde_json::Value> = serde_json::from_str(MERGE_REQUESTS).unwrap();
        let closed = serde_json::to_vec(&requests[1]).unwrap();
        let closed = GitLab.parse_pull_request(&closed).unwrap();
        assert_eq!(
            (closed.state, closed.body.as_str()),
            (PullRequestState::Closed, "The rollout failed.")
        );
    }

    #[test]
    fn a_fast_forward_merge_is_its_head() {
        let mut mr: serde_json::Value = serde_json::from_str(OPEN).unwrap();
        mr["state"] = json!("merged");
        let pr = GitLab
            .parse_pull_request(&serde_json::to_vec(&mr).unwrap())
            .unwrap();
        assert_eq!(pr.merge_commit, pr.head_sha);
        assert!(pr.merge_commit.is_some());
    }

    #[test]
    fn labels_go_with_the_creation() {
        let new = NewPullRequest {
            head: "sluice/update".into(),
            base: "main".into(),
            title: "Update".into(),
            body: "why".into(),
            labels: vec!["sluice".into(), "automated".into()],
        };
        let call = GitLab.create_pull_request(&repo(), &new, &[]);
        let expected = json!({
            "source_branch": "sluice/update",
            "target_branch": "main",
            "title": "Update",
            "description": "why",
            "labels": "sluice,automated",
        });
        assert_eq!(call.body, Some(expected));
        assert!(GitLab.label_pull_request(&repo(), 1, &new.labels).is_none());
    }

    #[test]
    fn statuses() {
        let statuses = GitLab.parse_commit_statuses(STATUSES.as_bytes()).unwrap();
        let seen: Vec<_> = statuses
            .iter()
            .map(|s| (s.context.as_str(), s.state))
            .collect();
        let expected = [
            ("sluice/health", StatusState::Failure),
            ("bundler:audit", StatusState::Pending),
            ("sluice/health", StatusState::Pending),
        ];
        assert_eq!(seen, expected);
        let error = CommitStatus {
            state: StatusState::Error,
            context: "sluice/health".into(),
            description: "apply failed".into(),
            target_url: None,
        };
        let call = GitLab.set_commit_status(&repo(), "18f3e63", &error);
        assert_eq!(call.path, "/projects/group%2Fsub%2Fapp/statuses/18f3e63");
        let expected =
            json!({"state": "failed", "name": "sluice/health", "description": "apply failed"});
        assert_eq!(call.body, Some(expected));
        let list = GitLab.list_commit_statuses(&repo(), "18f3e63");
        assert_eq!(
            list.path,
            "/projects/group%2Fsub%2Fapp/repository/commits/18f3e63/statuses"
        );
        let refused = "Cannot transition status via :enqueue from :pending (Reason(s): Status cannot transition via \"enqueue\")";
        assert!(GitLab.status_already_set(400, refused));
        assert!(!GitLab.status_already_set(400, "sha: is missing"));
    }
}
