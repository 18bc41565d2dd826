//! The two daemons' git work against the world's git server, through `sluice_shared::git`: the
//! Deploy Synchronizer fetches a branch, a tag or a commit pin (incrementally, into a cache) and
//! writes the files to render; the Config Updater's push is a success only when the server
//! accepted it, so someone else's newer commit is a non-fast-forward (then: fetch, re-apply,
//! push) and a refusal by the server is reported as one.

use git2::{Repository, Signature};
use sluice_e2e::World;
use sluice_e2e::git_support::{blocking, closed_port, head, me, push_change, remote, write};
use sluice_shared::git::{self, GitAuth, GitError, Revision};

#[tokio::test]
async fn fetch_a_branch_a_tag_and_a_commit_pin() {
    let world = World::get();
    let (name, seed) = world.git_seeded("git-fetch").await;
    let http = remote(&world.git_http_url(&name), world.git_basic_auth());

    blocking(move || {
        // On the server: a second commit on main, and an annotated tag v1.0.0 at the seed.
        let work = tempfile::tempdir().unwrap();
        let repo = git::clone_or_open(&http, "main", work.path()).unwrap();
        let second = git::commit(
            &repo,
            "main",
            &[write("apps/web/image.txt", "app:2\n")],
            &me(),
            "web: 2\n\nbody",
        )
        .unwrap()
        .unwrap();
        let who = Signature::now("Sluice E2E", "e2e@sluice.dev").unwrap();
        let seed_obj = repo.find_object(seed, None).unwrap();
        repo.tag("v1.0.0", &seed_obj, &who, "release 1.0.0", false)
            .unwrap();
        git::push_refs(&repo, &http, &["refs/heads/main", "refs/tags/v1.0.0"])
            .unwrap_or_else(|e| panic!("push: {e}"));

        let cache = tempfile::tempdir().unwrap();
        let branch = git::fetch_revision(&http, &Revision::Branch("main".into()), cache.path())
            .unwrap_or_else(|e| panic!("fetch main: {e}"));
        assert_eq!(branch.commit, second.to_string());
        assert_eq!(branch.subject, "web: 2");
        assert!(branch.repo.is_bare(), "the cache is a bare repository");

        let tag = git::fetch_revision(&http, &Revision::Tag("v1.0.0".into()), cache.path())
            .unwrap_or_else(|e| panic!("fetch v1.0.0: {e}"));
        assert_eq!(
            tag.commit,
            seed.to_string(),
            "the tag is peeled to its commit"
        );
        assert!(tag.subject.starts_with("seed "), "{}", tag.subject);

        // A pin of a commit that is no branch tip, into a cache of its own.
        let pin_cache = tempfile::tempdir().unwrap();
        let pin = git::fetch_revision(&http, &Revision::Commit(seed.to_string()), pin_cache.path())
            .unwrap_or_else(|e| panic!("fetch {seed}: {e}"));
        assert_eq!(pin.commit, seed.to_string());
        let short = git::fetch_revision(
            &http,
            &Revision::Commit(second.to_string()[..10].into()),
            pin_cache.path(),
        )
        .unwrap_or_else(|e| panic!("fetch a short pin: {e}"));
        assert_eq!(short.commit, second.to_string());

        // The files to render: the commit's tree, without .git.
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("render");
        git::checkout_tree(&branch.repo, &branch.commit, &dest).unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.join("apps/web/image.txt")).unwrap(),
            "app:2\n"
        );
        assert!(dest.join("apps/web/deployment.yaml").is_file());
        assert!(!dest.join(".git").exists());
        let again = git::checkout_tree(&branch.repo, &branch.commit, &dest).unwrap_err();
        assert_eq!(
            again.kind(),
            "invalid",
            "never into a non-empty directory: {again}"
        );

        // What is not there is said so.
        for (revision, reference) in [
            (Revision::Branch("nope".into()), "refs/heads/nope"),
            (Revision::Tag("v9".into()), "refs/tags/v9"),
            (
                Revision::Commit("0123456789abcdef0123456789abcdef01234567".into()),
                "commit 0123456789abcdef0123456789abcdef01234567",
            ),
        ] {
            let err = git::fetch_revision(&http, &revision, cache.path()).unwrap_err();
            assert!(
                matches!(&err, GitError::RefNotFound { reference: r, .. } if r == reference),
                "{revision}: {err:?}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_second_fetch_is_incremental() {
    let world = World::get();
    let (name, seed) = world.git_seeded("git-incr").await;
    let http = remote(&world.git_http_url(&name), world.git_basic_auth());
    blocking(move || {
        let main = Revision::Branch("main".into());
        let cache = tempfile::tempdir().unwrap();
        let first = git::fetch_revision(&http, &main, cache.path()).unwrap();
        assert_eq!(first.commit, seed.to_string());
        let all = http.last_transcript().received_objects;
        assert!(all >= 6, "the seed: a commit, 3 trees, 2 blobs ({all})");

        let same = git::fetch_revision(&http, &main, cache.path()).unwrap();
        assert_eq!(same.commit, seed.to_string());
        assert_eq!(
            http.last_transcript().received_objects,
            0,
            "nothing new, nothing received"
        );

        let next = push_change(&http, "apps/web/image.txt", "app:3\n", "web: 3");
        let after = git::fetch_revision(&http, &main, cache.path()).unwrap();
        assert_eq!(after.commit, next.to_string());
        let received = http.last_transcript().received_objects;
        assert!(
            (1..=5).contains(&received),
            "only the new commit, its trees and blob: {received}"
        );

        // A pinned commit in the cache needs no server at all.
        let gone = remote(
            &format!("http://127.0.0.1:{}/{name}.git", closed_port()),
            GitAuth::none(),
        );
        let pinned = git::fetch_revision(&gone, &Revision::Commit(seed.to_string()), cache.path())
            .unwrap_or_else(|e| panic!("a cached pin: {e}"));
        assert_eq!(pinned.commit, seed.to_string());
    })
    .await;
}

#[tokio::test]
async fn a_push_after_someone_else_pushed_is_a_non_fast_forward() {
    let world = World::get();
    let (name, _) = world.git_seeded("git-nff").await;
    let http = remote(&world.git_http_url(&name), world.git_basic_auth());
    blocking(move || {
        let mine = tempfile::tempdir().unwrap();
        let repo = git::clone_or_open(&http, "main", mine.path()).unwrap();
        // Meanwhile someone else pushes.
        let theirs = push_change(&http, "apps/web/replicas.txt", "5\n", "web: 5 replicas");

        let edit = write("apps/web/image.txt", "app:4\n");
        git::commit(&repo, "main", std::slice::from_ref(&edit), &me(), "web: 4")
            .unwrap()
            .unwrap();
        let err = git::push(&repo, &http, "main").expect_err("must not pass for a success");
        assert!(
            matches!(&err, GitError::NonFastForward { reference, .. } if reference == "refs/heads/main"),
            "{err:?}"
        );
        let server = Repository::open_bare(World::get().git_bare_repo(&name)).unwrap();
        assert_eq!(
            server.refname_to_id("refs/heads/main").unwrap(),
            theirs,
            "their commit stays: nothing was forced"
        );

        // The updater's way out: fetch (the work clone is reset to the tip), re-apply, push.
        let repo = git::clone_or_open(&http, "main", mine.path()).unwrap();
        assert_eq!(head(&repo), theirs);
        let mine = git::commit(&repo, "main", &[edit], &me(), "web: 4").unwrap().unwrap();
        git::push(&repo, &http, "main").unwrap_or_else(|e| panic!("push after re-apply: {e}"));
        assert_eq!(server.refname_to_id("refs/heads/main").unwrap(), mine);
        assert_eq!(repo.find_commit(mine).unwrap().parent_id(0).unwrap(), theirs);
    })
    .await;
}

#[tokio::test]
async fn a_push_the_server_refuses_is_reported_as_rejected() {
    let world = World::get();
    let (name, seed) = world.git_seeded("git-hook").await;
    let hook = world.git_bare_repo(&name).join("hooks/pre-receive");
    std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
    std::fs::write(&hook, "#!/bin/sh\necho 'main is protected' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let http = remote(&world.git_http_url(&name), world.git_basic_auth());
    let err = blocking(move || {
        let work = tempfile::tempdir().unwrap();
        let repo = git::clone_or_open(&http, "main", work.path()).unwrap();
        git::commit(&repo, "main", &[write("x.txt", "x\n")], &me(), "x")
            .unwrap()
            .unwrap();
        git::push(&repo, &http, "main").expect_err("the hook declines")
    })
    .await;
    let GitError::PushRejected { reference, message } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(reference, "refs/heads/main");
    assert!(message.contains("declined"), "{message}");
    assert!(
        message.contains("main is protected"),
        "what the server said: {message}"
    );
    let server = Repository::open_bare(world.git_bare_repo(&name)).unwrap();
    assert_eq!(server.refname_to_id("refs/heads/main").unwrap(), seed);
}
