//! User story: before turning the Config Updater loose on a namespace, an operator runs
//! `config-updater scan --once --dry-run -n NS` by hand (or in CI) and reads what the next
//! write-back would change, as a unified diff; the exit code tells a script whether a bump is
//! due (1), nothing is (0), or something is wrong (2).
//!
//! The built binary (`target/debug/config-updater`; `e2e/test` builds it first) runs against the
//! real world: the world's kube-apiserver, registry and git server. No controller runs, and the
//! git server's branch must not move.

mod update_support;

use config_updater::resource::{ImagePolicy, ImageRepository, ImageUpdate};
use serde_json::json;
use sluice_e2e::{TestNamespace, World};
use update_support::{
    Updater, deployment, image_update, push_web, repository, seed, semver_policy, tip,
};

/// The `config-updater` binary of this build, beside the test's `deps/`.
fn updater_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test runs from target/<profile>/deps")
        .join("config-updater");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build -p config-updater` first (e2e/test does)",
        bin.display()
    );
    bin
}

/// Runs `config-updater scan --once --dry-run -n NS` as a user would; returns (exit code,
/// stdout, stderr).
async fn dry_run(world: &World, ns: &str) -> (i32, String, String) {
    let out = tokio::process::Command::new(updater_binary())
        .args(["scan", "--once", "--dry-run", "-n", ns])
        .env("KUBECONFIG", world.kubeconfig())
        .env("PATH", world.var("PATH").unwrap_or("/usr/bin:/bin"))
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("running config-updater scan --once --dry-run");
    (
        out.status.code().expect("an exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dry_run_command_prints_the_due_bump_as_a_diff_and_exits_1_0_or_2() {
    // No controllers: the command alone reads the resources.
    let u = Updater::idle("update-dry-cli").await;
    let world = u.world;
    let ns = u.ns().to_owned();
    let (_, image) = push_web(world, "dry-cli", &["1.4.2", "1.4.3"]).await;
    let file = "apps/web/deployment.yaml";
    let original = deployment("web", &image, "1.4.2", &ns, "web");
    let (repo, seeded) = seed(
        world,
        "dry-cli-config",
        &[
            (file, original.clone()),
            ("README.md", "The config repo.\n".to_owned()),
        ],
    )
    .await;
    u.world_git_secret("git").await;
    u.create::<ImageRepository>(repository("web", &image, "1h"))
        .await;
    u.create::<ImagePolicy>(semver_policy("web", "web")).await;
    u.create::<ImageUpdate>(image_update("config", &world.git_http_url(&repo), None))
        .await;

    // A bump is due: exit 1, the unified diff of exactly the tag, the change listed.
    let (code, stdout, stderr) = dry_run(world, &ns).await;
    assert_eq!(code, 1, "a bump is due\n{stdout}\n{stderr}");
    let marker = format!("# {{\"$imagepolicy\": \"{ns}:web\"}}");
    let expected_diff = format!(
        "--- a/{file}\n+++ b/{file}\n@@ -9,5 +9,5 @@\n     spec:\n       containers:\n         - name: web   # the app\n-          image: {image}:1.4.2 {marker}\n+          image: {image}:1.4.3 {marker}\n           ports: [ {{containerPort: 8080}} ]\n"
    );
    assert!(
        stdout.starts_with(&format!("# ImageUpdate {ns}/config (branch main)\n")),
        "{stdout}"
    );
    assert!(stdout.contains(&expected_diff), "{stdout}");
    assert!(
        stdout.contains(&format!("changes:\n  {file}: {image} 1.4.2 → 1.4.3\n")),
        "{stdout}"
    );
    let (_, password) = world.git_credentials();
    assert!(
        !stdout.contains(password) && !stderr.contains(password),
        "the git password stays out of the output"
    );
    // Nothing committed, nothing written to status.
    assert_eq!(tip(world, &repo), seeded, "a dry run commits nothing");
    let update = u.api::<ImageUpdate>().get("config").await.unwrap();
    assert_eq!(update.status, None, "a dry run writes no status");
    let policy = u.api::<ImagePolicy>().get("web").await.unwrap();
    assert_eq!(policy.status, None, "a dry run writes no status");

    // Nothing is due (the policy now stops below 1.4.3): exit 0, no diff.
    u.patch_spec::<ImagePolicy>(
        "web",
        json!({"policy": {"semver": {"range": ">=1.0.0 <1.4.3"}}}),
    )
    .await;
    let (code, stdout, stderr) = dry_run(world, &ns).await;
    assert_eq!(code, 0, "nothing is due\n{stdout}\n{stderr}");
    assert_eq!(
        stdout,
        format!("# ImageUpdate {ns}/config (branch main)\nno changes\n")
    );
    assert_eq!(tip(world, &repo), seeded);

    // A namespace without an ImageUpdate: exit 2 and a message that says so, naming it.
    let empty = TestNamespace::create(&u.client, "update-dry-cli-empty").await;
    let (code, stdout, stderr) = dry_run(world, empty.name()).await;
    assert_eq!(code, 2, "no ImageUpdate is an error\n{stdout}\n{stderr}");
    let wanted = format!("no ImageUpdate in namespace {}", empty.name());
    assert!(
        stderr.contains(&wanted),
        "stderr says what is wrong: {stderr}"
    );
    assert!(!stdout.contains("no changes"), "{stdout}");
    assert_eq!(tip(world, &repo), seeded);
}
