//! Gitea's API (`/api/v1`, checked against Gitea 1.27's routes and JSON).
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

use super::dialect::{
    Call, Dialect, Listing, description, encode, encode_branch, newest_first, non_empty, read,
    repos_path,
};
use super::{CommitStatus, NewPullRequest, PullRequest, PullRequestState, Repo, StatusState};

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

#[derive(Deserialize)]
struct Pull {
    number: u64,
    html_url: String,
    state: String,
    #[serde(default)]
    merged: bool,
    merged_at: Option<String>,
    merge_commit_sha: Option<String>,
    #[serde(default)]
    title: String,
    body: Option<String>,
    head: Branch,
    base: Branch,
}

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

impl Branch {
    fn name(&self) -> &str {
        if self.label.is_empty() {
            &self.reference
        } else {
            &self.label
        }
    }
}

impl Pull {
    fn is_from(&self, head: &str, base: &str) -> bool {
        self.head.name() == head
            && self.base.reference == base
            && self.head.repo_id == self.base.repo_id
    }

    fn into_pull_request(self) -> Result<PullRequest, String> {
        let merged = self.merged || self.merged_at.is_some();
        let state = match self.state.as_str() {
            _ if merged => PullRequestState::Merged,
            "open" => PullRequestState::Open,
            "closed" => PullRequestState::Closed,
            other => return Err(format!("unknown pull request state {other:?}")),
        };
        Ok(PullRequest {
            number: self.number,
            url: self.html_url,
            state,
            head: self.head.name().to_string(),
            base: self.base.reference,
            head_sha: non_empty(self.head.sha),
            merge_commit: non_empty(self.merge_commit_sha).filter(|_| merged),
            title: self.title,
            body: self.body.unwrap_or_default(),
        })
    }
}

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

fn pulls_path(repo: &Repo) -> String {
    format!("{}/pulls", repos_path(repo))
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
        let pulls: Vec<Pull> = read(body, "pull request list")?;
        let entries = pulls.len();
        let found = pulls.into_iter().find(|p| p.is_from(head, base));
        Ok(Listing {
            found: found.map(Pull::into_pull_request).transpose()?,
            entries,
        })
    }

    fn get_pull_request(&self, repo: &Repo, number: u64) -> Call {
        Call::get(format!("{}/{number}", pulls_path(repo)))
    }

    fn parse_pull_request(&self, body: &[u8]) -> Result<PullRequest, String> {
        read::<Pull>(body, "pull request")?.into_pull_request()
    }

    fn create_pull_request(&self, repo: &Repo, new: &NewPullRequest, label_ids: &[u64]) -> Call {
        let mut body = json!({
            "head": new.head,
            "base": new.base,
            "title": new.title,
            "body": new.body,
        });
        if !label_ids.is_empty() {
            body["labels"] = json!(label_ids);
        }
        Call::send(Method::POST, pulls_path(repo), body)
    }

    fn edit_pull_request(&self, repo: &Repo, number: u64, title: &str, body: &str) -> Call {
        let path = format!("{}/{number}", pulls_path(repo));
        Call::send(Method::PATCH, path, json!({"title": title, "body": body}))
    }

    fn close_pull_request(&self, repo: &Repo, number: u64) -> Call {
        let path = format!("{}/{number}", pulls_path(repo));
        Call::send(Method::PATCH, path, json!({"state": "closed"}))
    }

    fn comment(&self, repo: &Repo, number: u64, body: &str) -> Call {
        let path = format!("{}/issues/{number}/comments", repos_path(repo));
        Call::send(Method::POST, path, json!({"body": body}))
    }

    fn merge_pull_request(&self, repo: &Repo, number: u64) -> Call {
        // `Do` is what every Gitea version reads (newer ones also read `do`).
        let path = format!("{}/{number}/merge", pulls_path(repo));
        Call::send(Method::POST, path, json!({"Do": "merge"}))
    }

    fn set_commit_status(&self, repo: &Repo, sha: &str, status: &CommitStatus) -> Call {
        let mut body = json!({
            "state": status.state.as_str(),
            "context": status.context,
            "description": description(status),
        });
        if let Some(url) = &status.target_url {
            body["target_url"] = json!(url);
        }
        let path = format!("{}/statuses/{}", repos_path(repo), encode(sha));
        Call::send(Method::POST, path, body)
    }

    fn list_commit_statuses(&self, repo: &Repo, sha: &str) -> Call {
        Call::get(format!(
            "{}/commits/{}/statuses",
            repos_path(repo),
            encode(sha)
        ))
        .query("limit", PAGE_SIZE)
    }

    fn parse_commit_statuses(&self, body: &[u8]) -> Result<Vec<CommitStatus>, String> {
        let statuses: Vec<Status> = read(body, "commit status list")?;
        let statuses = statuses.into_iter().map(|s| {
            let state = match s.status.as_str() {
                "pending" => StatusState::Pending,
                "success" | "skipped" => StatusState::Success,
                "failure" | "warning" => StatusState::Failure,
                _ => StatusState::Error,
            };
            let status = CommitStatus {
                state,
                context: s.context,
                description: s.description.unwrap_or_default(),
                target_url: non_empty(s.target_url),
            };
            (s.id, status)
        });
        Ok(newest_first(statuses.collect()))
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
