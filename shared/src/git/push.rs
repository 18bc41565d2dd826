//! The Config Updater's side: a work clone at the remote's tip, a commit of exactly the changed
//! files (never an empty one), and a push that is only a success when the server says so.

use std::path::Path;

use git2::build::{CheckoutBuilder, TreeUpdateBuilder};
use git2::{Commit, FileMode, Oid, Repository, Signature, Tree};

use super::GitError;
use super::fetch::refname;
use super::remote::Remote;
use super::sign::{CommitSigner, SIGNATURE_HEADER};

/// One file of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileChange {
    /// Create or replace the file at `path` (relative, `/`-separated) with `content`. An existing
    /// file keeps its mode (executable or not).
    Write { path: String, content: Vec<u8> },
    /// Remove the file at `path`; nothing happens when there is none.
    Delete { path: String },
}

/// Who a commit is by (author and committer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    pub name: String,
    pub email: String,
}

/// Brings `work_dir` to the tip of `branch` on `remote`: clones into it when it holds no
/// repository (missing or empty), else fetches. Either way the local `branch` is reset to the
/// remote's and checked out, so commits of an earlier, failed round are gone; the caller
/// re-applies its edits. Blocking.
pub fn clone_or_open(
    remote: &Remote,
    branch: &str,
    work_dir: &Path,
) -> Result<Repository, GitError> {
    let local = refname("heads", branch)?;
    let tracking = format!("refs/remotes/origin/{branch}");
    let repo = match Repository::open(work_dir) {
        Ok(r) if !r.is_bare() => r,
        _ => {
            let mut opts = git2::RepositoryInitOptions::new();
            opts.initial_head(branch).no_reinit(true);
            Repository::init_opts(work_dir, &opts)?
        }
    };
    match repo.find_remote("origin") {
        Ok(r) if r.url_bytes() == remote.url().as_bytes() => {}
        Ok(_) => repo.remote_set_url("origin", remote.url())?,
        Err(_) => {
            repo.remote("origin", remote.url())?;
        }
    }

    let session = remote.session();
    let result = repo.find_remote("origin").and_then(|mut origin| {
        origin.fetch(
            &[format!("+{local}:{tracking}")],
            Some(&mut session.fetch_options()),
            Some("sluice: fetch"),
        )?;
        Ok(origin.list()?.iter().any(|h| h.name() == local))
    });
    if !session.finish(result, None)? {
        return Err(GitError::RefNotFound {
            url: remote.display_url(),
            reference: local,
        });
    }
    let tip = repo.find_reference(&tracking)?.peel_to_commit()?;
    repo.reference(&local, tip.id(), true, "sluice: reset to the remote")?;
    repo.set_head(&local)?;
    repo.checkout_head(Some(CheckoutBuilder::new().force().remove_untracked(true)))?;
    drop(tip);
    Ok(repo)
}

/// Commits `changes` on `branch` (which starts at HEAD when it does not exist yet) and returns
/// the new commit, or `None` when the changes leave the tree as it was: never an empty commit.
/// Works on the objects, so the work tree needs no staging; when `branch` is checked out, the
/// work tree is updated to the commit. Unsigned; see [`commit_signed`].
pub fn commit(
    repo: &Repository,
    branch: &str,
    changes: &[FileChange],
    author: &Author,
    message: &str,
) -> Result<Option<Oid>, GitError> {
    commit_signed(repo, branch, changes, author, message, None)
}

/// [`commit`], signed with `signer` when given: an SSH signature in the commit's `gpgsig`
/// header, as `git -c gpg.format=ssh commit -S` makes it (see [`CommitSigner`]).
pub fn commit_signed(
    repo: &Repository,
    branch: &str,
    changes: &[FileChange],
    author: &Author,
    message: &str,
    signer: Option<&CommitSigner>,
) -> Result<Option<Oid>, GitError> {
    let local = refname("heads", branch)?;
    let parent = match repo.find_reference(&local) {
        Ok(r) => r.peel_to_commit()?,
        Err(_) => repo.head()?.peel_to_commit()?,
    };
    let base = parent.tree()?;
    let mut update = TreeUpdateBuilder::new();
    for change in changes {
        match change {
            FileChange::Write { path, content } => {
                check_path(path)?;
                let mode = match base.get_path(Path::new(path)).map(|e| e.filemode()) {
                    Ok(0o100755) => FileMode::BlobExecutable,
                    _ => FileMode::Blob,
                };
                update.upsert(path.as_str(), repo.blob(content)?, mode);
            }
            FileChange::Delete { path } => {
                check_path(path)?;
                if base.get_path(Path::new(path)).is_ok() {
                    update.remove(path.as_str());
                }
            }
        }
    }
    let tree = repo.find_tree(update.create_updated(repo, &base)?)?;
    if tree.id() == base.id() {
        return Ok(None);
    }
    commit_tree(repo, branch, &tree, &[&parent], author, message, signer).map(Some)
}

/// Writes a commit of `tree` with `parents` (signed with `signer` when given) and points
/// `branch` at it, whatever it pointed at before: the one place both daemons make commits (the
/// Config Updater's bumps through [`commit_signed`], the synchronizer's reverts directly). When
/// `branch` is checked out, the work tree is updated to the commit.
pub fn commit_tree(
    repo: &Repository,
    branch: &str,
    tree: &Tree<'_>,
    parents: &[&Commit<'_>],
    author: &Author,
    message: &str,
    signer: Option<&CommitSigner>,
) -> Result<Oid, GitError> {
    let local = refname("heads", branch)?;
    let who = Signature::now(&author.name, &author.email)?;
    let id = match signer {
        None => repo.commit(None, &who, &who, message, tree, parents)?,
        Some(signer) => {
            let buffer = repo.commit_create_buffer(&who, &who, message, tree, parents)?;
            let buffer = std::str::from_utf8(&buffer).map_err(|_| GitError::Invalid {
                what: "the commit".into(),
                reason: "its author or message is not UTF-8 text; it cannot be signed".into(),
            })?;
            let signature = signer
                .sign(buffer.as_bytes())
                .map_err(|reason| GitError::Invalid {
                    what: format!("signing the commit with {}", signer.fingerprint()),
                    reason,
                })?;
            repo.commit_signed(buffer, &signature, Some(SIGNATURE_HEADER))?
        }
    };
    let summary = message.lines().next().unwrap_or_default();
    repo.reference(&local, id, true, &format!("commit: {summary}"))?;
    let head_is_branch = repo
        .head()
        .ok()
        .map(|h| h.name_bytes() == local.as_bytes())
        .unwrap_or(false);
    if head_is_branch && !repo.is_bare() {
        repo.checkout_head(Some(CheckoutBuilder::new().force()))?;
    }
    Ok(id)
}

fn check_path(path: &str) -> Result<(), GitError> {
    // As git stores paths: `/`-separated plain names, nothing to normalize.
    let plain = path.split('/').all(|n| {
        !matches!(n, "" | "." | "..")
            && !n.eq_ignore_ascii_case(".git")
            && !n.contains(['\\', '\0'])
    });
    if plain {
        Ok(())
    } else {
        Err(GitError::Invalid {
            what: path.to_string(),
            reason: "a changed file must be a plain relative path inside the repository (a/b.yaml)"
                .into(),
        })
    }
}

/// Pushes `branch` to the same branch on `remote`; see [`push_refs`].
pub fn push(repo: &Repository, remote: &Remote, branch: &str) -> Result<(), GitError> {
    push_refs(repo, remote, &[&refname("heads", branch)?])
}

/// Pushes `branch` over the remote's `branch` when, and only when, the remote still points it at
/// `expected` (a forced push with a lease: `git push --force-with-lease=branch:expected`). For a
/// branch Sluice alone writes, whose proposal a person rejected; a branch that moved since it was
/// read is left as it is: [`GitError::NonFastForward`].
pub fn push_replacing(
    repo: &Repository,
    remote: &Remote,
    branch: &str,
    expected: git2::Oid,
) -> Result<(), GitError> {
    let r = refname("heads", branch)?;
    let session = remote.session();
    let mut git_remote = repo.remote_anonymous(remote.url())?;
    let result = git_remote.push(
        &[format!("+{r}:{r}")],
        Some(&mut session.push_options_leased(Some((&r, expected)))),
    );
    if session.lease_broken().is_some() {
        return Err(GitError::NonFastForward {
            reference: r,
            message: "the branch moved since it was read; it was left as it is".into(),
        });
    }
    session.finish(result, Some(&r))?;
    match session
        .transcript()
        .pushed
        .iter()
        .find(|(name, _)| *name == r)
    {
        Some((_, Some(status))) => Err(super::error::push_refused(
            &r,
            status,
            &session.transcript().remote_messages,
        )),
        _ => Ok(()),
    }
}

/// Pushes each of `refs` (full names: `refs/heads/…`, `refs/tags/…`) to the same name on
/// `remote`, never forced. A success only when the server accepted every update: libgit2's
/// `push()` returns OK even when the server refused a ref, so each update's status is checked.
/// Someone else's newer commits: [`GitError::NonFastForward`]; any other refusal:
/// [`GitError::PushRejected`].
pub fn push_refs(repo: &Repository, remote: &Remote, refs: &[&str]) -> Result<(), GitError> {
    for r in refs {
        if !r.starts_with("refs/") || !git2::Reference::is_valid_name(r) {
            return Err(GitError::Invalid {
                what: r.to_string(),
                reason: "not a full reference name (refs/…)".into(),
            });
        }
    }
    let specs: Vec<String> = refs.iter().map(|r| format!("{r}:{r}")).collect();
    let session = remote.session();
    let mut git_remote = repo.remote_anonymous(remote.url())?;
    let result = git_remote
        .push(&specs, Some(&mut session.push_options()))
        .and_then(|()| {
            Ok(git_remote
                .list()?
                .iter()
                .map(|h| (h.name().to_string(), h.oid()))
                .collect::<Vec<_>>())
        });
    let reference = (refs.len() == 1).then(|| refs[0]);
    let advertised = session.finish(result, reference)?;
    let transcript = session.transcript();
    for r in refs {
        match transcript.pushed.iter().find(|(name, _)| name == r) {
            Some((_, None)) => {}
            Some((_, Some(status))) => {
                return Err(super::error::push_refused(
                    r,
                    status,
                    &transcript.remote_messages,
                ));
            }
            None => {
                // No update reported: only fine when the server already had this commit.
                let local = repo.refname_to_id(r)?;
                if !advertised
                    .iter()
                    .any(|(name, oid)| name == r && *oid == local)
                {
                    return Err(GitError::PushRejected {
                        reference: r.to_string(),
                        message: "the server did not confirm the update".into(),
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_files_stay_inside_the_repository() {
        for ok in ["a.yaml", "apps/web/deployment.yaml", ".sluice/x"] {
            assert!(check_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            ".git/config",
            "a\\b",
            "./x",
            "a//b",
            "a/",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn commits_only_what_changed_and_never_an_empty_commit() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let me = Author {
            name: "Sluice".into(),
            email: "sluice@sluice.dev".into(),
        };
        // An unborn branch has no parent to start from.
        let sig = Signature::now("t", "t@t").unwrap();
        let empty = repo.treebuilder(None).unwrap().write().unwrap();
        let empty = repo.find_tree(empty).unwrap();
        repo.commit(Some("HEAD"), &sig, &sig, "root", &empty, &[])
            .unwrap();
        let branch = repo.head().unwrap().shorthand().unwrap().to_string();

        let write = |path: &str, content: &str| FileChange::Write {
            path: path.into(),
            content: content.as_bytes().to_vec(),
        };
        let first = commit(
            &repo,
            &branch,
            &[write("apps/web/image.txt", "app:1\n")],
            &me,
            "web: 1",
        )
        .unwrap()
        .expect("a commit");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("apps/web/image.txt")).unwrap(),
            "app:1\n",
            "the checked-out work tree follows"
        );
        assert_eq!(
            commit(
                &repo,
                &branch,
                &[write("apps/web/image.txt", "app:1\n")],
                &me,
                "again"
            )
            .unwrap(),
            None,
            "same bytes: no commit"
        );
        assert_eq!(
            commit(
                &repo,
                &branch,
                &[FileChange::Delete {
                    path: "nope".into()
                }],
                &me,
                "x"
            )
            .unwrap(),
            None
        );
        let second = commit(
            &repo,
            "bump",
            &[write("apps/web/image.txt", "app:2\n")],
            &me,
            "web: 2",
        )
        .unwrap()
        .expect("a commit on a new branch");
        let c = repo.find_commit(second).unwrap();
        assert_eq!(c.parent_id(0).unwrap(), first);
        assert_eq!(c.author().name().unwrap(), "Sluice");
        assert_eq!(c.message().unwrap(), "web: 2");
        assert!(commit(&repo, &branch, &[write("../x", "")], &me, "x").is_err());
    }

    #[test]
    fn a_signed_commit_carries_an_ssh_signature_of_the_commit_without_it() {
        use ssh_key::{LineEnding, PrivateKey, SshSig, private::Ed25519Keypair};
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let sig = Signature::now("t", "t@t").unwrap();
        let empty = repo.treebuilder(None).unwrap().write().unwrap();
        let empty = repo.find_tree(empty).unwrap();
        let root = repo
            .commit(Some("HEAD"), &sig, &sig, "root", &empty, &[])
            .unwrap();
        let branch = repo.head().unwrap().shorthand().unwrap().to_string();
        let key = PrivateKey::from(Ed25519Keypair::from_seed(&[3; 32]));
        let signer =
            CommitSigner::from_openssh(&key.to_openssh(LineEnding::LF).unwrap(), None).unwrap();
        let me = Author {
            name: "Sluice".into(),
            email: "sluice@sluice.dev".into(),
        };
        let change = FileChange::Write {
            path: "apps/web/image.txt".into(),
            content: b"app:2\n".to_vec(),
        };
        let id = commit_signed(&repo, &branch, &[change], &me, "web: 2\n", Some(&signer))
            .unwrap()
            .expect("a commit");

        assert_eq!(
            repo.refname_to_id(&format!("refs/heads/{branch}")).unwrap(),
            id
        );
        let c = repo.find_commit(id).unwrap();
        assert_eq!(c.parent_id(0).unwrap(), root);
        assert_eq!(c.message().unwrap(), "web: 2\n");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("apps/web/image.txt")).unwrap(),
            "app:2\n"
        );
        let (armored, signed) = repo.extract_signature(&id, Some(SIGNATURE_HEADER)).unwrap();
        let armored = SshSig::from_pem(armored.as_str().unwrap()).unwrap();
        key.public_key()
            .verify("git", &signed, &armored)
            .expect("the signature verifies over the commit without its gpgsig header");
        assert!(!String::from_utf8_lossy(&signed).contains("gpgsig"));
    }
}
