//! The forge's objects as Sluice sees them, the same for every provider.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The longest commit status description GitHub accepts; used for every provider.
pub const STATUS_DESCRIPTION_LIMIT: usize = 140;

/// An API token. It only ever goes into a request header (marked sensitive); its `Debug` hides
/// it, and it has no `Display`.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// Surrounding whitespace (the newline of a Secret written with `echo`) is dropped.
    pub fn new(token: impl Into<String>) -> Token {
        let token = token.into();
        Token(token.trim().to_string())
    }

    /// The token in the `data` of a Kubernetes Secret: key `token`, else (with `password_too`,
    /// for a git credentials Secret, where a forge's token is also the git password) key
    /// `password`. None when the key is missing, empty or not UTF-8.
    pub fn from_secret_data(data: &BTreeMap<String, Vec<u8>>, password_too: bool) -> Option<Token> {
        let keys: &[&str] = if password_too {
            &["token", "password"]
        } else {
            &["token"]
        };
        keys.iter()
            .filter_map(|key| data.get(*key))
            .filter_map(|value| std::str::from_utf8(value).ok())
            .map(Token::new)
            .find(|token| !token.0.is_empty())
    }

    pub(super) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

/// A pull request to open.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewPullRequest {
    /// The branch with the changes, in the same repository.
    pub head: String,
    /// The branch to merge into.
    pub base: String,
    pub title: String,
    pub body: String,
    /// Label names; missing labels are created (Gitea, GitHub, GitLab alike).
    pub labels: Vec<String>,
}

/// A pull request (GitLab: merge request; `number` is its `iid`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullRequest {
    pub number: u64,
    /// The page for people.
    pub url: String,
    pub state: PullRequestState,
    /// The head branch's name (also once the branch is deleted).
    pub head: String,
    pub base: String,
    /// The head commit, when the forge knows it.
    pub head_sha: Option<String>,
    /// The commit the merge made on the base branch (merge, squash or the rebased head); only
    /// for a merged pull request.
    pub merge_commit: Option<String>,
    pub title: String,
    pub body: String,
}

/// A pull request as a resource's status records it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestStatus {
    /// The number (GitLab: the merge request's iid).
    pub number: u64,
    /// Its page on the forge.
    pub url: String,
    /// `open`, `merged` or `closed` (without merge).
    pub state: String,
}

impl PullRequestStatus {
    pub fn of(pr: &PullRequest) -> PullRequestStatus {
        PullRequestStatus {
            number: pr.number,
            url: pr.url.clone(),
            state: pr.state.to_string(),
        }
    }
}

/// Where a pull request is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PullRequestState {
    Open,
    Merged,
    /// Closed without a merge.
    Closed,
}

impl PullRequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            PullRequestState::Open => "open",
            PullRequestState::Merged => "merged",
            PullRequestState::Closed => "closed",
        }
    }
}

impl fmt::Display for PullRequestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A commit status (a check) on a commit, identified by its `context` (GitLab: `name`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitStatus {
    pub state: StatusState,
    pub context: String,
    /// Cut to 140 characters when set.
    pub description: String,
    pub target_url: Option<String>,
}

/// The state of a commit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatusState {
    Pending,
    Success,
    Failure,
    Error,
}

impl StatusState {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusState::Pending => "pending",
            StatusState::Success => "success",
            StatusState::Failure => "failure",
            StatusState::Error => "error",
        }
    }
}

impl fmt::Display for StatusState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_never_shows() {
        let token = Token::new("  ghp_s3cret\n");
        assert_eq!(token.expose(), "ghp_s3cret");
        assert_eq!(format!("{token:?}"), "Token(***)");
        assert_eq!(format!("{:?}", Some(token)), "Some(Token(***))");
    }

    #[test]
    fn a_token_from_a_secret() {
        let data = |pairs: &[(&str, &str)]| -> BTreeMap<String, Vec<u8>> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect()
        };
        let both = data(&[("token", "t0k\n"), ("password", "pw")]);
        assert_eq!(
            Token::from_secret_data(&both, true).unwrap().expose(),
            "t0k"
        );
        let password = data(&[("username", "git"), ("password", "pw")]);
        assert_eq!(
            Token::from_secret_data(&password, true).unwrap().expose(),
            "pw"
        );
        assert!(Token::from_secret_data(&password, false).is_none());
        let empty = data(&[("token", " \n"), ("password", "pw")]);
        assert_eq!(
            Token::from_secret_data(&empty, true).unwrap().expose(),
            "pw"
        );
        assert!(Token::from_secret_data(&empty, false).is_none());
    }

    #[test]
    fn a_status_records_a_pull_request() {
        let pr = PullRequest {
            number: 7,
            url: "https://git.example.com/team/config/pulls/7".into(),
            state: PullRequestState::Merged,
            head: "sluice/update".into(),
            base: "main".into(),
            head_sha: None,
            merge_commit: None,
            title: String::new(),
            body: String::new(),
        };
        let status = PullRequestStatus::of(&pr);
        assert_eq!((status.number, status.state.as_str()), (7, "merged"));
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["url"], "https://git.example.com/team/config/pulls/7");
    }

    #[test]
    fn states_print_in_lower_case() {
        assert_eq!(PullRequestState::Merged.to_string(), "merged");
        assert_eq!(PullRequestState::Closed.to_string(), "closed");
        assert_eq!(StatusState::Failure.to_string(), "failure");
    }
}
