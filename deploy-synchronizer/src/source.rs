//! Fetching a sync's source: its credentials from the Secret it names, the revision into a
//! cache kept per source, and a checkout of that revision's files into a temporary directory
//! that disappears when the sync is done with it.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use sluice_shared::git::{self, GitAuth, GitError, Remote, Revision};
use tempfile::TempDir;

use crate::resource::{GitRef, Source};

/// The source could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read Secret {namespace}/{name} named by spec.source.secretRef: {error}")]
    SecretUnreadable {
        namespace: String,
        name: String,
        #[source]
        error: kube::Error,
    },
    #[error("Secret {namespace}/{name} named by spec.source.secretRef: {error}")]
    SecretInvalid {
        namespace: String,
        name: String,
        #[source]
        error: git::SecretError,
    },
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("cannot prepare the checkout directory under {}: {error}", dir.display())]
    CheckoutDir {
        dir: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("the git worker stopped: {0}")]
    Worker(String),
    /// The revision was fetched, but its tree holds what may not be checked out (a symlink
    /// leading out of it, a `.git` entry): the commit must change, retrying cannot help.
    #[error("{error} in commit {commit}")]
    UnsafeTree {
        commit: String,
        subject: String,
        #[source]
        error: GitError,
    },
}

/// One revision's files on disk, removed on drop.
#[derive(Debug)]
pub struct Checkout {
    pub commit: String,
    pub subject: String,
    pub dir: TempDir,
}

impl Checkout {
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}

/// The revision a source asks for; default: branch `main`.
pub fn revision_of(source: &Source) -> Revision {
    match &source.reference {
        None => Revision::Branch("main".to_owned()),
        Some(GitRef::Branch(branch)) => Revision::Branch(branch.clone()),
        Some(GitRef::Tag(tag)) => Revision::Tag(tag.clone()),
        Some(GitRef::Commit(commit)) => Revision::Commit(commit.clone()),
    }
}

/// The credentials of `source`, read from its Secret in `namespace`. Secret data never leaves
/// [`GitAuth`], whose `Debug` prints none of it.
pub async fn auth_of(
    client: &Client,
    namespace: &str,
    source: &Source,
) -> Result<GitAuth, SourceError> {
    let Some(secret_ref) = &source.secret_ref else {
        return Ok(GitAuth::none());
    };
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret =
        api.get(&secret_ref.name)
            .await
            .map_err(|error| SourceError::SecretUnreadable {
                namespace: namespace.to_owned(),
                name: secret_ref.name.clone(),
                error,
            })?;
    GitAuth::from_secret_data(&secret_data(secret)).map_err(|error| SourceError::SecretInvalid {
        namespace: namespace.to_owned(),
        name: secret_ref.name.clone(),
        error,
    })
}

/// A Secret's keys and values: `data`, with `stringData` folded in as the API server stores it.
pub fn secret_data(secret: Secret) -> BTreeMap<String, Vec<u8>> {
    secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| (key, value.0))
        .chain(
            secret
                .string_data
                .unwrap_or_default()
                .into_iter()
                .map(|(key, value)| (key, value.into_bytes())),
        )
        .collect()
}

/// Where the bare cache of `url` for sync `namespace/name` lives below `cache_root`: one per
/// sync and URL, so a changed URL starts a fresh cache and two syncs never share one.
pub fn cache_dir(cache_root: &Path, namespace: &str, name: &str, url: &str) -> PathBuf {
    let mut hasher = DefaultHasher::new();
    url.hash(&mut hasher);
    cache_root
        .join("sources")
        .join(namespace)
        .join(format!("{name}-{:016x}", hasher.finish()))
}

/// Fetches `revision` of `url` into `cache` and checks its files out into a new temporary
/// directory below `cache_root`.
pub async fn fetch(
    url: &str,
    auth: GitAuth,
    revision: Revision,
    cache: PathBuf,
    cache_root: &Path,
) -> Result<Checkout, SourceError> {
    let checkouts = cache_root.join("checkouts");
    let url = url.to_owned();
    let work = move || -> Result<Checkout, SourceError> {
        let remote = Remote::new(url, auth)?;
        std::fs::create_dir_all(&checkouts).map_err(|error| SourceError::CheckoutDir {
            dir: checkouts.clone(),
            error,
        })?;
        let started = std::time::Instant::now();
        let fetched = git::fetch_revision(&remote, &revision, &cache)?;
        let fetch_took = started.elapsed();
        let dir = tempfile::Builder::new()
            .prefix("rev-")
            .tempdir_in(&checkouts)
            .map_err(|error| SourceError::CheckoutDir {
                dir: checkouts.clone(),
                error,
            })?;
        match git::checkout_tree(&fetched.repo, &fetched.commit, dir.path()) {
            Ok(()) => {}
            Err(error @ GitError::Invalid { .. }) => {
                return Err(SourceError::UnsafeTree {
                    commit: fetched.commit,
                    subject: fetched.subject,
                    error,
                });
            }
            Err(error) => return Err(error.into()),
        }
        tracing::debug!(commit = %fetched.commit, fetch_ms = fetch_took.as_millis() as u64,
            checkout_ms = (started.elapsed() - fetch_took).as_millis() as u64, "checked out");
        Ok(Checkout {
            commit: fetched.commit,
            subject: fetched.subject,
            dir,
        })
    };
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| SourceError::Worker(error.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_revision_is_main() {
        assert_eq!(
            revision_of(&Source::default()),
            Revision::Branch("main".into())
        );
        let pinned = Source {
            reference: Some(GitRef::Tag("v1".into())),
            ..Source::default()
        };
        assert_eq!(revision_of(&pinned), Revision::Tag("v1".into()));
    }

    #[test]
    fn caches_are_per_sync_and_url() {
        let root = Path::new("/cache");
        let a = cache_dir(root, "shop", "web", "https://git/a.git");
        assert_eq!(a, cache_dir(root, "shop", "web", "https://git/a.git"));
        assert_ne!(a, cache_dir(root, "shop", "web", "https://git/b.git"));
        assert_ne!(a, cache_dir(root, "shop", "api", "https://git/a.git"));
        assert!(a.starts_with("/cache/sources/shop"));
    }
}
