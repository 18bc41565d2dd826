//! `deploy-synchronizer diff GITSYNC -n NS`, both the library call the command is a shell over
//! and the built command itself. Against a GitSync whose revision is applied it is empty (exit
//! 0); a person's edit of a live object shows as the line git would restore (exit 1); a new
//! commit shows what its sync would change — a changed Secret with its values masked, a created
//! object whole, a removed one as a deletion — and the diff writes nothing; once synced it is
//! empty again; a GitSync that does not exist is an error (exit 2) naming it.

mod sync_support;

use std::time::Duration;

use base64::Engine as _;
use deploy_synchronizer::diff::{Change, DiffReport, exit_code};
use deploy_synchronizer::diffcmd::{self, Error, Target};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use sluice_e2e::{TestNamespace, World, unique_name};
use sync_support::*;

const OLD_PASSWORD: &str = "old-plaintext-hunter2";
const NEW_PASSWORD: &str = "new-plaintext-correcthorse";

fn settings(greeting: &str) -> String {
    format!(
        r#"# What the storefront says.
apiVersion: v1
kind: ConfigMap
metadata:
  name: storefront
data:
  greeting: "{greeting}"
  theme: dark
"#
    )
}

fn secret(password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(password);
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: storefront-db\ntype: Opaque\ndata:\n  password: {encoded}\n"
    )
}

const BANNER: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: banner}\ndata: {text: sale}\n";
const PROMO: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: promo}\ndata: {code: SPRING}\n";

async fn diff(
    world: &World,
    ns: &TestNamespace,
    name: &str,
    cache: &tempfile::TempDir,
) -> Result<DiffReport, Error> {
    let config = kube_config(world).await;
    let client = kube::Client::try_from(config.clone()).unwrap();
    let target = Target::GitSync {
        namespace: ns.name().to_owned(),
        name: name.to_owned(),
        cache_dir: cache.path().to_owned(),
    };
    diffcmd::run(&client, &config, &target).await
}

/// The `deploy-synchronizer` binary of this build (`target/debug/deploy-synchronizer`, beside
/// the test's `deps/`); `e2e/test` builds it before the tests, `cargo test` alone does not.
fn synchronizer_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test runs from target/<profile>/deps")
        .join("deploy-synchronizer");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build -p deploy-synchronizer` first (e2e/test does)",
        bin.display()
    );
    bin
}

/// Runs `deploy-synchronizer diff NAME -n NS` as a user would; returns (exit code, stdout,
/// stderr).
async fn diff_command(world: &World, ns: &TestNamespace, name: &str) -> (i32, String, String) {
    let out = tokio::process::Command::new(synchronizer_binary())
        .args(["diff", name, "-n", ns.name()])
        .env("KUBECONFIG", world.kubeconfig())
        .env("PATH", world.var("PATH").unwrap_or("/usr/bin:/bin"))
        .output()
        .await
        .expect("running deploy-synchronizer diff");
    (
        out.status.code().expect("an exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `-`/`+` lines of a unified diff, without the file headers.
fn changed_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| (l.starts_with('-') || l.starts_with('+')) && !l.starts_with("---"))
        .filter(|l| !l.starts_with("+++"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_of_a_git_sync_shows_drift_and_the_next_commit_with_secrets_masked() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-diffgs").await;
    let repo = unique_name("sync-diffgs");
    let first = tree(&[
        ("site/settings.yaml", &settings("Welcome")),
        ("site/db.yaml", &secret(OLD_PASSWORD)),
        ("site/banner.yaml", BANNER),
    ]);
    let seed = world.git_seed(&repo, Some(first.path())).await.unwrap();
    git_secret(&ns, world, "git").await;
    // No self-heal: the drift below must stay for the diff to see it.
    create_git_sync_spec(
        &ns,
        "storefront",
        json!({
            "source": {
                "url": world.git_http_url(&repo),
                "path": "site",
                "interval": "2s",
                "secretRef": {"name": "git"}
            },
            "targetNamespace": ns.name(),
            "selfHeal": false
        }),
    )
    .await;
    let synchronizer = Synchronizer::start(world, ns.name()).await;
    wait_applied(&ns, "storefront", &seed).await;
    // No synchronizer from here on: it would heal the drift and apply the commit.
    synchronizer.stop().await;
    let cache = tempfile::tempdir().unwrap();

    // In sync: nothing to show.
    let outcome = diff(world, &ns, "storefront", &cache).await;
    let report = outcome.as_ref().expect("the diff of an applied revision");
    assert_eq!(exit_code(&outcome), 0, "in sync, yet:\n{}", report.render());
    assert_eq!(report.render(), "");
    assert_eq!(report.objects.len(), 3, "{}", report.summary());

    // A person edits a live object: the diff shows git's value coming back.
    ns.api::<ConfigMap>()
        .patch(
            "storefront",
            &PatchParams::apply("kubectl-edit").force(),
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "storefront"},
                "data": {"greeting": "Hello from a hotfix"}
            })),
        )
        .await
        .unwrap();
    let live = ns.api::<ConfigMap>().get("storefront").await.unwrap();
    assert_eq!(
        live.data.unwrap()["greeting"],
        "Hello from a hotfix",
        "the edit stays: no synchronizer runs, and self-heal is off"
    );
    let outcome = diff(world, &ns, "storefront", &cache).await;
    assert_eq!(exit_code(&outcome), 1);
    let report = outcome.unwrap();
    let text = report.render();
    let lines = changed_lines(&text);
    assert_eq!(lines.len(), 2, "only the edited line:\n{text}");
    assert!(
        lines[0].starts_with('-') && lines[0].contains("greeting: Hello from a hotfix"),
        "{text}"
    );
    assert!(
        lines[1].starts_with('+') && lines[1].contains("greeting: Welcome"),
        "{text}"
    );
    assert_eq!(report.changed().count(), 1, "{}", report.summary());

    // The next commit: a new password, banner removed, promo added.
    let second = tree(&[
        ("site/settings.yaml", &settings("Welcome")),
        ("site/db.yaml", &secret(NEW_PASSWORD)),
        ("site/promo.yaml", PROMO),
    ]);
    commit_dir(
        world,
        &repo,
        second.path(),
        "storefront: rotate db password, spring promo",
    )
    .await;
    let outcome = diff(world, &ns, "storefront", &cache).await;
    assert_eq!(exit_code(&outcome), 1);
    let report = outcome.unwrap();
    let text = report.render();
    println!("{}\n{text}", report.summary());
    let change_of = |name: &str| {
        report
            .objects
            .iter()
            .find(|o| o.object_ref.name == name)
            .map(|o| o.change)
    };
    assert_eq!(change_of("storefront"), Some(Change::Modified), "{text}");
    assert_eq!(change_of("storefront-db"), Some(Change::Modified), "{text}");
    assert_eq!(change_of("promo"), Some(Change::Created), "{text}");
    assert_eq!(change_of("banner"), Some(Change::Deleted), "{text}");
    assert!(
        text.contains("code: SPRING"),
        "the created object whole:\n{text}"
    );
    assert!(
        text.contains("text: sale"),
        "the deleted object whole:\n{text}"
    );
    for value in [OLD_PASSWORD, NEW_PASSWORD] {
        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        assert!(!text.contains(value), "{value} leaked:\n{text}");
        assert!(
            !text.contains(&encoded),
            "{value} leaked as base64:\n{text}"
        );
    }
    // The command says the same: exit 1, the diff on stdout, no secret anywhere.
    let (code, stdout, stderr) = diff_command(world, &ns, "storefront").await;
    assert_eq!(code, 1, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(stdout, text, "the command prints the report");
    for value in [OLD_PASSWORD, NEW_PASSWORD] {
        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        for out in [&stdout, &stderr] {
            assert!(
                !out.contains(value) && !out.contains(&encoded),
                "{value} leaked:\n{out}"
            );
        }
    }
    // The diff wrote nothing.
    let configmaps = ns.api::<ConfigMap>();
    assert!(configmaps.get_opt("promo").await.unwrap().is_none());
    assert!(configmaps.get_opt("banner").await.unwrap().is_some());
    let after = status(&ns, "storefront").await.unwrap();
    assert_eq!(after.last_applied_revision.as_deref(), Some(seed.as_str()));

    // Synced: nothing to show again.
    let head = git_in(world, &repo, &["rev-parse", "refs/heads/main"]);
    let synchronizer = Synchronizer::start(world, ns.name()).await;
    wait_applied(&ns, "storefront", &head).await;
    let mut outcome = diff(world, &ns, "storefront", &cache).await;
    // The synchronizer may still be writing its status; a second look settles it.
    if exit_code(&outcome) != 0 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        outcome = diff(world, &ns, "storefront", &cache).await;
    }
    let report = outcome.as_ref().expect("the diff after the sync");
    assert_eq!(exit_code(&outcome), 0, "synced, yet:\n{}", report.render());
    let (code, stdout, stderr) = diff_command(world, &ns, "storefront").await;
    assert_eq!((code, stdout.as_str()), (0, ""), "stderr:\n{stderr}");
    synchronizer.stop().await;

    // No such GitSync: exit 2, naming it.
    let outcome = diff(world, &ns, "no-such-sync", &cache).await;
    assert_eq!(exit_code(&outcome), 2);
    let message = sluice_shared::exit::describe(&outcome.unwrap_err());
    assert!(message.contains("no-such-sync"), "{message}");
    assert!(message.contains(ns.name()), "{message}");
    let (code, stdout, stderr) = diff_command(world, &ns, "no-such-sync").await;
    assert_eq!(code, 2, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(stdout, "");
    assert!(stderr.contains("no-such-sync"), "{stderr}");
}
