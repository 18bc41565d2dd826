//! Pull-request mode, decided in pure code: what the push branch proposes, how its pull request
//! reads, and what to do with the forge's pull request after a round.
//!
//! - [`proposed`]: the changes the push branch holds over the base branch (the `Sluice-Change`
//!   trailers of its own commits), one per policy and file: the oldest `old`, the newest `new`.
//!   A pull request's body lists exactly these, so a later bump on the same branch refreshes it.
//! - [`title`] and [`body`]: the templates of `spec.git.pullRequest` with `{{changes}}` (and
//!   `{{count}}`, `{{branch}}`) expanded; the body ends with a table of every change.
//! - [`next`]: from the newest pull request of the push branch (any state) and the round's
//!   outcome, whether to open one, refresh the open one, or leave it.
//! - [`rejected`]: a pull request closed without merge rejects every version it proposed; they
//!   are blocked like a reverted bump and not proposed again until a newer version appears.

use std::collections::BTreeMap;

use sluice_shared::forge::{PullRequest, PullRequestState};

use super::{TrailerChange, parse_trailers};
use crate::edit::PolicyId;
use sluice_shared::forge::PullRequestStatus;

/// `{{changes}}` in a template: one line per change.
const CHANGES: &str = "{{changes}}";
/// `{{count}}`: how many changes.
const COUNT: &str = "{{count}}";
/// `{{branch}}`: the base branch.
const BRANCH: &str = "{{branch}}";

/// Bodies are capped below GitHub's 65 536 characters.
const BODY_LIMIT: usize = 60_000;

/// What to do with the forge after a round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// No pull request is open for the push branch and it proposes changes: open one.
    Open,
    /// The open pull request gets the branch's changes as its new title and body (when they
    /// differ from what it says).
    Refresh { number: u64 },
    /// Nothing to do: the branch proposes nothing, or the open pull request says it already.
    Leave,
}

/// The changes the push branch holds over the base: `commits` are `(id, message)` of the
/// commits on the push branch and not on the base, newest first. Per policy and file, the
/// oldest `old` and the newest `new`; a change back to where it started is no change.
pub fn proposed(commits: &[(String, String)]) -> Vec<TrailerChange> {
    let mut by_place: BTreeMap<(PolicyId, String), TrailerChange> = BTreeMap::new();
    for (_, message) in commits.iter().rev() {
        for change in parse_trailers(message) {
            let key = (change.policy.clone(), change.file.clone());
            by_place
                .entry(key)
                .and_modify(|seen| {
                    seen.new = change.new.clone();
                    seen.image = change.image.clone();
                })
                .or_insert(change);
        }
    }
    by_place.into_values().filter(|c| c.old != c.new).collect()
}

/// The title from `template`.
pub fn title(template: &str, changes: &[TrailerChange], base: &str) -> String {
    let lines: Vec<String> = changes.iter().map(short_line).collect();
    let text = expand(template, &lines.join(", "), changes.len(), base);
    let line = text.lines().next().unwrap_or_default().trim();
    let line = if line.is_empty() {
        "Update images"
    } else {
        line
    };
    line.chars().take(250).collect()
}

/// The body from `template`, then a table of every change (file, image, old → new, policy).
pub fn body(template: &str, changes: &[TrailerChange], base: &str) -> String {
    let lines: Vec<String> = changes
        .iter()
        .map(|c| format!("- {}", short_line(c)))
        .collect();
    let mut text = expand(template, &lines.join("\n"), changes.len(), base)
        .trim_end()
        .to_owned();
    text.push_str("\n\n| File | Image | Old | New | Policy |\n|---|---|---|---|---|\n");
    for c in changes {
        text.push_str(&format!(
            "| `{}` | `{}` | `{}` | `{}` | `{}/{}` |\n",
            cell(&c.file),
            cell(&c.image),
            cell(&c.old),
            cell(&c.new),
            c.policy.namespace,
            c.policy.name
        ));
    }
    text.push_str(
        "\nOpened by Sluice's Config Updater. Each commit names its changes in `Sluice-Change` \
         trailers. Closing this pull request without merging rejects these versions: they are \
         not proposed again until a newer one appears.\n",
    );
    cap(text)
}

/// What to do after a round that left the push branch proposing `proposed`, given the newest
/// pull request of the push branch as it was before the round.
pub fn next(
    latest: Option<&PullRequest>,
    proposed: &[TrailerChange],
    title: &str,
    body: &str,
) -> Next {
    match latest {
        Some(pr) if pr.state == PullRequestState::Open => {
            if pr.title == title && pr.body.trim_end() == body.trim_end() {
                Next::Leave
            } else {
                Next::Refresh { number: pr.number }
            }
        }
        _ if proposed.is_empty() => Next::Leave,
        _ => Next::Open,
    }
}

/// The head commit whose proposals a pull request rejected: `Some` for one closed without merge.
pub fn rejected(latest: Option<&PullRequest>) -> Option<&str> {
    let pr = latest?;
    (pr.state == PullRequestState::Closed)
        .then_some(pr.head_sha.as_deref())
        .flatten()
}

/// The events of a round in pull-request mode, as `(warning, reason, message)`: the pull
/// request as last written to status (`stored`), as the round found it (`before`) and as it
/// left it (`after`); `acted`: the round opened or refreshed it; `rejected`: what a pull request
/// closed without merge proposed. A merge or close is told once (while `stored` does not show it).
pub fn events(
    stored: Option<&PullRequestStatus>,
    before: Option<&PullRequestStatus>,
    after: Option<&PullRequestStatus>,
    acted: bool,
    rejected: &[TrailerChange],
) -> Vec<(bool, &'static str, String)> {
    let mut events = Vec::new();
    // The newest word on a merge or close: the round's own answer from the forge (a refresh of
    // a pull request merged meanwhile answers `merged`), else what the round found.
    let done = [after, before]
        .into_iter()
        .flatten()
        .find(|p| p.state != OPEN);
    if let Some(b) = done.filter(|b| stored != Some(*b)) {
        if b.state == MERGED {
            events.push((
                false,
                "PullRequestMerged",
                format!("pull request #{} was merged: {}", b.number, b.url),
            ));
        } else {
            let versions: Vec<String> = rejected.iter().map(short_line).collect();
            let what = if versions.is_empty() {
                String::new()
            } else {
                format!("; rejected, not proposed again: {}", versions.join(", "))
            };
            events.push((
                true,
                "PullRequestClosed",
                format!(
                    "pull request #{} was closed without merge{what}: {}",
                    b.number, b.url
                ),
            ));
        }
    }
    if let Some(a) = after.filter(|a| a.state == OPEN) {
        if before.is_none_or(|b| b.number != a.number) {
            events.push((
                false,
                "PullRequestOpened",
                format!("opened pull request #{}: {}", a.number, a.url),
            ));
        } else if acted {
            events.push((
                false,
                "PullRequestUpdated",
                format!(
                    "pull request #{} now proposes the branch's latest changes: {}",
                    a.number, a.url
                ),
            ));
        }
    }
    events
}

/// The state words of [`PullRequestStatus::state`].
const OPEN: &str = "open";
const MERGED: &str = "merged";

fn short_line(c: &TrailerChange) -> String {
    let name = c.image.rsplit('/').next().unwrap_or(&c.image);
    format!("{name} {} → {}", c.old, c.new)
}

fn expand(template: &str, changes: &str, count: usize, base: &str) -> String {
    template
        .replace(CHANGES, changes)
        .replace(COUNT, &count.to_string())
        .replace(BRANCH, base)
}

/// A table cell: no `|` or backtick can break out of it.
fn cell(text: &str) -> String {
    text.replace(['|', '`'], "_")
}

fn cap(mut text: String) -> String {
    if text.len() <= BODY_LIMIT {
        return text;
    }
    let mut end = BODY_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str("\n\n… (cut: the full list is in the commits' trailers)\n");
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_shared::forge::PullRequestState;

    fn commit(id: &str, trailers: &[(&str, &str, &str, &str)]) -> (String, String) {
        let mut message = String::from("Update images\n\n");
        for (policy, file, old, new) in trailers {
            message.push_str(&format!(
                "Sluice-Change: policy=shop/{policy} file={file} image=127.0.0.1:5000/shop/{policy} old={old} new={new}\n"
            ));
        }
        (id.to_owned(), message)
    }

    fn pr(number: u64, state: PullRequestState, title: &str, body: &str) -> PullRequest {
        PullRequest {
            number,
            url: format!("http://forge/shop/config/pulls/{number}"),
            state,
            head: "sluice/bumps".into(),
            base: "main".into(),
            head_sha: Some("abc123".into()),
            merge_commit: None,
            title: title.into(),
            body: body.into(),
        }
    }

    #[test]
    fn a_branch_proposes_each_place_once_from_its_first_old_to_its_last_new() {
        // Newest first, as a revwalk gives them.
        let commits = [
            commit("c3", &[("web", "apps/web.yaml", "1.1.0", "1.2.0")]),
            commit("c2", &[("api", "apps/api.yaml", "2.0.0", "2.0.0-rc")]),
            commit(
                "c1",
                &[
                    ("web", "apps/web.yaml", "1.0.0", "1.1.0"),
                    ("api", "apps/api.yaml", "2.0.0-rc", "2.0.0"),
                ],
            ),
        ];
        let changes = proposed(&commits);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].policy.name, "web");
        assert_eq!(
            (changes[0].old.as_str(), changes[0].new.as_str()),
            ("1.0.0", "1.2.0")
        );
    }

    #[test]
    fn the_body_lists_every_change_and_cannot_be_broken_by_a_cell() {
        let changes = proposed(&[commit(
            "c1",
            &[
                ("web", "apps/web|x.yaml", "1.0.0", "1.1.0"),
                ("api", "apps/api.yaml", "2.0.0", "2.1.0"),
            ],
        )]);
        let text = body(
            "Bumps for {{branch}} ({{count}}):\n\n{{changes}}",
            &changes,
            "main",
        );
        assert!(
            text.starts_with("Bumps for main (2):\n\n- api 2.0.0 → 2.1.0\n- web 1.0.0 → 1.1.0")
        );
        assert!(text.contains(
            "| `apps/api.yaml` | `127.0.0.1:5000/shop/api` | `2.0.0` | `2.1.0` | `shop/api` |"
        ));
        assert!(text.contains("`apps/web_x.yaml`"), "{text}");
        assert_eq!(
            title("Update {{count}} image(s): {{changes}}", &changes, "main"),
            "Update 2 image(s): api 2.0.0 → 2.1.0, web 1.0.0 → 1.1.0"
        );
        assert_eq!(title("", &changes, "main"), "Update images");
    }

    #[test]
    fn a_long_body_is_cut_below_the_forges_limit() {
        let many: Vec<(String, String)> = (0..2000)
            .map(|i| {
                commit(
                    &format!("c{i}"),
                    &[(
                        "web",
                        &format!("apps/{i:04}/deployment.yaml"),
                        "1.0.0",
                        "1.1.0",
                    )],
                )
            })
            .collect();
        let text = body("{{changes}}", &proposed(&many), "main");
        assert!(text.len() < 61_000);
        assert!(text.ends_with("trailers)\n"));
    }

    #[test]
    fn an_open_pull_request_is_refreshed_only_when_it_says_something_else() {
        let changes = proposed(&[commit("c1", &[("web", "a.yaml", "1", "2")])]);
        let open = pr(7, PullRequestState::Open, "t", "b\n");
        assert_eq!(next(Some(&open), &changes, "t", "b"), Next::Leave);
        assert_eq!(
            next(Some(&open), &changes, "t", "c"),
            Next::Refresh { number: 7 }
        );
        assert_eq!(next(None, &changes, "t", "b"), Next::Open);
        for done in [PullRequestState::Merged, PullRequestState::Closed] {
            assert_eq!(
                next(Some(&pr(7, done, "t", "b")), &changes, "t", "b"),
                Next::Open
            );
            assert_eq!(
                next(Some(&pr(7, done, "t", "b")), &[], "t", "b"),
                Next::Leave
            );
        }
    }

    fn seen(number: u64, state: &str) -> PullRequestStatus {
        PullRequestStatus {
            number,
            url: format!("http://forge/pulls/{number}"),
            state: state.into(),
        }
    }

    #[test]
    fn each_turn_of_a_pull_request_is_told_once() {
        let reasons = |events: Vec<(bool, &'static str, String)>| -> Vec<&'static str> {
            events.into_iter().map(|(_, r, _)| r).collect()
        };
        let open = seen(4, "open");
        // Opened by this round.
        assert_eq!(
            reasons(events(None, None, Some(&open), true, &[])),
            ["PullRequestOpened"]
        );
        // Refreshed with a later bump; a round that left it alone says nothing.
        assert_eq!(
            reasons(events(Some(&open), Some(&open), Some(&open), true, &[])),
            ["PullRequestUpdated"]
        );
        assert!(events(Some(&open), Some(&open), Some(&open), false, &[]).is_empty());
        // Merged: told once, then the status shows it.
        let merged = seen(4, "merged");
        assert_eq!(
            reasons(events(
                Some(&open),
                Some(&merged),
                Some(&merged),
                false,
                &[]
            )),
            ["PullRequestMerged"]
        );
        assert!(events(Some(&merged), Some(&merged), Some(&merged), false, &[]).is_empty());
        // Merged between the round's read and its refresh: the refresh's answer tells it.
        assert_eq!(
            reasons(events(Some(&open), Some(&open), Some(&merged), true, &[])),
            ["PullRequestMerged"]
        );
        // Closed without merge, and a newer version opens the next one in the same round.
        let closed = seen(4, "closed");
        let rejected = proposed(&[commit("c1", &[("web", "a.yaml", "1.0.0", "1.1.0")])]);
        let told = events(
            Some(&open),
            Some(&closed),
            Some(&seen(5, "open")),
            true,
            &rejected,
        );
        assert_eq!(told[0].1, "PullRequestClosed");
        assert!(told[0].0, "a rejection is a warning");
        assert!(
            told[0]
                .2
                .contains("rejected, not proposed again: web 1.0.0 → 1.1.0"),
            "{}",
            told[0].2
        );
        assert_eq!(told[1].1, "PullRequestOpened");
    }

    #[test]
    fn only_a_pull_request_closed_without_merge_rejects_its_head() {
        let closed = pr(3, PullRequestState::Closed, "t", "b");
        assert_eq!(rejected(Some(&closed)), Some("abc123"));
        assert_eq!(
            rejected(Some(&pr(3, PullRequestState::Merged, "t", "b"))),
            None
        );
        assert_eq!(
            rejected(Some(&pr(3, PullRequestState::Open, "t", "b"))),
            None
        );
        assert_eq!(rejected(None), None);
    }
}
