//! The shell of pull-request mode (`spec.git.pullRequest`): before a round, read the newest pull
//! request of the push branch from the forge (a closed one rejects what it proposed, see
//! [`crate::writeback::pull_request`]); after it, open the pull request or refresh the open one
//! with what the branch now proposes. What to do is decided in `writeback::pull_request` (pure);
//! this file only talks to the forge.

use std::time::Duration;

use sluice_shared::forge::{Forge, NewPullRequest, PullRequest};

use super::credentials::forge_token;
use super::update_status::Note;
use super::{Context, Error};
use crate::resource::{ImageUpdate, PullRequestTemplate};
use crate::writeback::pull_request::{self, Next};
use crate::writeback::{Outcome, TrailerChange};
use sluice_shared::forge::PullRequestStatus;

/// How long one call to the forge may take.
const FORGE_TIMEOUT: Duration = Duration::from_secs(15);

/// A round in pull-request mode: the forge, and the push branch's newest pull request as it was
/// before the round.
pub(super) struct Proposing {
    forge: Forge,
    template: PullRequestTemplate,
    base: String,
    head: String,
    latest: Option<PullRequest>,
}

/// What the round's pull request came to: its status entry and the events to publish.
pub(super) struct Followed {
    pub status: Option<PullRequestStatus>,
    pub notes: Vec<Note>,
}

/// The forge and the newest pull request of the push branch, for an `ImageUpdate` in
/// pull-request mode (`None` otherwise).
pub(super) async fn before(
    ctx: &Context,
    ns: &str,
    update: &ImageUpdate,
) -> Result<Option<Proposing>, Error> {
    let git = &update.spec.git;
    let (Some(template), Some(head)) = (&git.pull_request, &git.push_branch) else {
        return Ok(None);
    };
    let token = forge_token(&ctx.client, ns, update, &template.forge).await?;
    let forge = Forge::new(&git.url, &template.forge, token, FORGE_TIMEOUT)?;
    let latest = forge.latest_pull_request(head, &git.branch).await?;
    Ok(Some(Proposing {
        forge,
        template: template.clone(),
        base: git.branch.clone(),
        head: head.clone(),
        latest,
    }))
}

impl Proposing {
    /// The head commit of a pull request closed without merge: its proposals are rejected.
    pub fn rejected_head(&self) -> Option<String> {
        pull_request::rejected(self.latest.as_ref()).map(str::to_owned)
    }

    /// Opens or refreshes the pull request after the round's `outcome`; `stored` is the status
    /// entry as last written, to tell what is news.
    pub async fn after(
        &self,
        outcome: &Outcome,
        stored: Option<&PullRequestStatus>,
    ) -> Result<Followed, Error> {
        let proposed: &[TrailerChange] = outcome.proposed().unwrap_or_default();
        let title = pull_request::title(&self.template.title, proposed, &self.base);
        let body = pull_request::body(&self.template.body, proposed, &self.base);
        let next = pull_request::next(self.latest.as_ref(), proposed, &title, &body);
        let (seen, acted) = match next {
            Next::Open => {
                let new = NewPullRequest {
                    head: self.head.clone(),
                    base: self.base.clone(),
                    title,
                    body,
                    labels: self.template.labels.clone(),
                };
                (Some(self.forge.open_pull_request(&new).await?), true)
            }
            Next::Refresh { number } => {
                let pr = self
                    .forge
                    .update_pull_request(number, &title, &body)
                    .await?;
                (Some(pr), true)
            }
            Next::Leave => (self.latest.clone(), false),
        };
        let status = seen.as_ref().map(PullRequestStatus::of);
        let rejected = if self.rejected_head().is_some() {
            outcome.reverted()
        } else {
            &[]
        };
        let before = self.latest.as_ref().map(PullRequestStatus::of);
        let notes = pull_request::events(stored, before.as_ref(), status.as_ref(), acted, rejected)
            .into_iter()
            .map(|(warning, reason, message)| Note {
                warning,
                reason: reason.to_owned(),
                message,
            })
            .collect();
        Ok(Followed { status, notes })
    }
}
