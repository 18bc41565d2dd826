//! A round as it would be made now: open or clone the work clone at the commit to build on,
//! read the files under the configured paths and the branch's recent history, and plan
//! ([`plan_except`], pure) with the versions a person rolled back left out. The push, the
//! preview of `status.pending` and `scan --dry-run` all plan here, so they plan alike; what
//! they do with the plan (commit and push, list, show a diff) is theirs.
//!
//! In pull-request mode a pull request closed without merge rejects what its head proposed: the
//! round reads those changes (blocked like reverted ones) and, when the push branch still points
//! at that head, starts the branch again from the base's tip, to be pushed over the rejected
//! commits with a lease on them (see [`Round::replaces`]).

use std::collections::BTreeMap;
use std::path::Path;

use git2::{ObjectType, Oid, Repository, TreeWalkMode, TreeWalkResult};
use sluice_shared::git::{self, GitError, Remote};

use super::message::TRAILER_PREFIX;
use super::plan::is_config_file;
use super::pull_request::proposed;
use super::{Chosen, TrailerChange, WritePlan, plan_except, reverted_changes, rolled_back};
use crate::edit::PolicyId;
use crate::resource::ImageUpdateSpec;

/// How many commits of the branch's history are read to find reverted bumps.
pub const HISTORY_LIMIT: usize = 500;

/// A planned round, on the commit it was planned on.
pub(crate) struct Round {
    /// The work clone, the branch to commit on checked out at the commit the round builds on
    /// (see [`prepare`]).
    pub repo: Repository,
    /// The files read at `base`, as `(path, bytes)`.
    pub files: Vec<(String, Vec<u8>)>,
    /// What the round writes (nothing of a rolled-back version).
    pub plan: WritePlan,
    /// The changes of Sluice's commits a person rolled back (see [`super::Outcome::reverted`]),
    /// and those a pull request closed without merge proposed.
    pub reverted: Vec<TrailerChange>,
    /// The base branch's tip, in push-branch mode: what the push branch proposes changes over.
    pub base_tip: Option<Oid>,
    /// The rejected head the push branch is to be pushed over (a lease: only while the remote
    /// branch still points there). `None`: a plain push, never forced.
    pub replaces: Option<Oid>,
}

/// Plans the round of `spec` for the `chosen` images on the branch as the remote holds it now,
/// in the work clone `work_dir` (created when missing). `rejected_head`: the head of the push
/// branch's pull request, when it was closed without merge. Blocking: git I/O.
pub(crate) fn plan_round(
    remote: &Remote,
    spec: &ImageUpdateSpec,
    chosen: &BTreeMap<PolicyId, Chosen>,
    work_dir: &Path,
    rejected_head: Option<&str>,
) -> Result<Round, GitError> {
    let rejected_head = rejected_head.and_then(|id| Oid::from_str(id).ok());
    let prepared = prepare(
        remote,
        &spec.git.branch,
        spec.git.push_branch.as_deref(),
        work_dir,
        rejected_head,
    )?;
    let (repo, base) = (prepared.repo, prepared.base);
    let files = read_files(&repo, base, &spec.paths)?;
    let mut reverted = reverted_changes(&history(&repo, base, HISTORY_LIMIT)?);
    if let (Some(head), Some(tip)) = (rejected_head, prepared.base_tip) {
        reverted.extend(proposed_between(&repo, tip, head)?);
    }
    let blocked = rolled_back(chosen, &reverted);
    let plan = plan_except(&files, chosen, spec.update_unmarked, &blocked);
    Ok(Round {
        repo,
        files,
        plan,
        reverted,
        base_tip: prepared.base_tip,
        replaces: prepared.replaces,
    })
}

/// The changes the commits on `tip` and not on `base` propose (see [`proposed`]); none when
/// `tip` is not in the work clone (a closed pull request's head someone deleted).
pub(crate) fn proposed_between(
    repo: &Repository,
    base: Oid,
    tip: Oid,
) -> Result<Vec<TrailerChange>, GitError> {
    if repo.find_commit(tip).is_err() {
        return Ok(Vec::new());
    }
    let mut walk = repo.revwalk()?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME)?;
    walk.push(tip)?;
    walk.hide(base)?;
    let mut commits = Vec::new();
    for id in walk.take(HISTORY_LIMIT) {
        let commit = repo.find_commit(id?)?;
        let message = String::from_utf8_lossy(commit.message_bytes()).into_owned();
        commits.push((commit.id().to_string(), message));
    }
    Ok(proposed(&commits))
}

/// The work clone ready for a round.
struct Prepared {
    repo: Repository,
    /// The commit the round builds on.
    base: Oid,
    /// The base branch's tip, in push-branch mode.
    base_tip: Option<Oid>,
    /// See [`Round::replaces`].
    replaces: Option<Oid>,
}

/// The work clone at the commit to build on, with the branch to commit on checked out there.
/// Straight mode: the remote `branch`'s tip. `push_branch` mode: `branch`'s tip when the remote
/// push branch is missing or behind it (a fast-forward), or still at `rejected_head` (a closed
/// pull request's head, replaced under a lease); else the push branch's own tip (it has commits
/// of its own: never overwritten).
fn prepare(
    remote: &Remote,
    branch: &str,
    push_branch: Option<&str>,
    work_dir: &Path,
    rejected_head: Option<Oid>,
) -> Result<Prepared, GitError> {
    let Some(push_branch) = push_branch else {
        let repo = git::clone_or_open(remote, branch, work_dir)?;
        let head = repo.head()?.peel_to_commit()?.id();
        return Ok(Prepared {
            repo,
            base: head,
            base_tip: None,
            replaces: None,
        });
    };
    let pushed_tip = match git::clone_or_open(remote, push_branch, work_dir) {
        Ok(repo) => Some(repo.head()?.peel_to_commit()?.id()),
        Err(GitError::RefNotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    let repo = git::clone_or_open(remote, branch, work_dir)?;
    let main_tip = repo.head()?.peel_to_commit()?.id();
    let (base, replaces) = match pushed_tip {
        Some(p) if rejected_head == Some(p) => (main_tip, Some(p)),
        Some(p) if p != main_tip && !repo.graph_descendant_of(main_tip, p)? => (p, None),
        _ => (main_tip, None),
    };
    let local = format!("refs/heads/{push_branch}");
    repo.reference(&local, base, true, "sluice: base of the push branch")?;
    repo.set_head(&local)?;
    repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))?;
    Ok(Prepared {
        repo,
        base,
        base_tip: Some(main_tip),
        replaces,
    })
}

/// The files of `commit` under `paths` (all when empty) that a round edits (YAML files and
/// kustomization files, see [`is_config_file`]), as `(path, bytes)`.
pub(super) fn read_files(
    repo: &Repository,
    commit: Oid,
    paths: &[String],
) -> Result<Vec<(String, Vec<u8>)>, GitError> {
    let prefixes: Vec<String> = paths
        .iter()
        .map(|p| p.trim_start_matches("./").trim_matches('/').to_string())
        .collect();
    let wanted = |path: &str| {
        prefixes.is_empty()
            || prefixes.iter().any(|p| {
                p.is_empty() || p == "." || path == p || path.starts_with(&format!("{p}/"))
            })
    };
    let tree = repo.find_commit(commit)?.tree()?;
    let mut found = Vec::new();
    tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
        let regular = matches!(entry.filemode(), 0o100644 | 0o100755);
        if let (Some(ObjectType::Blob), true, Ok(name)) = (entry.kind(), regular, entry.name()) {
            let path = format!("{dir}{name}");
            if is_config_file(&path) && wanted(&path) {
                found.push((path, entry.id()));
            }
        }
        TreeWalkResult::Ok
    })?;
    found
        .into_iter()
        .map(|(path, id)| Ok((path, repo.find_blob(id)?.content().to_vec())))
        .collect()
}

/// `(id, message)` of the last `limit` commits reachable from `tip`, newest first.
fn history(repo: &Repository, tip: Oid, limit: usize) -> Result<Vec<(String, String)>, GitError> {
    let mut walk = repo.revwalk()?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME)?;
    walk.push(tip)?;
    let mut out = Vec::new();
    for id in walk.take(limit) {
        let commit = repo.find_commit(id?)?;
        // A pull request merged with a merge commit: its bump's trailers are in the commits it
        // brought in; read as the merge's own, a revert of the merge undoes that bump.
        let message = git::message_with_merged(repo, &commit, TRAILER_PREFIX, limit);
        out.push((commit.id().to_string(), message));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repository with one commit of `files` (`(path, text)`), and that commit.
    fn committed(dir: &Path, files: &[(&str, &str)]) -> (Repository, Oid) {
        let repo = Repository::init(dir).unwrap();
        let mut index = repo.index().unwrap();
        for (path, text) in files {
            let full = dir.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(&full, text).unwrap();
            index.add_path(Path::new(path)).unwrap();
        }
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let who = git2::Signature::now("Dev", "dev@example.com").unwrap();
        let commit = repo
            .commit(Some("HEAD"), &who, &who, "config", &tree, &[])
            .unwrap();
        drop(tree);
        (repo, commit)
    }

    #[test]
    fn yaml_and_kustomization_files_under_the_paths_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let kustomization = "images:\n  - name: web\n    newTag: 1.4.2\n";
        let (repo, commit) = committed(
            dir.path(),
            &[
                ("apps/web/Kustomization", kustomization),
                ("apps/web/deployment.yaml", "kind: Deployment\n"),
                ("apps/api/kustomization.yml", kustomization),
                ("apps/api/README.md", "# api\n"),
                ("apps/api/kustomization", kustomization),
                ("infra/Kustomization", kustomization),
            ],
        );
        let paths = |files: Vec<(String, Vec<u8>)>| -> Vec<String> {
            files.into_iter().map(|(path, _)| path).collect()
        };
        let all = read_files(&repo, commit, &[]).unwrap();
        assert_eq!(
            paths(all),
            [
                "apps/api/kustomization.yml",
                "apps/web/Kustomization",
                "apps/web/deployment.yaml",
                "infra/Kustomization",
            ]
        );
        let apps = read_files(&repo, commit, &["./apps/web/".to_owned()]).unwrap();
        assert_eq!(
            apps[0],
            (
                "apps/web/Kustomization".to_owned(),
                kustomization.as_bytes().to_vec()
            )
        );
        assert_eq!(apps.len(), 2);
    }
}
