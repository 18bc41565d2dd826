//! The Deploy Synchronizer's side: fetch one revision of a source into a cache, and write a
//! commit's files into a directory for rendering.

use std::path::{Component, Path, PathBuf};

use git2::{ObjectType, Oid, Repository, TreeWalkMode};

use super::GitError;
use super::remote::Remote;

/// Which revision of a source to deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revision {
    Branch(String),
    Tag(String),
    /// A commit id (full, or an unambiguous prefix of at least 7 hex digits).
    Commit(String),
}

impl std::fmt::Display for Revision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Revision::Branch(b) => write!(f, "branch {b}"),
            Revision::Tag(t) => write!(f, "tag {t}"),
            Revision::Commit(c) => write!(f, "commit {c}"),
        }
    }
}

/// A fetched revision: the commit and the cache repository that holds it.
pub struct Fetched {
    /// The full commit id (a tag is peeled to its commit).
    pub commit: String,
    /// The first line of the commit message.
    pub subject: String,
    /// The bare cache repository; [`checkout_tree`] reads from it.
    pub repo: Repository,
}

impl std::fmt::Debug for Fetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetched")
            .field("commit", &self.commit)
            .field("subject", &self.subject)
            .field("repo", &self.repo.path())
            .finish()
    }
}

/// The full refname of a branch or tag, refusing names git would not accept (and so any refspec
/// syntax smuggled in a name).
pub(crate) fn refname(kind: &str, name: &str) -> Result<String, GitError> {
    let full = format!("refs/{kind}/{name}");
    if name.is_empty() || name.starts_with('-') || !git2::Reference::is_valid_name(&full) {
        return Err(GitError::Invalid {
            what: full,
            reason: "not a valid git reference name".into(),
        });
    }
    Ok(full)
}

/// Fetches `revision` of `remote` into the bare repository `cache_dir` (created when missing,
/// reused after: later fetches only transfer what is new) and resolves it to a commit.
///
/// Only what is needed is fetched: the branch, or the tag. A commit pin already in the cache
/// needs no network at all; otherwise the branches and tags are fetched and the commit looked up
/// among them (a commit no branch or tag reaches is asked for by id, which servers with
/// `uploadpack.allowReachableSHA1InWant` or `allowAnySHA1InWant` grant). One `cache_dir` per
/// source, used by one fetch at a time. Blocking: call from `spawn_blocking`.
pub fn fetch_revision(
    remote: &Remote,
    revision: &Revision,
    cache_dir: &Path,
) -> Result<Fetched, GitError> {
    let repo = match Repository::open_bare(cache_dir) {
        Ok(r) => r,
        Err(_) => Repository::init_bare(cache_dir)?,
    };
    let not_found = |reference: String| GitError::RefNotFound {
        url: remote.display_url(),
        reference,
    };
    let commit = match revision {
        Revision::Branch(b) => fetch_ref(remote, &repo, &refname("heads", b)?)?,
        Revision::Tag(t) => fetch_ref(remote, &repo, &refname("tags", t)?)?,
        Revision::Commit(c) => {
            if c.len() < 7 || c.len() > 40 || !c.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(GitError::Invalid {
                    what: c.clone(),
                    reason: "a commit pin is 7 to 40 hex digits".into(),
                });
            }
            let lookup = |repo: &Repository| repo.find_commit_by_prefix(c).ok().map(|c| c.id());
            match lookup(&repo) {
                Some(id) => id,
                None => {
                    fetch(
                        remote,
                        &repo,
                        &["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
                        None,
                    )?;
                    match lookup(&repo) {
                        Some(id) => id,
                        None if c.len() == 40 => {
                            // Not reachable from a branch or tag: ask for it by id. Servers that
                            // do not allow that refuse, which means: not found.
                            let _ = fetch(remote, &repo, &[c.as_str()], None);
                            lookup(&repo).ok_or_else(|| not_found(revision.to_string()))?
                        }
                        None => return Err(not_found(revision.to_string())),
                    }
                }
            }
        }
    };
    let c = repo.find_commit(commit)?;
    let subject = String::from_utf8_lossy(c.summary_bytes().unwrap_or_default()).into_owned();
    drop(c);
    Ok(Fetched {
        commit: commit.to_string(),
        subject,
        repo,
    })
}

/// Fetches `refname` (force: the cache follows the remote, even when it was rewritten) and
/// returns the commit it points to, peeled. Absent on the remote: [`GitError::RefNotFound`],
/// even when the cache still has it from an earlier fetch.
fn fetch_ref(remote: &Remote, repo: &Repository, refname: &str) -> Result<Oid, GitError> {
    let advertised = fetch(
        remote,
        repo,
        &[&format!("+{refname}:{refname}")],
        Some(refname),
    )?;
    if !advertised.iter().any(|r| r == refname) {
        return Err(GitError::RefNotFound {
            url: remote.display_url(),
            reference: refname.to_string(),
        });
    }
    let commit = repo.find_reference(refname)?.peel_to_commit()?;
    Ok(commit.id())
}

/// One fetch with `refspecs`; returns the refs the server advertised.
fn fetch(
    remote: &Remote,
    repo: &Repository,
    refspecs: &[&str],
    reference: Option<&str>,
) -> Result<Vec<String>, GitError> {
    let session = remote.session();
    let mut git_remote = repo.remote_anonymous(remote.url())?;
    let result = git_remote
        .fetch(
            refspecs,
            Some(&mut session.fetch_options()),
            Some("sluice: fetch"),
        )
        .and_then(|()| {
            Ok(git_remote
                .list()?
                .iter()
                .map(|h| h.name().to_string())
                .collect())
        });
    session.finish(result, reference)
}

/// Writes the files of `commit`'s tree into `dest` (created; must be empty), without `.git`:
/// what a renderer reads. Symlinks stay symlinks; one that points outside `dest` (absolute, or
/// climbing out with `..`) is refused, as is any entry name that is not a plain file name.
/// Submodules are left out.
pub fn checkout_tree(repo: &Repository, commit: &str, dest: &Path) -> Result<(), GitError> {
    let commit = repo.find_commit(Oid::from_str(commit)?)?;
    let tree = commit.tree()?;
    std::fs::create_dir_all(dest).map_err(|e| GitError::io(dest.display().to_string(), e))?;
    let not_empty = std::fs::read_dir(dest)
        .map_err(|e| GitError::io(dest.display().to_string(), e))?
        .next()
        .is_some();
    if not_empty {
        return Err(GitError::Invalid {
            what: dest.display().to_string(),
            reason: "the checkout directory is not empty".into(),
        });
    }
    let unsafe_path = |path: &str, reason: &str| GitError::Invalid {
        what: format!("{path} in commit {}", commit.id()),
        reason: reason.to_string(),
    };
    let mut links = Vec::new();
    let mut failure = None;
    tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
        let name = String::from_utf8_lossy(entry.name_bytes()).into_owned();
        let rel = format!("{dir}{name}");
        let step = (|| {
            if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
                return Err(unsafe_path(&rel, "not a plain file name"));
            }
            if name.eq_ignore_ascii_case(".git") {
                return Err(unsafe_path(&rel, "a .git entry"));
            }
            let path = dest.join(&rel);
            let io = |e| GitError::io(path.display().to_string(), e);
            match (entry.kind(), entry.filemode()) {
                (Some(ObjectType::Tree), _) => std::fs::create_dir(&path).map_err(io),
                (Some(ObjectType::Blob), 0o120000) => {
                    let blob = repo.find_blob(entry.id())?;
                    let target = String::from_utf8_lossy(blob.content()).into_owned();
                    if escapes(Path::new(&rel), Path::new(&target)) {
                        return Err(unsafe_path(
                            &rel,
                            &format!("a symlink out of the tree ({target})"),
                        ));
                    }
                    std::os::unix::fs::symlink(&target, &path).map_err(io)?;
                    links.push(path);
                    Ok(())
                }
                (Some(ObjectType::Blob), _) => {
                    let blob = repo.find_blob(entry.id())?;
                    std::fs::File::create_new(&path)
                        .and_then(|mut f| std::io::Write::write_all(&mut f, blob.content()))
                        .map_err(io)
                }
                _ => Ok(()), // a submodule's commit
            }
        })();
        match step {
            Ok(()) => git2::TreeWalkResult::Ok,
            Err(e) => {
                failure = Some(e);
                git2::TreeWalkResult::Abort
            }
        }
    })
    .or_else(|e| if failure.is_some() { Ok(()) } else { Err(e) })?;
    if let Some(e) = failure {
        return Err(e);
    }
    // Chains of links can climb out where no single link does: resolve each for real.
    let root = dest
        .canonicalize()
        .map_err(|e| GitError::io(dest.display().to_string(), e))?;
    for link in links {
        if let Ok(real) = link.canonicalize()
            && !real.starts_with(&root)
        {
            let rel = link
                .strip_prefix(dest)
                .unwrap_or(&link)
                .display()
                .to_string();
            return Err(unsafe_path(
                &rel,
                &format!("a symlink out of the tree (to {})", real.display()),
            ));
        }
    }
    Ok(())
}

/// Whether a symlink at `link` (relative to the root) to `target` leaves the root, judged on
/// the names alone.
fn escapes(link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return true;
    }
    let mut depth: Vec<PathBuf> = Vec::new();
    for c in link
        .parent()
        .into_iter()
        .flat_map(Path::components)
        .chain(target.components())
    {
        match c {
            Component::Normal(n) => depth.push(n.into()),
            Component::CurDir => {}
            Component::ParentDir => {
                if depth.pop().is_none() {
                    return true;
                }
            }
            Component::RootDir | Component::Prefix(_) => return true,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judges_symlink_targets_by_name() {
        assert!(!escapes(Path::new("a/link"), Path::new("../b/file")));
        assert!(!escapes(Path::new("link"), Path::new("./b")));
        assert!(escapes(Path::new("link"), Path::new("../outside")));
        assert!(escapes(Path::new("a/link"), Path::new("../../etc/passwd")));
        assert!(escapes(Path::new("a/link"), Path::new("/etc/passwd")));
    }

    #[test]
    fn refuses_names_that_are_no_refs() {
        assert!(refname("heads", "main").is_ok());
        assert!(refname("tags", "v1.2.3").is_ok());
        for bad in [
            "",
            "main:refs/heads/x",
            "a..b",
            "*",
            "-x",
            "with space",
            "x.lock",
        ] {
            assert!(refname("heads", bad).is_err(), "{bad:?}");
        }
    }
}
