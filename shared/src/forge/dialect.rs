//! What differs between the forges' APIs, as pure functions: the request for each operation
//! ([`Call`]) and the reading of each answer. [`super::Forge`] sends the calls; each provider's
//! file implements [`Dialect`] and knows nothing of HTTP clients.

use reqwest::Method;
use serde_json::Value;

use super::error::truncate;
use super::model::STATUS_DESCRIPTION_LIMIT;
use super::{CommitStatus, NewPullRequest, PullRequest, Repo};

/// One request, relative to the API base.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Call {
    pub method: Method,
    /// Starts with `/`; segments already percent-encoded.
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<Value>,
}

impl Call {
    pub fn get(path: String) -> Call {
        Call {
            method: Method::GET,
            path,
            query: Vec::new(),
            body: None,
        }
    }

    pub fn send(method: Method, path: String, body: Value) -> Call {
        Call {
            method,
            path,
            query: Vec::new(),
            body: Some(body),
        }
    }

    pub fn query(mut self, key: &'static str, value: impl ToString) -> Call {
        self.query.push((key, value.to_string()));
        self
    }
}

/// One page of a pull request listing: the newest pull request from the head into the base,
/// if the page has one, and how many entries the page had.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Listing {
    pub found: Option<PullRequest>,
    pub entries: usize,
}

/// A forge's paths and JSON shapes. Parsers return a reason for what they cannot read.
pub(super) trait Dialect: Send + Sync {
    /// The header that carries the token, and its value.
    fn auth_header(&self, token: &str) -> (&'static str, String);
    /// Headers every request carries (besides the token and the User-Agent).
    fn headers(&self) -> &'static [(&'static str, &'static str)];
    /// A cheap request that answers 404 when no pull request from `head` into `base` ever
    /// existed (Gitea), so that a listing need not be read to the end to know it.
    fn probe_pull_request(&self, _repo: &Repo, _head: &str, _base: &str) -> Option<Call> {
        None
    }
    /// Page `page` (from 1) of the pull requests into `base`, newest first (filtered on `head`
    /// where the API can), and the page size asked for.
    fn list_pull_requests(&self, repo: &Repo, head: &str, base: &str, page: u32) -> (Call, usize);
    /// The newest pull request of a listing page that is from `head` into `base`.
    fn pick_pull_request(&self, body: &[u8], head: &str, base: &str) -> Result<Listing, String>;
    fn get_pull_request(&self, repo: &Repo, number: u64) -> Call;
    fn parse_pull_request(&self, body: &[u8]) -> Result<PullRequest, String>;
    /// The creating request. `label_ids`: Gitea's ids of `new.labels`; the others use names.
    fn create_pull_request(&self, repo: &Repo, new: &NewPullRequest, label_ids: &[u64]) -> Call;
    /// A request that labels a pull request after its creation, where creation cannot (GitHub).
    fn label_pull_request(&self, _repo: &Repo, _number: u64, _labels: &[String]) -> Option<Call> {
        None
    }
    fn edit_pull_request(&self, repo: &Repo, number: u64, title: &str, body: &str) -> Call;
    fn close_pull_request(&self, repo: &Repo, number: u64) -> Call;
    fn comment(&self, repo: &Repo, number: u64, body: &str) -> Call;
    /// A merge with a merge commit (where the API lets the caller choose).
    fn merge_pull_request(&self, repo: &Repo, number: u64) -> Call;
    fn set_commit_status(&self, repo: &Repo, sha: &str, status: &CommitStatus) -> Call;
    fn list_commit_statuses(&self, repo: &Repo, sha: &str) -> Call;
    /// The statuses of a listing, newest first.
    fn parse_commit_statuses(&self, body: &[u8]) -> Result<Vec<CommitStatus>, String>;
    /// Whether a refused status update means the status is already in that state (GitLab
    /// refuses a transition from a state to itself).
    fn status_already_set(&self, _status: u16, _message: &str) -> bool {
        false
    }
}

/// Percent-encodes one path segment: everything but RFC 3986's unreserved characters.
pub(super) fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// A branch name as path segments (its `/`s kept, each segment encoded).
pub(super) fn encode_branch(branch: &str) -> String {
    branch.split('/').map(encode).collect::<Vec<_>>().join("/")
}

/// A status description as the forges accept it.
pub(super) fn description(status: &CommitStatus) -> String {
    truncate(&status.description, STATUS_DESCRIPTION_LIMIT)
}

/// Statuses with their ids, newest (highest id) first; a forge's own order is by creation
/// time to the second, which leaves ties in any order.
pub(super) fn newest_first(mut statuses: Vec<(u64, CommitStatus)>) -> Vec<CommitStatus> {
    statuses.sort_by_key(|(id, _)| std::cmp::Reverse(*id));
    statuses.into_iter().map(|(_, s)| s).collect()
}

/// `Some(text)` unless empty.
pub(super) fn non_empty(text: Option<String>) -> Option<String> {
    text.filter(|t| !t.is_empty())
}

/// Reads JSON, naming what was expected when it does not fit.
pub(super) fn read<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("not a {what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forge::StatusState;

    #[test]
    fn encodes_path_segments() {
        assert_eq!(encode("team-1.config_x~"), "team-1.config_x~");
        assert_eq!(encode("group/sub/app"), "group%2Fsub%2Fapp");
        assert_eq!(encode("a b#?%é"), "a%20b%23%3F%25%C3%A9");
        assert_eq!(
            encode_branch("sluice/rollback/a b"),
            "sluice/rollback/a%20b"
        );
    }

    #[test]
    fn descriptions_are_cut_to_140_characters() {
        let status = CommitStatus {
            state: StatusState::Failure,
            context: "sluice".into(),
            description: "ü".repeat(200),
            target_url: None,
        };
        let cut = description(&status);
        assert_eq!(cut.chars().count(), 140);
        assert!(cut.ends_with('…'));
    }
}
