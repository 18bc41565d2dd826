//! A GitSync over SSH (a deploy key and known_hosts in a Secret) applies the branch's commits;
//! pinned to a tag it stays on the tag's commit when the branch moves on; pinned to a commit it
//! applies exactly that commit, not the branch tip. A second GitSync over HTTPS (basic auth, the
//! world's CA in the Secret as `ca.crt`) applies its part of the same repository.

mod sync_support;

use std::time::Duration;

use deploy_synchronizer::resource::GitSync;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Patch, PatchParams};
use serde_json::json;
use sluice_e2e::{TestNamespace, World, unique_name};
use sync_support::*;

/// The app's settings at release `version`, as a person would keep them.
fn settings(version: &str) -> String {
    format!(
        r#"# Settings of the shop's checkout, one file per app.
apiVersion: v1
kind: ConfigMap
metadata:
  name: checkout-settings
  labels: {{app: checkout}}
data:
  release: "{version}"
  currency:   EUR      # odd spacing on purpose
"#
    )
}

const HTTPS_PART: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: fetched-over-https
data:
  transport: https
"#;

fn files(version: &str) -> tempfile::TempDir {
    tree(&[
        ("apps/checkout/settings.yaml", &settings(version)),
        ("apps/https/cm.yaml", HTTPS_PART),
        ("README.md", "Config of the shop.\n"),
    ])
}

async fn release(ns: &TestNamespace) -> String {
    let cm = ns
        .api::<ConfigMap>()
        .get("checkout-settings")
        .await
        .expect("the ConfigMap");
    cm.data.unwrap_or_default()["release"].clone()
}

/// Asks for a sync now and gives it a few polls' time; pinned syncs must not move.
async fn nudge(ns: &TestNamespace, name: &str) {
    ns.api::<GitSync>()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                "sluice.dev/reconcile-requested-at": unique_name("now")
            }}})),
        )
        .await
        .expect("annotating the GitSync");
    tokio::time::sleep(Duration::from_secs(6)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_source_follows_a_branch_and_stays_pinned_to_a_tag_or_commit() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-ssh").await;
    let repo = unique_name("sync-ssh");
    let v1_files = files("1.0.0");
    let v1 = world.git_seed(&repo, Some(v1_files.path())).await.unwrap();
    git_in(
        world,
        &repo,
        &["tag", "-a", "v1.0.0", "-m", "release 1.0.0", &v1],
    );

    let known_hosts = std::fs::read_to_string(world.git_known_hosts()).unwrap();
    ssh_secret(&ns, world, "deploy-key", &known_hosts).await;
    create_git_sync_spec(
        &ns,
        "checkout",
        json!({
            "source": {
                "url": world.git_ssh_url(&repo),
                "ref": {"branch": "main"},
                "path": "apps/checkout",
                "interval": "2s",
                "secretRef": {"name": "deploy-key"}
            },
            "targetNamespace": ns.name(),
            "healthTimeout": "1m"
        }),
    )
    .await;
    // The same repository over HTTPS: basic auth, and the world's CA given in the Secret.
    let (user, password) = world.git_credentials();
    let ca = String::from_utf8(world.ca_pem()).unwrap();
    let https_secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "https-git"},
        "stringData": {"username": user, "password": password, "ca.crt": ca}
    }))
    .unwrap();
    ns.api::<Secret>()
        .create(&Default::default(), &https_secret)
        .await
        .unwrap();
    create_git_sync_spec(
        &ns,
        "over-https",
        json!({
            "source": {
                "url": world.git_https_url(&repo),
                "path": "apps/https",
                "interval": "2s",
                "secretRef": {"name": "https-git"}
            },
            "targetNamespace": ns.name()
        }),
    )
    .await;
    let synchronizer = Synchronizer::start(world, ns.name()).await;

    // The branch: the seed, then the next commit.
    wait_applied(&ns, "checkout", &v1).await;
    assert_eq!(release(&ns).await, "1.0.0");
    let https = wait_applied(&ns, "over-https", &v1).await;
    assert_eq!(https.inventory.len(), 1, "{}", describe(&https));
    let cm = ns
        .api::<ConfigMap>()
        .get("fetched-over-https")
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["transport"], "https");

    let v2_files = files("2.0.0");
    let v2 = commit_dir(world, &repo, v2_files.path(), "checkout: release 2.0.0").await;
    let applied = wait_applied(&ns, "checkout", &v2).await;
    assert_eq!(release(&ns).await, "2.0.0");
    assert_eq!(applied.history[0].subject, "checkout: release 2.0.0");

    // Pinned to the tag: back to the tag's commit (the annotated tag peeled)…
    patch_spec(
        &ns,
        "checkout",
        json!({"source": {"ref": {"branch": null, "tag": "v1.0.0"}}}),
    )
    .await;
    wait_applied(&ns, "checkout", &v1).await;
    assert_eq!(release(&ns).await, "1.0.0");
    // …and there it stays while the branch moves on.
    let v3_files = files("3.0.0");
    let v3 = commit_dir(world, &repo, v3_files.path(), "checkout: release 3.0.0").await;
    nudge(&ns, "checkout").await;
    let pinned = status(&ns, "checkout").await.unwrap();
    assert_eq!(
        pinned.last_applied_revision.as_deref(),
        Some(v1.as_str()),
        "{}",
        describe(&pinned)
    );
    assert_eq!(
        pinned.last_attempted_revision.as_deref(),
        Some(v1.as_str()),
        "{}",
        describe(&pinned)
    );
    assert_eq!(release(&ns).await, "1.0.0");

    // Pinned to a commit that is not the branch tip: exactly that commit.
    patch_spec(
        &ns,
        "checkout",
        json!({"source": {"ref": {"tag": null, "commit": v2}}}),
    )
    .await;
    wait_applied(&ns, "checkout", &v2).await;
    assert_eq!(release(&ns).await, "2.0.0");
    nudge(&ns, "checkout").await;
    let pinned = status(&ns, "checkout").await.unwrap();
    assert_eq!(pinned.last_applied_revision.as_deref(), Some(v2.as_str()));
    assert_eq!(release(&ns).await, "2.0.0");

    // Back on the branch: its tip.
    patch_spec(
        &ns,
        "checkout",
        json!({"source": {"ref": {"commit": null, "branch": "main"}}}),
    )
    .await;
    wait_applied(&ns, "checkout", &v3).await;
    assert_eq!(release(&ns).await, "3.0.0");

    synchronizer.stop().await;
}
