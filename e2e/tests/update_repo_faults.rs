//! User story: the config repository holds a YAML file that does not parse and a marker that
//! names an image policy nobody created. The bump still goes out for the files that are fine;
//! the broken file is left byte for byte as it was, and both problems are reported, naming the
//! file, on the ImageUpdate's condition and in a Warning event.
//!
//! Against the real world: the plain registry and the git server over HTTP.

mod update_support;

use config_updater::resource::ImageUpdate;
use update_support::{
    Updater, deployment, file, message, next_commit, parent, push_web, seed, trailers,
};

/// A values file someone broke by hand: an unclosed flow sequence.
const BROKEN: &str = "# Helm values of the worker.\nimage:\n  repository: 127.0.0.1:5000/shop/worker\n  tag: [1.0.0   # oops, never closed\nreplicas: 2\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_file_and_an_unknown_policy_are_reported_while_the_rest_is_updated() {
    let u = Updater::start("update-repofault").await;
    let world = u.world;
    let ns = u.ns().to_owned();
    let (_, image) = push_web(world, "repofault", &["1.0.0", "1.0.1"]).await;
    let web = "apps/web/deployment.yaml";
    let broken = "apps/worker/values.yaml";
    let ghost = "apps/ghost/deployment.yaml";
    let ghost_yaml = deployment("ghost", "127.0.0.1:5000/shop/ghost", "0.9.0", &ns, "ghost");
    let (repo, seeded) = seed(
        world,
        "repofault-config",
        &[
            (web, deployment("web", &image, "1.0.0", &ns, "web")),
            (broken, BROKEN.to_owned()),
            (ghost, ghost_yaml.clone()),
        ],
    )
    .await;
    u.world_git_secret("git").await;
    // The policy exists before the ImageUpdate looks: its marker is never "unknown".
    u.create_web(&image, &repo, Some("1h")).await;

    // The good file is bumped, in one commit with one trailer.
    let bump = next_commit(world, &repo, seeded).await;
    assert_eq!(parent(world, &repo, bump), seeded);
    let text = message(world, &repo, bump);
    assert_eq!(trailers(&text).len(), 1, "{text}");
    assert_eq!(
        file(world, &repo, web),
        deployment("web", &image, "1.0.1", &ns, "web")
    );
    // The others are exactly as they were.
    assert_eq!(file(world, &repo, broken), BROKEN);
    assert_eq!(file(world, &repo, ghost), ghost_yaml);

    // Reported: the condition names both files and what is wrong with them.
    let c = u
        .wait_ready::<ImageUpdate>("config", "True", "PushedWithProblems")
        .await;
    assert!(c.message.contains(&format!("{broken}:")), "{c:?}");
    assert!(c.message.contains("is not valid YAML"), "{c:?}");
    assert!(c.message.contains(&format!("{ghost}:12")), "{c:?}");
    assert!(c.message.contains("ghost, which is unknown"), "{c:?}");
    // And a Warning event says the same.
    let note = u.wait_event("config", "RepositoryProblems").await;
    assert!(note.contains(broken) && note.contains(ghost), "{note}");
    let events = u.events("config", "RepositoryProblems").await;
    assert_eq!(events[0].type_.as_deref(), Some("Warning"));
    // The web policy exists: before it chose, its marker was waiting, never "unknown".
    let web_unknown = format!("{ns}:web, which is unknown");
    assert!(!c.message.contains(&web_unknown), "{c:?}");
    for e in &events {
        let note = e.note.as_deref().unwrap_or_default();
        assert!(!note.contains(&web_unknown), "{note}");
    }
    u.wait_event("config", "Pushed").await;

    u.stop().await;
}
