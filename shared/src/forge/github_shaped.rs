//! The calls and shapes Gitea shares with GitHub. Gitea copied GitHub's REST API: the paths under
//! `/repos/{owner}/{name}`, editing, closing and commenting on a pull request, setting and
//! listing commit statuses, and a pull request's JSON are the same on both, so `gitea.rs` and
//! `github.rs` build and read them here.
//!
//! What differs stays in those files: the token's header and the other headers, the listing
//! (its query, paging and page size, Gitea's probe), labels, the merge request's method and
//! body, the page size of a status listing, a branch's shape ([`Branch`]: how a head branch is
//! named, how its repository is told), whether `merged` is always sent, and a status's shape
//! (Gitea calls its state `status`, with words of its own).

use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::dialect::{Call, Listing, description, encode, newest_first, non_empty, read};
use super::{CommitStatus, NewPullRequest, PullRequest, PullRequestState, Repo, StatusState};

/// `/repos/{owner}/{name}`, the prefix of every repository path.
pub(super) fn repos_path(repo: &Repo) -> String {
    format!("/repos/{}/{}", encode(&repo.owner), encode(&repo.name))
}

/// The pull requests of a repository: their listing, and where one is created.
pub(super) fn pulls_path(repo: &Repo) -> String {
    format!("{}/pulls", repos_path(repo))
}

/// The pull request `number`.
pub(super) fn pull_path(repo: &Repo, number: u64) -> String {
    format!("{}/{number}", pulls_path(repo))
}

/// Where the pull request `number` is merged (the method and body are each forge's own).
pub(super) fn merge_path(repo: &Repo, number: u64) -> String {
    format!("{}/merge", pull_path(repo, number))
}

pub(super) fn get_pull_request(repo: &Repo, number: u64) -> Call {
    Call::get(pull_path(repo, number))
}

/// The body of the creating request (`POST` to [`pulls_path`]), without labels: Gitea adds
/// their ids to it, GitHub labels the pull request afterwards.
pub(super) fn new_pull_request_body(new: &NewPullRequest) -> Value {
    json!({
        "head": new.head,
        "base": new.base,
        "title": new.title,
        "body": new.body,
    })
}

pub(super) fn edit_pull_request(repo: &Repo, number: u64, title: &str, body: &str) -> Call {
    let path = pull_path(repo, number);
    Call::send(Method::PATCH, path, json!({"title": title, "body": body}))
}

pub(super) fn close_pull_request(repo: &Repo, number: u64) -> Call {
    let path = pull_path(repo, number);
    Call::send(Method::PATCH, path, json!({"state": "closed"}))
}

/// A comment on the pull request `number` (a pull request is an issue to both).
pub(super) fn comment(repo: &Repo, number: u64, body: &str) -> Call {
    let path = format!("{}/issues/{number}/comments", repos_path(repo));
    Call::send(Method::POST, path, json!({"body": body}))
}

pub(super) fn set_commit_status(repo: &Repo, sha: &str, status: &CommitStatus) -> Call {
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

/// The listing of a commit's statuses, without its page size (`limit` on Gitea, `per_page` on
/// GitHub).
pub(super) fn list_commit_statuses(repo: &Repo, sha: &str) -> Call {
    Call::get(format!(
        "{}/commits/{}/statuses",
        repos_path(repo),
        encode(sha)
    ))
}

/// The statuses of a listing, newest first: each entry read as `S`, the forge's shape of it, and
/// taken apart by `entry` into its id and status (see [`commit_status`]).
pub(super) fn parse_commit_statuses<S: DeserializeOwned>(
    body: &[u8],
    entry: impl Fn(S) -> (u64, CommitStatus),
) -> Result<Vec<CommitStatus>, String> {
    let statuses: Vec<S> = read(body, "commit status list")?;
    Ok(newest_first(statuses.into_iter().map(entry).collect()))
}

/// A status of a listing with its id, from the fields both forges name alike.
pub(super) fn commit_status(
    id: u64,
    state: StatusState,
    context: String,
    description: Option<String>,
    target_url: Option<String>,
) -> (u64, CommitStatus) {
    let status = CommitStatus {
        state,
        context,
        description: description.unwrap_or_default(),
        target_url: non_empty(target_url),
    };
    (id, status)
}

/// A forge's shape of a pull request's `head` and `base`.
pub(super) trait Branch {
    /// `ref`: the branch's name.
    fn reference(&self) -> &str;
    /// The name a head branch is matched on and reported with: `ref` unless the forge has a
    /// better one.
    fn name(&self) -> &str {
        self.reference()
    }
    /// The commit the branch was at.
    fn sha(&self) -> Option<&str>;
    /// Whether both branches are of one repository (a pull request from a fork is not one
    /// from the branch asked for).
    fn same_repo(&self, other: &Self) -> bool;
}

/// A pull request as both forges write it. `B`: the forge's [`Branch`]; `M`: its `merged`, a
/// `bool` where the forge always sends it, an `Option<bool>` where it may not (missing reads as
/// false either way; `merged_at` tells a merge too).
#[derive(Deserialize)]
pub(super) struct Pull<B, M> {
    number: u64,
    html_url: String,
    state: String,
    #[serde(default)]
    merged: M,
    merged_at: Option<String>,
    merge_commit_sha: Option<String>,
    #[serde(default)]
    title: String,
    body: Option<String>,
    head: B,
    base: B,
}

impl<B, M> Pull<B, M>
where
    B: Branch + DeserializeOwned,
    M: Into<Option<bool>> + Default + DeserializeOwned,
{
    /// The newest pull request of a listing page that is from `head` into `base` (the page
    /// being newest first).
    pub(super) fn pick(body: &[u8], head: &str, base: &str) -> Result<Listing, String> {
        let pulls: Vec<Self> = read(body, "pull request list")?;
        let entries = pulls.len();
        let found = pulls.into_iter().find(|p| p.is_from(head, base));
        Ok(Listing {
            found: found.map(Self::into_pull_request).transpose()?,
            entries,
        })
    }

    pub(super) fn parse(body: &[u8]) -> Result<PullRequest, String> {
        read::<Self>(body, "pull request")?.into_pull_request()
    }

    fn is_from(&self, head: &str, base: &str) -> bool {
        self.head.name() == head && self.base.reference() == base && self.head.same_repo(&self.base)
    }

    fn into_pull_request(self) -> Result<PullRequest, String> {
        let merged = self.merged.into().unwrap_or(false) || self.merged_at.is_some();
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
            base: self.base.reference().to_string(),
            head_sha: non_empty(self.head.sha().map(str::to_string)),
            // GitHub's is a test merge until the merge.
            merge_commit: non_empty(self.merge_commit_sha).filter(|_| merged),
            title: self.title,
            body: self.body.unwrap_or_default(),
        })
    }
}
