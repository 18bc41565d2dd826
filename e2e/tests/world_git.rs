//! The world's git server, reached the way Sluice reaches git: libgit2 (git2) with credential
//! callbacks. Over HTTP with basic auth and over SSH with a key and known_hosts enforced, a
//! repository is cloned, a commit pushed and found on the server; wrong credentials and unknown
//! or changed host keys are refused with errors that say so.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

use base64::Engine;
use git2::build::RepoBuilder;
use git2::{
    CertificateCheckStatus, Cred, CredentialType, ErrorClass, ErrorCode, FetchOptions, Oid,
    PushOptions, RemoteCallbacks, Repository, Signature,
};
use sluice_e2e::known_hosts::KnownHosts;
use sluice_e2e::{World, unique_name};

/// A deploy repo as Sluice would find it: one app, one environment.
fn seed_dir() -> tempfile::TempDir {
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

/// How a test authenticates: what the credential and host-key callbacks answer.
#[derive(Clone)]
enum Auth {
    Basic {
        user: String,
        password: String,
    },
    Ssh {
        key: PathBuf,
        known_hosts: KnownHosts,
        port: u16,
    },
}

impl Auth {
    fn http(world: &World) -> Auth {
        let (user, password) = world.git_credentials();
        Auth::Basic {
            user: user.into(),
            password: password.into(),
        }
    }

    fn ssh(world: &World, known_hosts: KnownHosts) -> Auth {
        let url = world.git_ssh_url("x");
        let port = url
            .strip_prefix("ssh://")
            .and_then(|rest| rest.split('/').next())
            .and_then(|authority| authority.rsplit_once(':'))
            .and_then(|(_, port)| port.parse().ok())
            .unwrap_or(22);
        Auth::Ssh {
            key: world.git_ssh_key(),
            known_hosts,
            port,
        }
    }
}

/// What the callbacks were asked and answered during one operation.
#[derive(Default)]
struct Calls {
    credentials: AtomicUsize,
    host_checks: AtomicUsize,
    /// Why the host key was refused: libgit2 replaces the callback's message with its own
    /// ("invalid or unknown remote ssh hostkey"), so the reason is kept here to report.
    host_key_refused: Mutex<Option<String>>,
    pushed: Mutex<Vec<(String, Option<String>)>>,
}

/// The callbacks Sluice needs: credentials offered once (a rejected credential is an error, not an
/// endless retry), SSH host keys checked against known_hosts, push results recorded.
fn callbacks<'a>(auth: &'a Auth, calls: &'a Calls) -> RemoteCallbacks<'a> {
    let mut cb = RemoteCallbacks::new();
    cb.credentials(move |url, username_from_url, allowed| {
        let n = calls.credentials.fetch_add(1, Ordering::SeqCst);
        match auth {
            Auth::Basic { user, password } if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) => {
                if n > 0 {
                    // Asked again: the server refused what we gave.
                    return Err(git2::Error::new(
                        ErrorCode::Auth,
                        ErrorClass::Http,
                        format!("authentication failed for {url}: the server rejected the password of user {user:?}"),
                    ));
                }
                Cred::userpass_plaintext(user, password)
            }
            Auth::Ssh { .. } if allowed.contains(CredentialType::USERNAME) => {
                Cred::username(username_from_url.unwrap_or("git"))
            }
            Auth::Ssh { key, .. } if allowed.contains(CredentialType::SSH_KEY) => {
                if n > 1 {
                    return Err(git2::Error::new(
                        ErrorCode::Auth,
                        ErrorClass::Ssh,
                        format!("authentication failed for {url}: the server rejected the key {}", key.display()),
                    ));
                }
                let public = key.with_extension("pub");
                let public = public.exists().then_some(public);
                Cred::ssh_key(username_from_url.unwrap_or("git"), public.as_deref(), key, None)
            }
            _ => Err(git2::Error::new(
                ErrorCode::Auth,
                ErrorClass::Net,
                format!("authentication required for {url}, but not of a kind we have ({allowed:?})"),
            )),
        }
    });
    cb.certificate_check(move |cert, host| {
        // TLS certificates are libgit2's to check (against the CA set in trust_world_ca).
        let (
            Some(hostkey),
            Auth::Ssh {
                known_hosts, port, ..
            },
        ) = (cert.as_hostkey(), auth)
        else {
            return Ok(CertificateCheckStatus::CertificatePassthrough);
        };
        calls.host_checks.fetch_add(1, Ordering::SeqCst);
        known_hosts
            .verify(host, *port, hostkey)
            .map(|()| CertificateCheckStatus::CertificateOk)
            .map_err(|why| {
                *calls.host_key_refused.lock().unwrap() = Some(why.clone());
                git2::Error::new(ErrorCode::Certificate, ErrorClass::Ssh, why)
            })
    });
    cb.push_update_reference(move |refname, status| {
        calls
            .pushed
            .lock()
            .unwrap()
            .push((refname.to_string(), status.map(str::to_string)));
        Ok(())
    });
    cb
}

/// libgit2 (OpenSSL) trusts the world's CA, for HTTPS.
fn trust_world_ca(world: &World) {
    static ONCE: Once = Once::new();
    let ca = world.ca_file();
    ONCE.call_once(|| {
        // SAFETY: set once per process, before any HTTPS transfer of this test binary.
        unsafe { git2::opts::set_ssl_cert_file(ca.as_os_str()) }
            .expect("libgit2 takes the world CA");
    });
}

fn clone(url: &str, into: &Path, auth: &Auth, calls: &Calls) -> Result<Repository, git2::Error> {
    let mut fetch = FetchOptions::new();
    fetch.remote_callbacks(callbacks(auth, calls));
    RepoBuilder::new()
        .branch("main")
        .fetch_options(fetch)
        .clone(url, into)
}

/// Commits `content` at `path` on the checked-out branch.
fn commit_file(repo: &Repository, path: &str, content: &str, message: &str) -> Oid {
    let file = repo.workdir().expect("a work tree").join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, content).unwrap();
    let mut index = repo.index().unwrap();
    index.add_path(Path::new(path)).unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let parent = repo.head().unwrap().peel_to_commit().unwrap();
    let me = Signature::now("Sluice E2E", "e2e@sluice.dev").unwrap();
    repo.commit(Some("HEAD"), &me, &me, message, &tree, &[&parent])
        .unwrap()
}

fn push_main(repo: &Repository, auth: &Auth, calls: &Calls) -> Result<(), git2::Error> {
    let mut push = PushOptions::new();
    push.remote_callbacks(callbacks(auth, calls));
    repo.find_remote("origin")?
        .push(&["refs/heads/main:refs/heads/main"], Some(&mut push))
}

/// The content of `path` at the tip of `main` in the server's bare repository.
fn on_server(world: &World, name: &str, path: &str) -> (Oid, String) {
    let bare =
        Repository::open_bare(world.git_bare_repo(name)).expect("the bare repo on the server");
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

/// Runs blocking git2 work off the async runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("the git work panicked")
}

/// Seeds a repository of this test's own; returns its name and seed commit.
async fn seeded(world: &World, prefix: &str) -> (String, Oid) {
    let name = unique_name(prefix);
    let seed = seed_dir();
    let commit = world
        .git_seed(&name, Some(seed.path()))
        .await
        .expect("git-seed prints the seed commit");
    (
        name,
        Oid::from_str(&commit).unwrap_or_else(|e| panic!("git-seed printed {commit:?}: {e}")),
    )
}

#[tokio::test]
async fn clone_commit_and_push_over_http_with_basic_auth() {
    let world = World::get();
    let (name, seed) = seeded(world, "git-http").await;
    let url = world.git_http_url(&name);
    let auth = Auth::http(world);

    let pushed = blocking({
        let (url, auth) = (url.clone(), auth.clone());
        move || {
            let work = tempfile::tempdir().unwrap();
            let calls = Calls::default();
            let repo = clone(&url, work.path(), &auth, &calls)
                .unwrap_or_else(|e| panic!("clone {url}: {e}"));
            assert_eq!(
                calls.credentials.load(Ordering::SeqCst),
                1,
                "credentials asked once"
            );
            assert_eq!(repo.head().unwrap().peel_to_commit().unwrap().id(), seed);
            assert!(
                work.path().join("apps/web/deployment.yaml").exists(),
                "the seed is checked out"
            );

            let commit = commit_file(
                &repo,
                "apps/web/image.txt",
                "127.0.0.1:15000/demo/app:1.4.2\n",
                "web: 1.4.2",
            );
            let calls = Calls::default();
            push_main(&repo, &auth, &calls).unwrap_or_else(|e| panic!("push to {url}: {e}"));
            // status None: the server accepted the update of main.
            assert_eq!(
                *calls.pushed.lock().unwrap(),
                vec![("refs/heads/main".to_string(), None)]
            );
            commit
        }
    })
    .await;

    let (tip, content) = on_server(world, &name, "apps/web/image.txt");
    assert_eq!(tip, pushed, "main on the server is the pushed commit");
    assert_eq!(content, "127.0.0.1:15000/demo/app:1.4.2\n");

    // A fresh clone, over HTTPS this time (world CA, same basic auth), has the commit too.
    trust_world_ca(world);
    let https = world.git_https_url(&name);
    blocking(move || {
        let work = tempfile::tempdir().unwrap();
        let repo = clone(&https, work.path(), &auth, &Calls::default())
            .unwrap_or_else(|e| panic!("clone {https}: {e}"));
        assert_eq!(repo.head().unwrap().peel_to_commit().unwrap().id(), pushed);
        let content = std::fs::read_to_string(work.path().join("apps/web/image.txt")).unwrap();
        assert_eq!(content, "127.0.0.1:15000/demo/app:1.4.2\n");
    })
    .await;
}

#[tokio::test]
async fn a_wrong_password_is_refused_as_an_authentication_failure() {
    let world = World::get();
    let (name, _) = seeded(world, "git-badpw").await;
    let url = world.git_http_url(&name);
    let (user, _) = world.git_credentials();
    let auth = Auth::Basic {
        user: user.into(),
        password: "not-the-password".into(),
    };

    let (err, asked) = blocking(move || {
        let work = tempfile::tempdir().unwrap();
        let calls = Calls::default();
        let err = clone(&url, work.path(), &auth, &calls)
            .err()
            .expect("a clone with a wrong password must fail");
        (err, calls.credentials.load(Ordering::SeqCst))
    })
    .await;
    // The server challenged again after our one answer: it rejected the password.
    assert_eq!(asked, 2, "asked for credentials, then asked again ({err})");
    assert_eq!(err.code(), ErrorCode::Auth, "{err}");
    let message = err.message().to_lowercase();
    assert!(
        message.contains("authentication"),
        "the error says what failed: {err}"
    );
}

#[tokio::test]
async fn clone_commit_and_push_over_ssh_with_known_hosts_enforced() {
    let world = World::get();
    let (name, seed) = seeded(world, "git-ssh").await;
    let url = world.git_ssh_url(&name);
    let known_hosts = KnownHosts::load(&world.git_known_hosts()).expect("the world's known_hosts");
    let auth = Auth::ssh(world, known_hosts);

    let pushed = blocking(move || {
        let work = tempfile::tempdir().unwrap();
        let calls = Calls::default();
        let repo =
            clone(&url, work.path(), &auth, &calls).unwrap_or_else(|e| panic!("clone {url}: {e}"));
        assert_eq!(
            calls.host_checks.load(Ordering::SeqCst),
            1,
            "the host key was checked"
        );
        assert!(
            calls.credentials.load(Ordering::SeqCst) >= 1,
            "the key was offered"
        );
        assert_eq!(repo.head().unwrap().peel_to_commit().unwrap().id(), seed);

        let commit = commit_file(&repo, "apps/web/replicas.txt", "3\n", "web: 3 replicas");
        let calls = Calls::default();
        push_main(&repo, &auth, &calls).unwrap_or_else(|e| panic!("push to {url}: {e}"));
        assert_eq!(
            calls.host_checks.load(Ordering::SeqCst),
            1,
            "checked again for the push"
        );
        assert_eq!(
            *calls.pushed.lock().unwrap(),
            vec![("refs/heads/main".to_string(), None)]
        );
        commit
    })
    .await;

    let (tip, content) = on_server(world, &name, "apps/web/replicas.txt");
    assert_eq!(tip, pushed, "main on the server is the pushed commit");
    assert_eq!(content, "3\n");
}

/// Clones over SSH with `known_hosts` as the only trusted host keys, which must be refused before
/// any credential is offered. Returns libgit2's error and the refusal's reason.
async fn ssh_clone_refused(
    world: &World,
    prefix: &str,
    known_hosts: &str,
) -> (git2::Error, String) {
    let (name, _) = seeded(world, prefix).await;
    let url = world.git_ssh_url(&name);
    let auth = Auth::ssh(world, KnownHosts::parse(known_hosts));
    blocking(move || {
        let work = tempfile::tempdir().unwrap();
        let calls = Calls::default();
        let err = clone(&url, work.path(), &auth, &calls)
            .err()
            .expect("the clone must be refused");
        assert_eq!(
            calls.host_checks.load(Ordering::SeqCst),
            1,
            "the host key was checked: {err}"
        );
        assert_eq!(
            calls.credentials.load(Ordering::SeqCst),
            0,
            "no key offered to an untrusted host: {err}"
        );
        // libgit2 reports a certificate error about the host key...
        assert_eq!(err.code(), ErrorCode::Certificate, "{err}");
        assert_eq!(err.class(), ErrorClass::Ssh, "{err}");
        assert!(
            err.message().contains("hostkey"),
            "libgit2's error names the host key: {err}"
        );
        // ...and the check says why.
        let why = calls
            .host_key_refused
            .lock()
            .unwrap()
            .clone()
            .expect("the check recorded why it refused");
        assert!(
            !work.path().join("README.md").exists(),
            "nothing was checked out"
        );
        (err, why)
    })
    .await
}

#[tokio::test]
async fn an_ssh_host_not_in_known_hosts_is_refused() {
    let world = World::get();
    let (err, why) = ssh_clone_refused(world, "git-unknown-host", "").await;
    assert!(
        why.contains("host key verification failed"),
        "{why} ({err})"
    );
    assert!(
        why.contains("[127.0.0.1]:") && why.contains("is not in"),
        "the reason names the unknown host: {why}"
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
    let real = KnownHosts::load(&world.git_known_hosts()).expect("the world's known_hosts");
    let host = real
        .entries
        .first()
        .expect("the world's known_hosts has an entry")
        .patterns[0]
        .clone();
    let mut blob = Vec::new();
    for part in [&b"ssh-ed25519"[..], &[7u8; 32][..]] {
        blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
        blob.extend_from_slice(part);
    }
    let forged = format!(
        "{host} ssh-ed25519 {}\n",
        base64::engine::general_purpose::STANDARD.encode(&blob)
    );
    let (err, why) = ssh_clone_refused(world, "git-changed-host", &forged).await;
    assert!(
        why.contains("host key verification failed") && why.contains("does not match"),
        "{why} ({err})"
    );
}
