//! The forge client both daemons use. A forge here is the service that hosts the config
//! repository and its pull requests: Gitea, GitHub or GitLab. Sluice opens, updates, closes and
//! comments on pull requests there (the Config Updater's bumps, the Deploy Synchronizer's
//! rollback proposals), reads whether one was merged, and sets commit statuses.
//!
//! A [`Forge`] is made from the repository's git URL and a [`ForgeSpec`] (the CRD field): the
//! provider, API base and repository are derived from the URL unless the spec names them. Each
//! provider's paths and JSON shapes live in a file of their own (`gitea.rs`, `github.rs`,
//! `gitlab.rs`) as pure functions, those Gitea copied from GitHub once, in `github_shaped.rs`;
//! the operations here send what they build (`transport.rs`: the HTTP client, one request, the
//! mapping of failures) and hand the answers back to them.
//! Every failure is a [`ForgeError`] a person can act on.
//!
//! Why a thin reqwest client and not octocrab or a GitLab crate: Sluice needs about eight
//! endpoints per forge, one error mapping for all three forges, and no second HTTP stack with
//! its own TLS setup; the same reqwest the Config Updater already uses (rustls, with ring
//! installed as the process's provider) does it in a few hundred lines.
//!
//! The token goes only into a header marked sensitive (Gitea `Authorization: token …`, GitHub
//! `Authorization: Bearer …`, GitLab `PRIVATE-TOKEN`). Redirects are not followed: a redirect
//! could carry the token elsewhere (reqwest drops `Authorization` across hosts, not
//! `PRIVATE-TOKEN`), so it is reported with the address to use instead.

mod dialect;
mod error;
mod gitea;
mod github;
mod github_shaped;
mod gitlab;
mod model;
mod secret;
mod spec;
mod transport;

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use tracing::{debug, warn};

use dialect::{Call, Dialect};
pub use error::ForgeError;
pub use model::{
    CommitStatus, NewPullRequest, PullRequest, PullRequestState, PullRequestStatus,
    STATUS_DESCRIPTION_LIMIT, StatusState, Token,
};
pub use secret::read_token;
pub use spec::{ForgeSpec, Provider, Repo};
use transport::{auth_header, http_client, more_pages};

/// How many pages of a listing are read at most (1000 Gitea pull requests into one branch).
const MAX_PAGES: u32 = 20;

/// A client of one repository on one forge.
#[derive(Clone, Debug)]
pub struct Forge {
    provider: Provider,
    /// The API base, without a trailing `/`.
    api: String,
    repo: Repo,
    token: Option<Token>,
    auth: Option<(HeaderName, HeaderValue)>,
    timeout: Duration,
    http: reqwest::Client,
}

impl Forge {
    /// The client of the repository at `git_url` (https, http, ssh or scp-like). Each request
    /// may take `timeout` in all. Fails only on configuration: an unusable URL or token.
    pub fn new(
        git_url: &str,
        spec: &ForgeSpec,
        token: Option<Token>,
        timeout: Duration,
    ) -> Result<Forge, ForgeError> {
        let target = spec::resolve(git_url, spec)?;
        let auth = match &token {
            Some(token) => Some(auth_header(dialect_of(target.provider), token)?),
            None => None,
        };
        Ok(Forge {
            provider: target.provider,
            api: target.api,
            repo: target.repo,
            token,
            auth,
            timeout,
            http: http_client(timeout, None)?,
        })
    }

    /// The same client trusting the CA certificates in `pem` too (a forge with a private CA).
    pub fn with_ca_pem(mut self, pem: &[u8]) -> Result<Forge, ForgeError> {
        self.http = http_client(self.timeout, Some(pem))?;
        Ok(self)
    }

    pub fn provider(&self) -> Provider {
        self.provider
    }

    pub fn repo(&self) -> &Repo {
        &self.repo
    }

    /// The API base URL, without a trailing `/`.
    pub fn api_url(&self) -> &str {
        &self.api
    }

    /// The newest pull request from `head` into `base`, in any state (open, merged or closed),
    /// or None. On Gitea an open one wins over a newer closed one (there is at most one open:
    /// only a reopened old one can be older), and a repository that does not exist reads as
    /// None too (Gitea's 404 for it is the same as for no pull request); the next call names it.
    pub async fn latest_pull_request(
        &self,
        head: &str,
        base: &str,
    ) -> Result<Option<PullRequest>, ForgeError> {
        let what = format!("pull requests from {head} into {base} of {}", self.repo);
        let dialect = self.dialect();
        let mut fallback = None;
        if let Some(probe) = dialect.probe_pull_request(&self.repo, head, base) {
            match self.send(probe, &what).await {
                Err(ForgeError::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(e),
                Ok(reply) => {
                    let pr = self.parse(&what, dialect.parse_pull_request(&reply.body))?;
                    if pr.state == PullRequestState::Open {
                        return Ok(Some(pr));
                    }
                    fallback = Some(pr);
                }
            }
        }
        let mut seen = 0;
        for page in 1..=MAX_PAGES {
            let (call, page_size) = dialect.list_pull_requests(&self.repo, head, base, page);
            let reply = self.send(call, &what).await?;
            let listing = self.parse(&what, dialect.pick_pull_request(&reply.body, head, base))?;
            if listing.found.is_some() {
                return Ok(listing.found);
            }
            seen += listing.entries;
            if !more_pages(listing.entries, page_size, seen, reply.total) {
                return Ok(fallback);
            }
        }
        warn!(forge = %self.api, repo = %self.repo, head, base, pages = MAX_PAGES,
            "gave up looking for the newest pull request of a branch after the page limit");
        Ok(fallback)
    }

    pub async fn pull_request(&self, number: u64) -> Result<PullRequest, ForgeError> {
        let what = self.pull_request_name(number);
        let reply = self
            .send(self.dialect().get_pull_request(&self.repo, number), &what)
            .await?;
        self.parse(&what, self.dialect().parse_pull_request(&reply.body))
    }

    /// Opens a pull request and labels it. Labels are a nicety: failing to find, create or
    /// apply them is logged, and the pull request is returned all the same.
    pub async fn open_pull_request(&self, new: &NewPullRequest) -> Result<PullRequest, ForgeError> {
        let what = format!(
            "a new pull request from {} into {} of {}",
            new.head, new.base, self.repo
        );
        let mut label_ids = Vec::new();
        if self.provider == Provider::Gitea && !new.labels.is_empty() {
            match self.gitea_label_ids(&new.labels).await {
                Ok(ids) => label_ids = ids,
                Err(e) => warn!(forge = %self.api, repo = %self.repo, error = %e,
                    "opening the pull request without its labels"),
            }
        }
        let call = self
            .dialect()
            .create_pull_request(&self.repo, new, &label_ids);
        let reply = self.send(call, &what).await?;
        let pr = self.parse(&what, self.dialect().parse_pull_request(&reply.body))?;
        let labelling = self
            .dialect()
            .label_pull_request(&self.repo, pr.number, &new.labels);
        if let Some(call) = labelling {
            let what = format!("labels of {}", self.pull_request_name(pr.number));
            if let Err(e) = self.send(call, &what).await {
                warn!(forge = %self.api, url = %pr.url, error = %e, "pull request left unlabelled");
            }
        }
        Ok(pr)
    }

    pub async fn update_pull_request(
        &self,
        number: u64,
        title: &str,
        body: &str,
    ) -> Result<PullRequest, ForgeError> {
        let call = self
            .dialect()
            .edit_pull_request(&self.repo, number, title, body);
        self.pull_request_call(number, call).await
    }

    pub async fn close_pull_request(&self, number: u64) -> Result<PullRequest, ForgeError> {
        let call = self.dialect().close_pull_request(&self.repo, number);
        self.pull_request_call(number, call).await
    }

    pub async fn comment(&self, number: u64, body: &str) -> Result<(), ForgeError> {
        let call = self.dialect().comment(&self.repo, number, body);
        self.send(call, &self.pull_request_name(number)).await?;
        Ok(())
    }

    /// Merges with a merge commit (GitLab: the project's merge method).
    pub async fn merge_pull_request(&self, number: u64) -> Result<(), ForgeError> {
        let call = self.dialect().merge_pull_request(&self.repo, number);
        self.send(call, &self.pull_request_name(number)).await?;
        Ok(())
    }

    /// Sets a commit status; the description is cut to 140 characters.
    pub async fn set_commit_status(
        &self,
        sha: &str,
        status: &CommitStatus,
    ) -> Result<(), ForgeError> {
        let what = format!("commit {sha} of {}", self.repo);
        let reply = self
            .exchange(&self.dialect().set_commit_status(&self.repo, sha, status))
            .await?;
        let message = error::forge_message(&reply.body);
        if self.dialect().status_already_set(reply.status, &message) {
            debug!(forge = %self.api, sha, context = %status.context, "commit status already set");
            return Ok(());
        }
        self.check(reply, &what)?;
        Ok(())
    }

    /// The commit's statuses (the newest page of them), newest first.
    pub async fn commit_statuses(&self, sha: &str) -> Result<Vec<CommitStatus>, ForgeError> {
        let what = format!("commit {sha} of {}", self.repo);
        let call = self.dialect().list_commit_statuses(&self.repo, sha);
        let reply = self.send(call, &what).await?;
        self.parse(&what, self.dialect().parse_commit_statuses(&reply.body))
    }

    fn dialect(&self) -> &'static dyn Dialect {
        dialect_of(self.provider)
    }

    fn pull_request_name(&self, number: u64) -> String {
        format!("pull request #{number} of {}", self.repo)
    }

    async fn pull_request_call(&self, number: u64, call: Call) -> Result<PullRequest, ForgeError> {
        let what = self.pull_request_name(number);
        let reply = self.send(call, &what).await?;
        self.parse(&what, self.dialect().parse_pull_request(&reply.body))
    }

    /// The ids of Gitea labels by name; missing ones are created.
    async fn gitea_label_ids(&self, names: &[String]) -> Result<Vec<u64>, ForgeError> {
        let what = format!("labels of {}", self.repo);
        let mut known = Vec::new();
        for page in 1..=MAX_PAGES {
            let (call, page_size) = gitea::list_labels(&self.repo, page);
            let reply = self.send(call, &what).await?;
            let labels = self.parse(&what, gitea::parse_labels(&reply.body))?;
            let entries = labels.len();
            known.extend(labels);
            if !more_pages(entries, page_size, known.len(), reply.total) {
                break;
            }
        }
        let mut ids = Vec::with_capacity(names.len());
        for name in names {
            let id = match known.iter().find(|(_, known)| known == name) {
                Some((id, _)) => *id,
                None => {
                    let what = format!("label {name:?} of {}", self.repo);
                    let reply = self
                        .send(gitea::create_label(&self.repo, name), &what)
                        .await?;
                    self.parse(&what, gitea::parse_label(&reply.body))?
                }
            };
            ids.push(id);
        }
        Ok(ids)
    }
}

fn dialect_of(provider: Provider) -> &'static dyn Dialect {
    match provider {
        Provider::Gitea => &gitea::Gitea,
        Provider::GitHub => &github::GitHub,
        Provider::GitLab => &gitlab::GitLab,
    }
}

#[cfg(test)]
mod tests;
