//! Gitea's API (`/api/v1`, checked against Gitea 1.27's routes and JSON): GitHub's, copied, so
//! the calls and shapes it shares with GitHub are in `github_shaped.rs` and here is what differs.
//!
//! Finding the newest pull request of a branch: `GET pulls/{base}/{head}` finds closed and
//! merged ones too, but returns the *oldest* when there are several (no ORDER BY), so it only
//! serves as a probe: 404 means none ever existed, and an open one is the only open one. The
//! listing `GET pulls?state=all&base_branch=` without `sort` is newest first (created, then
//! id, descending); it is filtered here on the head branch. A merged pull request whose branch
//! was deleted reports `head.ref` as `refs/pull/N/head`; `head.label` keeps the branch name.

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::dialect::{Call, Dialect, Listing, encode, encode_branch, read};
use super::github_shaped::{self, pulls_path, repos_path};
use super::{CommitStatus, NewPullRequest, PullRequest, Repo, StatusState};

/// Gitea's default `MAX_RESPONSE_ITEMS`.
const PAGE_SIZE: usize = 50;
/// The color of labels created for a pull request.
pub(super) const LABEL_COLOR: &str = "#e11d21";
/// Words routed under `pulls/{index}/`: a probe path must not look like one of those routes.
const ROUTED: &[&str] = &[
    "files",
    "commits",
    "merge",
    "update",
    "reviews",
    "requested_reviewers",
    "comments",
];

pub(super) struct Gitea;

/// Gitea's pull request: GitHub's, with `merged` always sent.
type Pull = github_shaped::Pull<Branch, bool>;

#[derive(Deserialize)]
struct Branch {
    /// The branch name (empty for AGit pull requests).
    #[serde(default)]
    label: String,
    /// The branch name, or `refs/pull/N/head` once the branch is gone.
    #[serde(rename = "ref", default)]
    reference: String,
    sha: Option<String>,
    #[serde(default)]
    repo_id: i64,
}

impl github_shaped::Branch for Branch {
    fn reference(&self) -> &str {
        &self.reference
    }

    /// `label`, which keeps the name once the branch is gone; `ref` where it is empty.
    fn name(&self) -> &str {
        if self.label.is_empty() {
            &self.reference
        } else {
            &self.label
        }
    }

    fn sha(&self) -> Option<&str> {
        self.sha.as_deref()
    }

    fn same_repo(&self, other: &Self) -> bool {
        self.repo_id == other.repo_id
    }
}

/// Gitea's commit status: GitHub's, with the state in `status`.
#[derive(Deserialize)]
struct Status {
    id: u64,
    status: String,
    #[serde(default)]
    context: String,
    description: Option<String>,
    target_url: Option<String>,
}

#[derive(Deserialize)]
struct Label {
    id: u64,
    name: String,
}

impl Dialect for Gitea {
    fn auth_header(&self, token: &str) -> (&'static str, String) {
        ("authorization", format!("token {token}"))
    }

    fn headers(&self) -> &'static [(&'static str, &'static str)] {
        &[("accept", "application/json")]
    }

    fn probe_pull_request(&self, repo: &Repo, head: &str, base: &str) -> Option<Call> {
        let first = head.split('/').next().unwrap_or_default();
        let clashes =
            base.contains('/') || ["pinned", "comments"].contains(&base) || ROUTED.contains(&first);
        (!clashes && !head.is_empty() && !base.is_empty()).then(|| {
            let path = format!(
                "{}/{}/{}",
                pulls_path(repo),
                encode(base),
                encode_branch(head)
            );
            Call::get(path)
        })
    }

    fn list_pull_requests(&self, repo: &Repo, _head: &str, base: &str, page: u32) -> (Call, usize) {
        let call = Call::get(pulls_path(repo))
            .query("state", "all")
            .query("base_branch", base)
            .query("limit", PAGE_SIZE)
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

    fn create_pull_request(&self, repo: &Repo, new: &NewPullRequest, label_ids: &[u64]) -> Call {
        let mut body = github_shaped::new_pull_request_body(new);
        if !label_ids.is_empty() {
            body["labels"] = json!(label_ids);
        }
        Call::send(Method::POST, pulls_path(repo), body)
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
        // `Do` is what every Gitea version reads (newer ones also read `do`).
        let path = github_shaped::merge_path(repo, number);
        Call::send(Method::POST, path, json!({"Do": "merge"}))
    }

    fn set_commit_status(&self, repo: &Repo, sha: &str, status: &CommitStatus) -> Call {
        github_shaped::set_commit_status(repo, sha, status)
    }

    fn list_commit_statuses(&self, repo: &Repo, sha: &str) -> Call {
        github_shaped::list_commit_statuses(repo, sha).query("limit", PAGE_SIZE)
    }

    fn parse_commit_statuses(&self, body: &[u8]) -> Result<Vec<CommitStatus>, String> {
        github_shaped::parse_commit_statuses(body, |s: Status| {
            let state = match s.status.as_str() {
                "pending" => StatusState::Pending,
                "success" | "skipped" => StatusState::Success,
                "failure" | "warning" => StatusState::Failure,
                _ => StatusState::Error,
            };
            github_shaped::commit_status(s.id, state, s.context, s.description, s.target_url)
        })
    }
}

/// Page `page` of the repository's labels, and the page size asked for.
pub(super) fn list_labels(repo: &Repo, page: u32) -> (Call, usize) {
    let call = Call::get(format!("{}/labels", repos_path(repo)))
        .query("limit", PAGE_SIZE)
        .query("page", page);
    (call, PAGE_SIZE)
}

/// `(id, name)` of each label of a page.
pub(super) fn parse_labels(body: &[u8]) -> Result<Vec<(u64, String)>, String> {
    let labels: Vec<Label> = read(body, "label list")?;
    Ok(labels.into_iter().map(|l| (l.id, l.name)).collect())
}

pub(super) fn create_label(repo: &Repo, name: &str) -> Call {
    let body = json!({"name": name, "color": LABEL_COLOR});
    Call::send(Method::POST, format!("{}/labels", repos_path(repo)), body)
}

/// The id of a created label.
pub(super) fn parse_label(body: &[u8]) -> Result<u64, String> {
    Ok(read::<Label>(body, "label")?.id)
}

#[cfg(test)]
#[path = "gitea_tests.rs"]
mod tests;
