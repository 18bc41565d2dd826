//! Git helpers of the world_git* tests: seeded repositories, the world's credentials as
//! Sluice's git layer takes them, and a look at the server's own bare repositories.

use std::path::Path;

use git2::{Oid, Repository};
use sluice_shared::git::{self, Author, FileChange, GitAuth, KnownHosts, Remote};

use crate::{World, unique_name};

/// A deploy repo as Sluice would find it: one app, one environment.
pub fn seed_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::create_dir_all(dir.path().join("apps/web")).unwrap();
    std::fs::write(
        dir.path().join("apps/web/deployment.yaml"),
        "# The web app, deployed by Sluice.\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("README.md"),
        "Deploy repo of the e2e tests.\n",
    )
    .unwrap();
    dir
}

impl World {
    /// Seeds a repository of the caller's own from [`seed_dir`]; returns its name and the seed
    /// commit.
    pub async fn git_seeded(&self, prefix: &str) -> (String, Oid) {
        let name = unique_name(prefix);
        let seed = seed_dir();
        let commit = self
            .git_seed(&name, Some(seed.path()))
            .await
            .expect("git-seed prints the seed commit");
        let oid =
            Oid::from_str(&commit).unwrap_or_else(|e| panic!("git-seed printed {commit:?}: {e}"));
        (name, oid)
    }

    /// Basic auth with the git server's user and password.
    pub fn git_basic_auth(&self) -> GitAuth {
        let (user, password) = self.git_credentials();
        GitAuth::basic(user, password)
    }

    /// The SSH key the git server accepts, trusting `known_hosts`.
    pub fn git_ssh_auth(&self, known_hosts: KnownHosts) -> GitAuth {
        let key = std::fs::read_to_string(self.git_ssh_key()).expect("the world's ssh key");
        GitAuth::ssh_key(key).with_known_hosts(known_hosts)
    }

    /// The world's known_hosts, loaded.
    pub fn git_known_hosts_loaded(&self) -> KnownHosts {
        KnownHosts::load(&self.git_known_hosts()).expect("the world's known_hosts")
    }

    /// The tip of `main` in the server's bare repository `name`.
    pub fn git_main_on_server(&self, name: &str) -> Oid {
        Repository::open_bare(self.git_bare_repo(name))
            .expect("the bare repo on the server")
            .refname_to_id("refs/heads/main")
            .expect("main on the server")
    }

    /// The tip of `main` on the server, and the content of `path` there.
    pub fn git_file_on_server(&self, name: &str, path: &str) -> (Oid, String) {
        let bare =
            Repository::open_bare(self.git_bare_repo(name)).expect("the bare repo on the server");
        let tip = bare
            .find_reference("refs/heads/main")
            .unwrap()
            .peel_to_commit()
            .unwrap();
        let entry = tip
            .tree()
            .unwrap()
            .get_path(Path::new(path))
            .unwrap_or_else(|_| panic!("{path} at main"));
        let blob = bare.find_blob(entry.id()).unwrap();
        (
            tip.id(),
            String::from_utf8_lossy(blob.content()).into_owned(),
        )
    }
}

/// A [`Remote`], or a panic naming the URL.
pub fn remote(url: &str, auth: GitAuth) -> Remote {
    Remote::new(url, auth).unwrap_or_else(|e| panic!("remote {url}: {e}"))
}

/// The author of the tests' commits.
pub fn me() -> Author {
    Author {
        name: "Sluice E2E".into(),
        email: "e2e@sluice.dev".into(),
    }
}

/// A change that writes `content` to `path`.
pub fn write(path: &str, content: &str) -> FileChange {
    FileChange::Write {
        path: path.into(),
        content: content.as_bytes().to_vec(),
    }
}

/// The commit HEAD points to.
pub fn head(repo: &Repository) -> Oid {
    repo.head().unwrap().peel_to_commit().unwrap().id()
}

/// Clones `main` of `remote` into a temp dir, commits `path` = `content` and pushes; returns the
/// commit. What "someone else pushed" looks like.
pub fn push_change(remote: &Remote, path: &str, content: &str, message: &str) -> Oid {
    let work = tempfile::tempdir().unwrap();
    let repo = git::clone_or_open(remote, "main", work.path())
        .unwrap_or_else(|e| panic!("clone {}: {e}", remote.display_url()));
    let commit = git::commit(&repo, "main", &[write(path, content)], &me(), message)
        .unwrap()
        .expect("a change");
    git::push(&repo, remote, "main").unwrap_or_else(|e| panic!("push: {e}"));
    commit
}

/// Runs blocking git work off the async runtime.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("the git work panicked")
}

/// A loopback port nothing listens on.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
