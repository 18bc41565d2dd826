//! `config-updater scan --once --dry-run` against the real world: the report shows the bump the
//! next write-back would make, as a unified diff, and nothing reaches the git server.

mod update_support;

use config_updater::dryrun;
use config_updater::resource::ImageUpdate;
use update_support::{Updater, push_web};

fn marked_line(image: &str, tag: &str, ns: &str) -> String {
    format!("          image: {image}:{tag} # {{\"$imagepolicy\": \"{ns}:web\"}}")
}

/// A namespace (no controller runs: nothing but the dry run may look) with the three resources
/// over a config repository seeded at `seeded_tag`; returns it, the repository and the image.
async fn setup(label: &str, seeded_tag: &str) -> (Updater, String, String) {
    let u = Updater::idle(label).await;
    let world = u.world;
    let (_, image) = push_web(world, "dry", &["1.4.2", "1.4.3"]).await;
    let (repo_name, _) = u.seed_web("dry-config", &image, seeded_tag).await;
    u.world_git_secret("git").await;
    u.create_web(&image, &repo_name, None).await;
    (u, repo_name, image)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_shows_the_bump_as_a_diff_and_commits_nothing() {
    let (u, repo_name, image) = setup("update-dry-run", "1.4.2").await;
    let (world, ns) = (u.world, &u.ns);
    let (before, content_before) = world.git_file_on_server(&repo_name, "apps/web/deployment.yaml");

    let report = dryrun::run(u.client.clone(), Some(ns.name()))
        .await
        .unwrap();
    let text = report.render();
    assert_eq!(report.updates.len(), 1, "{text}");
    let u = &report.updates[0];
    assert!(u.errors.is_empty(), "{text}");
    assert!(u.problems.is_empty(), "{text}");
    assert_eq!(u.changes.len(), 1, "{text}");
    let change = &u.changes[0];
    assert_eq!(
        (
            change.file.as_str(),
            change.old.as_str(),
            change.new.as_str()
        ),
        ("apps/web/deployment.yaml", "1.4.2", "1.4.3"),
        "{text}"
    );
    assert_eq!(u.diffs.len(), 1, "{text}");
    let diff = &u.diffs[0].diff;
    assert!(
        diff.starts_with("--- a/apps/web/deployment.yaml\n+++ b/apps/web/deployment.yaml\n"),
        "{diff}"
    );
    let removed: Vec<&str> = diff
        .lines()
        .filter(|l| l.starts_with('-') && !l.starts_with("---"))
        .collect();
    let added: Vec<&str> = diff
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .collect();
    assert_eq!(
        removed,
        [format!("-{}", marked_line(&image, "1.4.2", ns.name()))],
        "{diff}"
    );
    assert_eq!(
        added,
        [format!("+{}", marked_line(&image, "1.4.3", ns.name()))],
        "{diff}"
    );
    assert!(
        text.contains(&format!("apps/web/deployment.yaml: {image} 1.4.2 → 1.4.3")),
        "{text}"
    );
    assert_eq!(report.exit_code(), 1, "{text}");
    let (_, password) = world.git_credentials();
    assert!(!text.contains(password), "no credential in the report");

    let (after, content_after) = world.git_file_on_server(&repo_name, "apps/web/deployment.yaml");
    assert_eq!(
        after, before,
        "main is unchanged: nothing committed or pushed"
    );
    assert_eq!(content_after, content_before);
    let update = ns.api::<ImageUpdate>().get("config").await.unwrap();
    assert!(
        update.status.is_none(),
        "no status written: {:?}",
        update.status
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_on_the_newest_tag_changes_nothing() {
    let (u, _repo_name, _image) = setup("update-dry-run-none", "1.4.3").await;
    let ns = &u.ns;

    let report = dryrun::run(u.client.clone(), Some(ns.name()))
        .await
        .unwrap();
    let text = report.render();
    assert_eq!(report.updates.len(), 1, "{text}");
    assert!(report.updates[0].changes.is_empty(), "{text}");
    assert!(report.updates[0].diffs.is_empty(), "{text}");
    assert_eq!(report.exit_code(), 0, "{text}");
}
