//! Never lose or overwrite a human commit: someone pushes between our commit and our push (to
//! another file, to the same file, or setting the same tag themselves). Our push is refused as
//! a non-fast-forward; we fetch, plan again on their commit and push on top of it. History stays
//! linear and nothing is forced.

mod writeback_support;

use chrono::Utc;
use config_updater::writeback::{Outcome, push_update_observed};
use sluice_e2e::World;
use sluice_e2e::git_support::push_change;
use writeback_support::{
    DEPLOYMENT, VALUES, bumped, chosen, commit_on_server, deployment_at, file_at, fresh_dir, http,
    round, seed, spec, up_to_date,
};

/// Runs a round where `human` pushes `(path, content)` right after our first local commit.
async fn race(name: &str, human_path: &'static str, human_content: String) -> (Outcome, git2::Oid) {
    let world = World::get();
    let work = tempfile::tempdir().unwrap();
    let human_remote = http(world, name);
    let pushed = std::sync::Arc::new(std::sync::Mutex::new(None));
    let record = pushed.clone();
    let outcome = push_update_observed(
        http(world, name),
        spec(world, name, None),
        chosen("1.4.3"),
        work.path().to_path_buf(),
        Utc::now(),
        move |attempt| {
            if attempt == 1 {
                let c = push_change(&human_remote, human_path, &human_content, "human: edit");
                *record.lock().unwrap() = Some(c);
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("push_update: {e}"));
    let human = pushed.lock().unwrap().expect("the human pushed");
    (outcome, human)
}

#[tokio::test]
async fn a_human_commit_to_another_file_in_between_is_kept_and_we_land_on_top() {
    let world = World::get();
    let (name, _) = seed(world, "wb-race-other", &[]).await;
    let (outcome, human) = race(&name, "README.md", "Edited by a person.\n".into()).await;
    let Outcome::Pushed {
        commit, attempts, ..
    } = &outcome
    else {
        panic!("expected a push, got {outcome:?}");
    };
    assert_eq!(*attempts, 2, "the first push was overtaken");
    let (tip, readme) = file_at(world, &name, "refs/heads/main", "README.md");
    assert_eq!(&tip.to_string(), commit);
    assert_eq!(readme, b"Edited by a person.\n");
    assert_eq!(
        commit_on_server(world, &name, tip).3,
        vec![human],
        "linear, on top of the human"
    );
    let (_, deployment) = deployment_at(world, &name, "refs/heads/main");
    assert_eq!(deployment, bumped("1.4.3"));
}

#[tokio::test]
async fn a_human_commit_to_the_same_file_keeps_their_bytes_and_gets_our_tag() {
    let world = World::get();
    let (name, _) = seed(world, "wb-race-same", &[]).await;
    let theirs = DEPLOYMENT.replace(
        "- name: web   # the app",
        "- name: web   # the app, owned by team blue",
    );
    let (outcome, human) = race(&name, "apps/web/deployment.yaml", theirs.clone()).await;
    let Outcome::Pushed {
        commit, attempts, ..
    } = &outcome
    else {
        panic!("expected a push, got {outcome:?}");
    };
    assert_eq!(*attempts, 2);
    let (tip, deployment) = deployment_at(world, &name, "refs/heads/main");
    assert_eq!(&tip.to_string(), commit);
    assert_eq!(commit_on_server(world, &name, tip).3, vec![human]);
    assert_eq!(deployment, theirs.replace("web:1.4.2 #", "web:1.4.3 #"));
}

#[tokio::test]
async fn a_human_who_set_the_same_tag_in_between_leaves_nothing_to_commit() {
    let world = World::get();
    let (name, _) = seed(world, "wb-race-done", &[]).await;
    let bumped = bumped("1.4.3");
    // Values still hold 1.4.2: re-planning keeps only that change.
    let (outcome, human) = race(&name, "apps/web/deployment.yaml", bumped.clone()).await;
    let Outcome::Pushed { changes, .. } = &outcome else {
        panic!("expected a push, got {outcome:?}");
    };
    assert!(
        changes.iter().all(|c| c.file == "apps/web/values.yaml"),
        "{changes:?}"
    );
    let (tip, deployment) = deployment_at(world, &name, "refs/heads/main");
    assert_eq!(deployment, bumped);
    assert_eq!(commit_on_server(world, &name, tip).3, vec![human]);

    // And when the human's commit already holds everything: up to date, their commit on top.
    let (name, _) = seed(world, "wb-race-done2", &[]).await;
    let human_remote = http(world, &name);
    let human = push_change(
        &human_remote,
        "apps/web/deployment.yaml",
        &bumped,
        "human: bump",
    );
    let values = VALUES.replace("\"1.4.2\"", "\"1.4.3\"");
    let human2 = push_change(
        &human_remote,
        "apps/web/values.yaml",
        &values,
        "human: bump values",
    );
    assert_ne!(human, human2);
    let work = tempfile::tempdir().unwrap();
    let again = round(world, &name, None, "1.4.3", work.path().to_path_buf())
        .await
        .unwrap();
    assert_eq!(again, up_to_date());
    assert_eq!(world.git_main_on_server(&name), human2);
}

/// A person reverts our bump with `git revert`: the next round with the same chosen tag writes
/// nothing, reports why, and hands the rolled-back change back for `status.blockedTags`; a newer
/// tag goes out as usual.
#[tokio::test]
async fn a_bump_a_person_reverted_is_never_committed_again() {
    use config_updater::writeback::ProblemKind;
    use sluice_e2e::git_support::{blocking, me, write};
    use sluice_shared::git;

    let world = World::get();
    let (name, _) = seed(world, "wb-revert", &[]).await;
    let root = tempfile::tempdir().unwrap();
    let round = |tag: &'static str| round(world, &name, None, tag, fresh_dir(&root));
    let first = round("1.4.3").await.unwrap();
    let Outcome::Pushed { commit, .. } = &first else {
        panic!("expected a push, got {first:?}");
    };

    // What `git revert` writes: the old bytes back, and its message.
    let message =
        format!("Revert \"chore(images): automated bump\"\n\nThis reverts commit {commit}.\n");
    let human_remote = http(world, &name);
    let revert = blocking(move || {
        let work = tempfile::tempdir().unwrap();
        let repo = git::clone_or_open(&human_remote, "main", work.path()).unwrap();
        let files = [
            write("apps/web/deployment.yaml", DEPLOYMENT),
            write("apps/web/values.yaml", VALUES),
        ];
        let c = git::commit(&repo, "main", &files, &me(), &message)
            .unwrap()
            .unwrap();
        git::push(&repo, &human_remote, "main").unwrap();
        c
    })
    .await;

    let again = round("1.4.3").await.unwrap();
    let Outcome::UpToDate {
        problems, reverted, ..
    } = &again
    else {
        panic!("expected nothing to commit, got {again:?}");
    };
    assert_eq!(
        world.git_main_on_server(&name),
        revert,
        "the revert stays on top"
    );
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems.iter().all(
            |p| matches!(&p.kind, ProblemKind::RolledBack { version, .. } if version == "1.4.3")
        )
    );
    let tags: Vec<_> = reverted.iter().filter_map(|t| t.new_tag()).collect();
    assert_eq!(tags, vec!["1.4.3", "1.4.3"]);

    let newer = round("1.4.4").await.unwrap();
    assert!(matches!(newer, Outcome::Pushed { .. }), "{newer:?}");
    let (_, deployment) = deployment_at(world, &name, "refs/heads/main");
    assert_eq!(deployment, bumped("1.4.4"));
}
