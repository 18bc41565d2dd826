//! The Config Updater writes a chosen image back to the config repository on the world's git
//! server: exactly the tag bytes change, the commit carries the template message, the author and
//! one trailer per change; a second round with the same image commits nothing; a push branch
//! gets our commit on top of main; a file that does not parse is skipped and reported while the
//! others are updated.

mod writeback_support;

use config_updater::writeback::{Outcome, ProblemKind, parse_trailers};
use sluice_e2e::World;
use writeback_support::{
    IMAGE, VALUES, bumped, commit_on_server, deployment_at, file_at, fresh_dir, round, seed,
    up_to_date,
};

#[tokio::test]
async fn a_bump_is_committed_and_pushed_and_a_second_round_is_up_to_date() {
    let world = World::get();
    let (name, seed_commit) = seed(world, "wb-bump", &[]).await;
    let work = tempfile::tempdir().unwrap();

    let outcome = round(world, &name, None, "1.4.3", work.path().to_path_buf())
        .await
        .unwrap_or_else(|e| panic!("push_update: {e}"));
    let Outcome::Pushed {
        commit,
        branch,
        changes,
        problems,
        attempts,
        ..
    } = outcome
    else {
        panic!("expected a push, got {outcome:?}");
    };
    assert_eq!((branch.as_str(), attempts), ("main", 1));
    assert_eq!(problems, vec![]);
    assert_eq!(changes.len(), 2, "{changes:?}");

    // Only the tag bytes differ, CRLF and all.
    let (tip, deployment) = deployment_at(world, &name, "refs/heads/main");
    assert_eq!(tip.to_string(), commit);
    assert_eq!(deployment, bumped("1.4.3"));
    let (_, values) = file_at(world, &name, "refs/heads/main", "apps/web/values.yaml");
    assert_eq!(
        String::from_utf8(values).unwrap(),
        VALUES.replace("\"1.4.2\"", "\"1.4.3\"")
    );

    let (message, author, email, parents) = commit_on_server(world, &name, tip);
    assert_eq!(
        (author.as_str(), email.as_str()),
        ("Sluice Bot", "bot@sluice.dev")
    );
    assert_eq!(parents, vec![seed_commit]);
    assert!(
        message.starts_with(&format!(
            "chore(images): automated bump\n\n\
             apps/web/deployment.yaml: {IMAGE} 1.4.2 → 1.4.3\n\
             apps/web/values.yaml: {IMAGE} 1.4.2 → 1.4.3\n\n"
        )),
        "{message}"
    );
    let trailers = parse_trailers(&message);
    assert_eq!(trailers.len(), 2, "{message}");
    for t in &trailers {
        assert_eq!(t.policy.to_string(), "apps:web");
        assert_eq!(
            (t.image.as_str(), t.old.as_str(), t.new.as_str()),
            (IMAGE, "1.4.2", "1.4.3")
        );
    }
    assert!(message.contains(&format!(
        "Sluice-Change: policy=apps/web file=apps/web/deployment.yaml image={IMAGE} old=1.4.2 new=1.4.3\n"
    )));

    // The same image again, from a fresh clone and from the old one: nothing to commit.
    for dir in [fresh_dir(&work), work.path().to_path_buf()] {
        let again = round(world, &name, None, "1.4.3", dir).await.unwrap();
        assert_eq!(again, up_to_date());
    }
    assert_eq!(world.git_main_on_server(&name), tip, "no new commit");
}

#[tokio::test]
async fn push_branch_mode_puts_our_commit_on_top_of_main() {
    let world = World::get();
    let (name, seed_commit) = seed(world, "wb-branch", &[]).await;
    let work = tempfile::tempdir().unwrap();
    let run =
        |tag: &'static str| round(world, &name, Some("sluice/images"), tag, work.path().into());

    let first = run("1.4.3").await.unwrap();
    let Outcome::Pushed { commit, branch, .. } = &first else {
        panic!("expected a push, got {first:?}");
    };
    assert_eq!(branch, "sluice/images");
    assert_eq!(
        world.git_main_on_server(&name),
        seed_commit,
        "main untouched"
    );
    let (tip, deployment) = deployment_at(world, &name, "refs/heads/sluice/images");
    assert_eq!(&tip.to_string(), commit);
    assert_eq!(commit_on_server(world, &name, tip).3, vec![seed_commit]);
    assert_eq!(deployment, bumped("1.4.3"));

    // The branch already has the bump: up to date. A newer tag goes on top of the branch
    // (it has a commit main lacks: never reset, never forced).
    // The branch proposes, over main, the changes its one commit made.
    let again = run("1.4.3").await.unwrap();
    let Outcome::UpToDate {
        problems,
        proposed: Some(proposed),
        ..
    } = &again
    else {
        panic!("expected an up-to-date push branch, got {again:?}");
    };
    assert!(problems.is_empty(), "{problems:?}");
    let proposed: Vec<(&str, &str)> = proposed
        .iter()
        .map(|c| (c.old.as_str(), c.new.as_str()))
        .collect();
    assert!(!proposed.is_empty());
    assert!(
        proposed.iter().all(|c| *c == ("1.4.2", "1.4.3")),
        "{proposed:?}"
    );
    let second = run("1.4.4").await.unwrap();
    let Outcome::Pushed { commit: c2, .. } = &second else {
        panic!("expected a push, got {second:?}");
    };
    let (tip2, _) = deployment_at(world, &name, "refs/heads/sluice/images");
    assert_eq!(&tip2.to_string(), c2);
    assert_eq!(commit_on_server(world, &name, tip2).3, vec![tip]);
    assert_eq!(
        world.git_main_on_server(&name),
        seed_commit,
        "main still untouched"
    );
}

#[tokio::test]
async fn a_file_that_does_not_parse_is_skipped_and_reported_while_another_is_updated() {
    let world = World::get();
    let broken = "kind: Deployment\nspec: [unclosed\n  image: 127.0.0.1:5000/demo/web:1.4.2 # {\"$imagepolicy\": \"apps:web\"}\n";
    let (name, _) = seed(world, "wb-broken", &[("apps/db/broken.yaml", broken)]).await;
    let work = tempfile::tempdir().unwrap();

    let outcome = round(world, &name, None, "1.4.3", work.path().to_path_buf())
        .await
        .unwrap();
    let Outcome::Pushed {
        problems, changes, ..
    } = &outcome
    else {
        panic!("expected a push, got {outcome:?}");
    };
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].file, "apps/db/broken.yaml");
    assert!(matches!(problems[0].kind, ProblemKind::Unparsable { .. }));
    assert!(problems[0].line.is_some(), "{}", problems[0]);
    assert!(changes.iter().all(|c| c.file != "apps/db/broken.yaml"));

    let (_, still) = file_at(world, &name, "refs/heads/main", "apps/db/broken.yaml");
    assert_eq!(still, broken.as_bytes(), "the broken file is untouched");
    let (_, deployment) = deployment_at(world, &name, "refs/heads/main");
    assert_eq!(deployment, bumped("1.4.3"));
}

#[tokio::test]
async fn outside_the_update_window_nothing_is_pushed_until_it_opens() {
    use chrono::{TimeZone, Utc};
    use config_updater::schedule::Window;
    use config_updater::writeback::push_update;
    use writeback_support::{chosen, spec};

    let world = World::get();
    let (name, seed_commit) = seed(world, "wb-window", &[]).await;
    let mut spec = spec(world, &name, None);
    spec.window = Some(Window {
        cron: "* 3 * * *".into(),
        time_zone: "UTC".into(),
    });
    let root = tempfile::tempdir().unwrap();
    let noon = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
    let run = |now| {
        let work = fresh_dir(&root);
        let http = writeback_support::http(world, &name);
        push_update(http, spec.clone(), chosen("1.4.3"), work, now)
    };
    assert_eq!(
        run(noon).await.unwrap(),
        Outcome::WindowClosed {
            next_open: Some(Utc.with_ymd_and_hms(2026, 1, 2, 3, 0, 0).unwrap())
        }
    );
    assert_eq!(world.git_main_on_server(&name), seed_commit);
    let open = Utc.with_ymd_and_hms(2026, 1, 2, 3, 0, 30).unwrap();
    assert!(matches!(run(open).await.unwrap(), Outcome::Pushed { .. }));
}
