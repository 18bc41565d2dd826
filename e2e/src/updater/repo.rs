//! Config repositories on the world's git server, as the updater's stories seed and read them.

use std::time::Duration;

use git2::{Oid, Repository};

use super::DEADLINE;
use crate::{World, unique_name, wait_until};

/// Seeds a repository `<prefix>-…` with `files`; returns its name and the seed commit.
pub async fn seed<T: AsRef<[u8]>>(
    world: &World,
    prefix: &str,
    files: &[(&str, T)],
) -> (String, Oid) {
    let name = unique_name(prefix);
    let dir = crate::files_dir(files);
    let commit = world
        .git_seed(&name, Some(dir.path()))
        .await
        .expect("git-seed prints the seed commit");
    (name, Oid::from_str(&commit).unwrap())
}

/// A marked Deployment of `image:tag` for the policy `ns:policy`, with comments and odd
/// spacing that must survive the edit.
pub fn deployment(name: &str, image: &str, tag: &str, ns: &str, policy: &str) -> String {
    format!(
        "---\n# The {name} app.\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  template:\n    spec:\n      containers:\n        - name: {name}   # the app\n          image: {image}:{tag} # {{\"$imagepolicy\": \"{ns}:{policy}\"}}\n          ports: [ {{containerPort: 8080}} ]\n"
    )
}

/// The tip of `main` on the server.
pub fn tip(world: &World, repo: &str) -> Oid {
    world.git_main_on_server(repo)
}

/// The message of `commit` in the server's repository.
pub fn message(world: &World, repo: &str, commit: Oid) -> String {
    let bare = Repository::open_bare(world.git_bare_repo(repo)).unwrap();
    let commit = bare.find_commit(commit).unwrap();
    commit.message().unwrap_or_default().to_owned()
}

/// The first parent of `commit`.
pub fn parent(world: &World, repo: &str, commit: Oid) -> Oid {
    let bare = Repository::open_bare(world.git_bare_repo(repo)).unwrap();
    bare.find_commit(commit).unwrap().parent_id(0).unwrap()
}

/// `path` at main on the server.
pub fn file(world: &World, repo: &str, path: &str) -> String {
    world.git_file_on_server(repo, path).1
}

/// Waits for main to move away from `from`; returns the new tip.
pub async fn next_commit(world: &World, repo: &str, from: Oid) -> Oid {
    wait_until(
        &format!("a commit on main after {from}"),
        DEADLINE,
        || async {
            let now = tip(world, repo);
            if now != from {
                Ok(now)
            } else {
                Err(format!("main is still {from}"))
            }
        },
    )
    .await
}

/// Main stays at `at` for `quiet` (nothing is committed).
pub async fn stays(world: &World, repo: &str, at: Oid, quiet: Duration) {
    let until = std::time::Instant::now() + quiet;
    while std::time::Instant::now() < until {
        assert_eq!(tip(world, repo), at, "nothing may be committed");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The `Sluice-Change:` trailers of a message.
pub fn trailers(message: &str) -> Vec<String> {
    message
        .lines()
        .filter(|l| l.starts_with("Sluice-Change: "))
        .map(str::to_owned)
        .collect()
}

/// Commits on main since `seed`, and main's image line of [`super::WEB_FILE`] (trimmed): what
/// a story of bumps counts.
pub fn bumps_since(world: &World, repo: &str, seed: &str) -> (usize, String) {
    let git = |args: &[&str]| crate::sync::git_in(world, repo, args);
    let count = git(&["rev-list", "--count", &format!("{seed}..main")]);
    let file = git(&["show", &format!("main:{}", super::WEB_FILE)]);
    let image = file
        .lines()
        .find(|l| l.contains("image:"))
        .unwrap_or("")
        .trim()
        .to_owned();
    (count.trim().parse().unwrap(), image)
}
