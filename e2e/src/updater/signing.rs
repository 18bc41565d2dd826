//! SSH signing keys made with the real `ssh-keygen`, and signed commits checked with the real
//! `git verify-commit` in a clone of the server's repository.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::World;

/// Makes a key of `kind` (`ssh-keygen` arguments such as `["-t", "ed25519"]`) with the real
/// `ssh-keygen`; returns (private key text, public key line).
pub fn keygen(dir: &Path, name: &str, kind: &[&str], passphrase: &str) -> (String, String) {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-C", "sluice-e2e", "-N", passphrase, "-f"])
        .arg(&path)
        .args(kind)
        .output()
        .expect("ssh-keygen runs");
    assert!(out.status.success(), "ssh-keygen: {out:?}");
    (
        std::fs::read_to_string(&path).unwrap(),
        std::fs::read_to_string(path.with_extension("pub")).unwrap(),
    )
}

/// The git CLI in `dir`, away from the machine's and the user's configuration.
pub fn git(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .args(args)
        .output()
        .expect("git runs")
}

/// Clones the server's repository `repo` with the git CLI into `<dir>/config`; returns that path.
pub fn clone_from_server(world: &World, repo: &str, dir: &Path) -> PathBuf {
    let bare = world.git_bare_repo(repo).display().to_string();
    let out = git(dir, &["clone", "--quiet", &bare, "config"]);
    assert!(out.status.success(), "git clone: {out:?}");
    dir.join("config")
}

/// `git verify-commit` of `commit` in `clone`, trusting `allowed` (`<email> <public key>`
/// lines): (accepted, what git said).
pub fn verify(clone: &Path, allowed: &str, commit: &str) -> (bool, String) {
    let file = clone.join(".git").join("allowed_signers");
    std::fs::write(&file, allowed).unwrap();
    let out = git(
        clone,
        &[
            "-c",
            "gpg.format=ssh",
            "-c",
            &format!("gpg.ssh.allowedSignersFile={}", file.display()),
            "verify-commit",
            "--raw",
            commit,
        ],
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}
