//! What `status.pending` says: each change that waits for the batch delay or the update
//! window, with the file it will change and the image there before and after.
//!
//! The files come from planning the round on the branch's current head exactly as the push
//! will ([`preview`]: fetch, read, plan, nothing committed); [`pending_status`] (pure) turns
//! that plan into status entries and tells which waiting policies the branch already holds
//! (nothing to wait for: the caller withdraws them).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use sluice_shared::git::Remote;

use super::Error;
use super::status::timestamp;
use crate::edit::PolicyId;
use crate::resource::{ImageUpdateSpec, PendingChange};
use crate::writeback::{Change, Chosen, plan_round};

/// One policy whose chosen image is not written yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub policy: PolicyId,
    pub chosen: Chosen,
    /// What the branch held after the last round, when known.
    pub written: Option<Chosen>,
    /// Since when a bump of this policy waits.
    pub since: DateTime<Utc>,
}

/// The status entries for `waiting`, and the waiting policies the plan changes nothing for.
///
/// With a plan (`Some(changes)` of the round as it would be made now) there is one entry per
/// policy and file the plan changes, old and new image as the file holds them; a waiting policy
/// the plan does not change is returned as settled (the branch holds its image already, or a
/// problem keeps it from being written, which the push reports). Without a plan (the branch
/// could not be read) each waiting policy gets one entry without a file, the old image being
/// the last one written, if known.
pub fn pending_status(
    waiting: &[Waiting],
    plan: Option<&[Change]>,
) -> (Vec<PendingChange>, Vec<PolicyId>) {
    let mut entries = BTreeSet::new();
    let mut settled = Vec::new();
    for w in waiting {
        let policy = format!("{}/{}", w.policy.namespace, w.policy.name);
        let since = timestamp(w.since);
        let Some(changes) = plan else {
            entries.insert((
                policy,
                String::new(),
                w.written
                    .as_ref()
                    .map(|c| c.image.to_string())
                    .unwrap_or_default(),
                w.chosen.image.to_string(),
                since,
            ));
            continue;
        };
        let mut any = false;
        for c in changes.iter().filter(|c| c.policy == w.policy) {
            any = true;
            entries.insert((
                policy.clone(),
                c.file.clone(),
                versioned(&c.image, &c.old),
                versioned(&c.image, &c.new),
                since.clone(),
            ));
        }
        if !any {
            settled.push(w.policy.clone());
        }
    }
    let entries = entries
        .into_iter()
        .map(
            |(policy, file, old_image, new_image, since)| PendingChange {
                policy,
                file,
                old_image,
                new_image,
                since,
            },
        )
        .collect();
    (entries, settled)
}

/// A change's version (see the trailer grammar of `writeback`) as a whole image reference:
/// `repo:tag`, `repo@sha256:…`, `repo:tag@sha256:…`; a `:name` field's value (a repository)
/// as it is; an empty version as the bare repository.
pub fn versioned(image: &str, version: &str) -> String {
    if version.is_empty() {
        image.to_owned()
    } else if version.contains('/') {
        version.to_owned()
    } else if version.starts_with("sha256:") || version.starts_with("sha512:") {
        format!("{image}@{version}")
    } else {
        format!("{image}:{version}")
    }
}

/// Plans the round on the branch's head as the push would (rolled-back versions left out),
/// in the work clone `work_dir`, committing nothing; returns the changes.
pub(crate) async fn preview(
    remote: Remote,
    spec: ImageUpdateSpec,
    chosen: BTreeMap<PolicyId, Chosen>,
    work_dir: PathBuf,
) -> Result<Vec<Change>, Error> {
    tokio::task::spawn_blocking(move || {
        Ok(plan_round(&remote, &spec, &chosen, &work_dir, None)?
            .plan
            .changes)
    })
    .await
    .map_err(|e| Error::Invalid(format!("the preview task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edit::ImageRef;

    fn id(name: &str) -> PolicyId {
        PolicyId {
            namespace: "shop".into(),
            name: name.into(),
        }
    }

    fn chosen(image: &str, tag: &str) -> Chosen {
        Chosen {
            image: ImageRef::new(image, Some(tag), None).unwrap(),
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn change(policy: &str, file: &str, image: &str, old: &str, new: &str) -> Change {
        Change {
            policy: id(policy),
            file: file.into(),
            line: 7,
            image: image.into(),
            old: old.into(),
            new: new.into(),
        }
    }

    const WEB: &str = "127.0.0.1:5000/shop/web";
    const API: &str = "127.0.0.1:5000/shop/api";

    fn waiting() -> Vec<Waiting> {
        vec![
            Waiting {
                policy: id("web"),
                chosen: chosen(WEB, "1.4.3"),
                written: None,
                since: at("2026-11-23T10:00:00Z"),
            },
            Waiting {
                policy: id("api"),
                chosen: chosen(API, "2.0.1"),
                written: Some(chosen(API, "2.0.0")),
                since: at("2026-11-23T10:02:30Z"),
            },
        ]
    }

    #[test]
    fn each_file_a_policy_changes_is_listed_with_old_and_new_image() {
        let plan = vec![
            change("web", "apps/web/deployment.yaml", WEB, "1.4.2", "1.4.3"),
            // A Helm values file: the `:tag` field gives the bare tag.
            change("web", "apps/web/values.yaml", WEB, "1.4.2", "1.4.3"),
            change("api", "apps/api/deployment.yaml", API, "2.0.0", "2.0.1"),
        ];
        let (entries, settled) = pending_status(&waiting(), Some(&plan));
        assert!(settled.is_empty());
        let seen: Vec<(&str, &str, &str, &str, &str)> = entries
            .iter()
            .map(|e| {
                (
                    e.policy.as_str(),
                    e.file.as_str(),
                    e.old_image.as_str(),
                    e.new_image.as_str(),
                    e.since.as_str(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                (
                    "shop/api",
                    "apps/api/deployment.yaml",
                    "127.0.0.1:5000/shop/api:2.0.0",
                    "127.0.0.1:5000/shop/api:2.0.1",
                    "2026-11-23T10:02:30Z"
                ),
                (
                    "shop/web",
                    "apps/web/deployment.yaml",
                    "127.0.0.1:5000/shop/web:1.4.2",
                    "127.0.0.1:5000/shop/web:1.4.3",
                    "2026-11-23T10:00:00Z"
                ),
                (
                    "shop/web",
                    "apps/web/values.yaml",
                    "127.0.0.1:5000/shop/web:1.4.2",
                    "127.0.0.1:5000/shop/web:1.4.3",
                    "2026-11-23T10:00:00Z"
                ),
            ]
        );
    }

    #[test]
    fn the_same_change_at_two_lines_of_a_file_is_listed_once() {
        let plan = vec![
            change("web", "apps/web/deployment.yaml", WEB, "1.4.2", "1.4.3"),
            change("web", "apps/web/deployment.yaml", WEB, "1.4.2", "1.4.3"),
        ];
        let (entries, settled) = pending_status(&waiting()[..1], Some(&plan));
        assert_eq!(entries.len(), 1);
        assert!(settled.is_empty());
    }

    #[test]
    fn a_policy_the_branch_already_holds_is_settled_not_pending() {
        let plan = vec![change(
            "web",
            "apps/web/deployment.yaml",
            WEB,
            "1.4.2",
            "1.4.3",
        )];
        let (entries, settled) = pending_status(&waiting(), Some(&plan));
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].policy, "shop/web");
        assert_eq!(settled, vec![id("api")]);
    }

    #[test]
    fn without_a_plan_each_policy_is_listed_without_a_file() {
        let (entries, settled) = pending_status(&waiting(), None);
        assert!(settled.is_empty());
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].policy, "shop/api");
        assert_eq!(entries[0].file, "");
        assert_eq!(entries[0].old_image, "127.0.0.1:5000/shop/api:2.0.0");
        assert_eq!(entries[1].old_image, "", "nothing written yet");
        assert_eq!(entries[1].new_image, "127.0.0.1:5000/shop/web:1.4.3");
    }

    #[test]
    fn versions_become_whole_references() {
        assert_eq!(versioned(WEB, "1.4.3"), "127.0.0.1:5000/shop/web:1.4.3");
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(versioned(WEB, &digest), format!("{WEB}@{digest}"));
        assert_eq!(
            versioned(WEB, &format!("1.4.3@{digest}")),
            format!("{WEB}:1.4.3@{digest}")
        );
        assert_eq!(
            versioned(WEB, "127.0.0.1:5000/shop/web2"),
            "127.0.0.1:5000/shop/web2"
        );
        assert_eq!(versioned(WEB, ""), WEB);
    }
}
