//! The world's git server, reached through Sluice's own git layer (`sluice_shared::git`): how
//! it authenticates and whom it trusts.
//!
//! Over HTTP(S) with basic auth and over SSH with a key and known_hosts enforced, a repository
//! is cloned, a commit pushed and found on the server; credentials can come from a Flux-style
//! Secret. Wrong credentials, unknown or changed host keys, an untrusted CA, a closed port, a
//! stalled server and a missing repository are refused with errors that say so.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine;
use sluice_e2e::git_support::{blocking, closed_port, head, me, remote, write};
use sluice_e2e::{World, unique_name};
use sluice_shared::git::{self, CaCerts, GitAuth, GitError, KnownHosts, Remote, Revision};

#[tokio::test]
async fn clone_commit_and_push_over_http_with_basic_auth() {
    let world = World::get();
    let (name, seed) = world.git_seeded("git-http").await;
    let http = remote(&world.git_http_url(&name), world.git_basic_auth());

    let pushed = blocking(move || {
        let work = tempfile::tempdir().unwrap();
        let repo =
            git::clone_or_open(&http, "main", work.path()).unwrap_or_else(|e| panic!("clone: {e}"));
        assert_eq!(
            http.last_transcript().credentials_asked,
            1,
            "credentials asked once"
        );
        assert_eq!(head(&repo), seed);
        assert!(
            work.path().join("apps/web/deployment.yaml").exists(),
            "the seed is checked out"
        );

        let image = write("apps/web/image.txt", "127.0.0.1:15000/demo/app:1.4.2\n");
        let commit = git::commit(
            &repo,
            "main",
            std::slice::from_ref(&image),
            &me(),
            "web: 1.4.2",
        )
        .unwrap()
        .expect("a commit");
        assert_eq!(
            git::commit(&repo, "main", &[image], &me(), "web: 1.4.2 again").unwrap(),
            None,
            "the same bytes again: no empty commit"
        );
        git::push(&repo, &http, "main").unwrap_or_else(|e| panic!("push: {e}"));
        // None: the server accepted the update of main.
        assert_eq!(
            http.last_transcript().pushed,
            vec![("refs/heads/main".to_string(), None)]
        );
        // Pushing what the server already has is no error.
        git::push(&repo, &http, "main").unwrap_or_else(|e| panic!("a no-op push: {e}"));
        commit
    })
    .await;

    let (tip, content) = world.git_file_on_server(&name, "apps/web/image.txt");
    assert_eq!(tip, pushed, "main on the server is the pushed commit");
    assert_eq!(content, "127.0.0.1:15000/demo/app:1.4.2\n");

    // A fresh clone over HTTPS (same basic auth), trusting the world's CA for this source only,
    // has the commit too.
    let ca = CaCerts::from_pem(&world.ca_pem()).expect("the world CA");
    let https = remote(
        &world.git_https_url(&name),
        world.git_basic_auth().with_ca(ca),
    );
    blocking(move || {
        let work = tempfile::tempdir().unwrap();
        let repo = git::clone_or_open(&https, "main", work.path())
            .unwrap_or_else(|e| panic!("clone: {e}"));
        assert_eq!(head(&repo), pushed);
        let content = std::fs::read_to_string(work.path().join("apps/web/image.txt")).unwrap();
        assert_eq!(content, "127.0.0.1:15000/demo/app:1.4.2\n");
    })
    .await;
}

#[tokio::test]
async fn an_https_server_of_an_unknown_ca_is_refused() {
    let world = World::get();
    let (name, _) = world.git_seeded("git-tls").await;
    let url = world.git_https_url(&name);
    let https = remote(&url, world.git_basic_auth());
    let err = blocking(move || {
        let work = tempfile::tempdir().unwrap();
        git::clone_or_open(&https, "main", work.path())
            .err()
            .expect("no CA trusts the world's server certificate")
    })
    .await;
    assert!(
        matches!(&err, GitError::Tls { url: u, .. } if *u == url),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("ca.crt"),
        "says how to fix it: {err}"
    );
}

#[tokio::test]
async fn a_wrong_password_is_refused_as_an_authentication_failure() {
    let world = World::get();
    let (name, _) = world.git_seeded("git-badpw").await;
    let url = world.git_http_url(&name);
    let (user, _) = world.git_credentials();
    let http = remote(&url, GitAuth::basic(user, "not-the-password"));

    let (err, asked) = blocking(move || {
        let work = tempfile::tempdir().unwrap();
        let err = git::clone_or_open(&http, "main", work.path())
            .err()
            .expect("a clone with a wrong password must fail");
        (err, http.last_transcript().credentials_asked)
    })
    .await;
    // The server challenged again after our one answer: it rejected the password.
    assert_eq!(asked, 2, "asked for credentials, then asked again ({err})");
    assert!(
        matches!(&err, GitError::Auth { url: u, .. } if *u == url),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("authentication") && message.contains(&format!("{user:?}")),
        "the error says what failed, and for whom: {message}"
    );
    assert!(!message.contains("not-the-password"), "{message}");
}

#[tokio::test]
async fn an_ssh_key_the_server_does_not_know_is_refused_as_an_authentication_failure() {
    let world = World::get();
    let (name, _) = world.git_seeded("git-badkey").await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("stranger");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "stranger", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen runs");
    assert!(made.success());
    let auth = GitAuth::ssh_key(std::fs::read_to_string(&key).unwrap())
        .with_known_hosts(world.git_known_hosts_loaded());
    let url = world.git_ssh_url(&name);
    let ssh = remote(&url, auth);
    let (err, transcript) = blocking(move || {
        let work = tempfile::tempdir().unwrap();
        let err = git::clone_or_open(&ssh, "main", work.path())
            .err()
            .expect("an unknown key must be refused");
        (err, ssh.last_transcript())
    })
    .await;
    assert_eq!(transcript.host_keys_checked, 1, "the host was trusted");
    assert!(
        matches!(&err, GitError::Auth { url: u, reason } if *u == url && reason.contains("rejected the ssh key")),
        "{err:?} ({transcript:?})"
    );
    assert!(!err.to_string().contains("PRIVATE KEY"), "{err}");
}

#[tokio::test]
async fn clone_commit_and_push_over_ssh_with_known_hosts_enforced() {
    let world = World::get();
    let (name, seed) = world.git_seeded("git-ssh").await;
    let ssh = remote(
        &world.git_ssh_url(&name),
        world.git_ssh_auth(world.git_known_hosts_loaded()),
    );

    let pushed = blocking(move || {
        let work = tempfile::tempdir().unwrap();
        let repo =
            git::clone_or_open(&ssh, "main", work.path()).unwrap_or_else(|e| panic!("clone: {e}"));
        let t = ssh.last_transcript();
        assert_eq!(t.host_keys_checked, 1, "the host key was checked");
        assert!(t.credentials_asked >= 1, "the key was offered");
        assert_eq!(head(&repo), seed);

        let commit = git::commit(
            &repo,
            "main",
            &[write("apps/web/replicas.txt", "3\n")],
            &me(),
            "web: 3 replicas",
        )
        .unwrap()
        .expect("a commit");
        git::push(&repo, &ssh, "main").unwrap_or_else(|e| panic!("push: {e}"));
        let t = ssh.last_transcript();
        assert_eq!(t.host_keys_checked, 1, "checked again for the push");
        assert_eq!(t.pushed, vec![("refs/heads/main".to_string(), None)]);
        commit
    })
    .await;

    let (tip, content) = world.git_file_on_server(&name, "apps/web/replicas.txt");
    assert_eq!(tip, pushed, "main on the server is the pushed commit");
    assert_eq!(content, "3\n");
}

/// Clones over SSH with `known_hosts` as the only trusted host keys, which must be refused before
/// any credential is offered. Returns the error's host and reason.
async fn ssh_clone_refused(world: &World, prefix: &str, known_hosts: &str) -> (String, String) {
    let (name, _) = world.git_seeded(prefix).await;
    let known_hosts = KnownHosts::parse(known_hosts).with_source("the test's known_hosts");
    let ssh = remote(&world.git_ssh_url(&name), world.git_ssh_auth(known_hosts));
    blocking(move || {
        let work = tempfile::tempdir().unwrap();
        let err = git::clone_or_open(&ssh, "main", work.path())
            .err()
            .expect("the clone must be refused");
        let t = ssh.last_transcript();
        assert_eq!(t.host_keys_checked, 1, "the host key was checked: {err}");
        assert_eq!(
            t.credentials_asked, 0,
            "no key offered to an untrusted host: {err}"
        );
        assert!(
            !work.path().join("README.md").exists(),
            "nothing was checked out"
        );
        assert_eq!(err.kind(), "host_key", "{err:?}");
        let GitError::HostKey { host, reason } = err else {
            unreachable!()
        };
        (host, reason)
    })
    .await
}

#[tokio::test]
async fn an_ssh_host_not_in_known_hosts_is_refused() {
    let world = World::get();
    let (host, why) = ssh_clone_refused(world, "git-unknown-host", "").await;
    assert!(host.starts_with("[127.0.0.1]:"), "names the host: {host}");
    assert!(why.contains("host key verification failed"), "{why}");
    assert!(
        why.contains(&format!("{host} is not in the test's known_hosts")),
        "the reason names the unknown host and the known_hosts: {why}"
    );
    assert!(
        why.contains("ssh-ed25519 SHA256:"),
        "and the key it offered: {why}"
    );
}

#[tokio::test]
async fn a_changed_ssh_host_key_is_refused() {
    let world = World::get();
    // The host as known_hosts names it, with an ed25519 key that is not the server's.
    let real = world.git_known_hosts_loaded();
    let entry = real
        .entries
        .first()
        .expect("the world's known_hosts has an entry");
    let mut blob = Vec::new();
    for part in [&b"ssh-ed25519"[..], &[7u8; 32][..]] {
        blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
        blob.extend_from_slice(part);
    }
    let forged = format!(
        "{} ssh-ed25519 {}\n",
        entry.patterns[0],
        base64::engine::general_purpose::STANDARD.encode(&blob)
    );
    let (host, why) = ssh_clone_refused(world, "git-changed-host", &forged).await;
    assert!(
        why.contains("host key verification failed")
            && why.contains(&format!("the host key of {host}"))
            && why.contains("does not match the test's known_hosts"),
        "{why}"
    );
    let offered = git::known_hosts::fingerprint(&entry.key);
    let recorded = git::known_hosts::fingerprint(&blob);
    assert!(
        why.contains(&format!("ssh-ed25519 {offered}")),
        "names the key offered: {why}"
    );
    assert!(why.contains(&recorded), "and the one recorded: {why}");
}

#[tokio::test]
async fn an_ssh_remote_without_known_hosts_is_refused_before_connecting() {
    let world = World::get();
    let key = std::fs::read_to_string(world.git_ssh_key()).unwrap();
    let err = Remote::new(world.git_ssh_url("any"), GitAuth::ssh_key(key))
        .expect_err("no trust on first use");
    assert!(
        matches!(&err, GitError::HostKey { host, reason } if host.starts_with("[127.0.0.1]:") && reason.contains("known_hosts")),
        "{err:?}"
    );
}

/// The `data` of a Secret as a user would write it for Flux, from the world's files.
fn secret_data(pairs: &[(&str, Vec<u8>)]) -> BTreeMap<String, Vec<u8>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

#[tokio::test]
async fn fetch_over_ssh_and_https_with_credentials_from_a_secret() {
    let world = World::get();
    let (name, seed) = world.git_seeded("git-fetch-auth").await;
    let read = |p: std::path::PathBuf| {
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    let ssh_secret = secret_data(&[
        ("identity", read(world.git_ssh_key())),
        (
            "identity.pub",
            read(world.git_ssh_key().with_extension("pub")),
        ),
        ("known_hosts", read(world.git_known_hosts())),
    ]);
    let (user, password) = world.git_credentials();
    let https_secret = secret_data(&[
        ("username", format!("{user}\n").into_bytes()),
        ("password", password.as_bytes().to_vec()),
        ("ca.crt", world.ca_pem()),
    ]);
    let ssh = remote(
        &world.git_ssh_url(&name),
        GitAuth::from_secret_data(&ssh_secret).expect("the ssh Secret"),
    );
    let https = remote(
        &world.git_https_url(&name),
        GitAuth::from_secret_data(&https_secret).expect("the https Secret"),
    );
    let shown = format!("{ssh:?} {https:?}");
    assert!(
        !shown.contains(password) && !shown.contains("PRIVATE KEY"),
        "no secret in Debug: {shown}"
    );
    blocking(move || {
        for r in [ssh, https] {
            let cache = tempfile::tempdir().unwrap();
            let fetched = git::fetch_revision(&r, &Revision::Branch("main".into()), cache.path())
                .unwrap_or_else(|e| panic!("fetch {}: {e}", r.display_url()));
            assert_eq!(fetched.commit, seed.to_string(), "{}", r.display_url());
        }
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_server_is_reported_as_unreachable() {
    let world = World::get();
    let port = closed_port();
    let http_url = format!("http://127.0.0.1:{port}/deploy.git");
    let ssh_url = format!("ssh://git@127.0.0.1:{port}/deploy.git");
    let http = remote(&http_url, world.git_basic_auth());
    let ssh = remote(&ssh_url, world.git_ssh_auth(world.git_known_hosts_loaded()));
    blocking(move || {
        for (r, url) in [(http, http_url), (ssh, ssh_url)] {
            let cache = tempfile::tempdir().unwrap();
            let err = git::fetch_revision(&r, &Revision::Branch("main".into()), cache.path())
                .unwrap_err();
            assert!(
                matches!(&err, GitError::Unreachable { url: u, .. } if *u == url),
                "{url}: {err:?}"
            );
            assert!(err.to_string().contains(&url), "{err}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_missing_repository_is_reported_as_such() {
    let world = World::get();
    let name = unique_name("git-missing");
    let url = world.git_http_url(&name);
    let http = remote(&url, world.git_basic_auth());
    let err = blocking(move || {
        let cache = tempfile::tempdir().unwrap();
        git::fetch_revision(&http, &Revision::Branch("main".into()), cache.path()).unwrap_err()
    })
    .await;
    assert!(
        matches!(&err, GitError::RepoNotFound { url: u, .. } if *u == url),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_server_that_stalls_times_out_as_unreachable() {
    // Accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/deploy.git", listener.local_addr().unwrap());
    let http = remote(&url, GitAuth::none());
    let err = blocking(move || {
        // Process-wide; generous enough for every other test of this binary on a busy machine.
        git::set_network_timeouts(Duration::from_secs(10), Duration::from_secs(10)).unwrap();
        let cache = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let err =
            git::fetch_revision(&http, &Revision::Branch("main".into()), cache.path()).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(60), "{err}");
        drop(listener);
        err
    })
    .await;
    assert!(
        matches!(&err, GitError::Unreachable { url: u, reason } if *u == url && reason.contains("timed out")),
        "{err:?}"
    );
}
