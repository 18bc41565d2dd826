//! Commit → applied through a signed push webhook, and drift → healed, on a 50-object GitSync.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use deploy_synchronizer::resource::GitSync;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use sluice_e2e::bench::{ms, summary};
use sluice_e2e::{TestNamespace, World, http, unique_name};
use sluice_shared::webhook::sign_hmac_sha256;

use crate::daemon::{Daemon, WEBHOOK_SECRET};
use crate::manifests::{SMALL_CONFIG_MAPS, SMALL_OBJECTS, SMALL_PATH, write_small};
use crate::sync_support::{commit_dir, create_git_sync_spec, github_push, wait_applied};
use crate::watch::{self, Step};

const COMMITS: usize = 15;
const DRIFTS: usize = 20;
const NAME: &str = "web";

fn value_of(cm: &ConfigMap) -> Option<&str> {
    cm.data.as_ref()?.get("value").map(String::as_str)
}

fn value_is(want: String) -> Step<ConfigMap> {
    Box::new(move |cm: &ConfigMap| value_of(cm) == Some(want.as_str()))
}

/// The figures, and the git repository made (removed by the caller once the daemon is gone).
pub async fn run(world: &World, ns: &TestNamespace, daemon: &Daemon) -> (String, String) {
    let mut report = format!(
        "## latency: GitSync over {SMALL_OBJECTS} objects (30 ConfigMaps, 10 Deployments, 10 Services), interval 1h\n"
    );
    let repo = unique_name("bench-sync-small");
    let url = world.git_http_url(&repo);
    let dir = tempfile::tempdir().expect("a work tree");
    write_small(dir.path(), "v1", world.registry());
    let seed = world
        .git_seed(&repo, Some(dir.path()))
        .await
        .expect("the seed commit");
    let created = Instant::now();
    create_git_sync_spec(
        ns,
        NAME,
        json!({
            "source": {"url": url, "ref": {"branch": "main"}, "path": SMALL_PATH,
                       "interval": "1h", "secretRef": {"name": "git-credentials"}},
            "targetNamespace": ns.name(),
            "healthTimeout": "5m"
        }),
    )
    .await;
    wait_applied(ns, NAME, &seed).await;
    let _ = writeln!(
        report,
        "first sync (creation → status applied, polled): {}",
        ms(created.elapsed())
    );

    // Commit → applied: one ConfigMap value per commit, announced by a signed GitHub push.
    let maps = ns.api::<ConfigMap>();
    let syncs = ns.api::<GitSync>();
    let mut to_object = Vec::new();
    let mut to_status = Vec::new();
    let mut commit_times = Vec::new();
    for i in 0..COMMITS {
        let value = format!("v{}", i + 2);
        let cm = maps.get("web-cm-00").await.expect("web-cm-00");
        let sync = syncs.get(NAME).await.expect("the GitSync");
        write_small(dir.path(), &value, world.registry());
        let started = Instant::now();
        let commit = commit_dir(world, &repo, dir.path(), &format!("web: value {value}")).await;
        commit_times.push(started.elapsed());
        let object = watch::spawn(
            maps.clone(),
            "web-cm-00",
            cm.metadata.resource_version.clone().unwrap_or_default(),
            vec![value_is(value.clone())],
            Duration::from_secs(60),
        );
        let wanted = commit.clone();
        let status = watch::spawn(
            syncs.clone(),
            NAME,
            sync.metadata.resource_version.clone().unwrap_or_default(),
            vec![Box::new(move |s: &GitSync| {
                s.status
                    .as_ref()
                    .and_then(|s| s.last_applied_revision.as_deref())
                    == Some(wanted.as_str())
            })],
            Duration::from_secs(60),
        );
        let body = github_push(&url, &commit);
        let signature = sign_hmac_sha256(WEBHOOK_SECRET, body.as_bytes());
        let headers = [
            ("Content-Type", "application/json"),
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", signature.as_str()),
        ];
        let pushed = Instant::now();
        let answer = http::post(&daemon.addr, "/webhook/github", &headers, &body).await;
        assert_eq!(answer, 202, "the webhook answered {answer}");
        let seen = object
            .await
            .expect("the watch task")
            .expect("the new value");
        let applied = status.await.expect("the watch task").expect("the status");
        to_object.push(seen[0] - pushed);
        to_status.push(applied[0] - pushed);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let _ = writeln!(
        report,
        "commit → applied, webhook-triggered, {COMMITS} commits (from the signed push's POST; the commit itself took {}):",
        summary(&commit_times)
    );
    let _ = writeln!(
        report,
        "  new ConfigMap value seen by a watch:        {}   target p50 < 500 ms",
        summary(&to_object)
    );
    let _ = writeln!(
        report,
        "  GitSync status lastAppliedRevision = commit: {}",
        summary(&to_status)
    );

    // Drift → healed: another field manager edits a managed value; self-heal puts it back.
    // A different ConfigMap each time: the same one edited again and again is a fight, healed
    // with backoff on purpose.
    let mut healed = Vec::new();
    let mut patch_answered = Vec::new();
    for i in 0..DRIFTS {
        let name = format!("web-cm-{:02}", (i % (SMALL_CONFIG_MAPS - 1)) + 1);
        let cm = maps.get(&name).await.expect("a ConfigMap");
        let original = value_of(&cm).expect("a value").to_owned();
        let drifted = format!("drifted-{i}");
        let seen = watch::spawn(
            maps.clone(),
            &name,
            cm.metadata.resource_version.clone().unwrap_or_default(),
            vec![value_is(drifted.clone()), value_is(original.clone())],
            Duration::from_secs(60),
        );
        let edited = Instant::now();
        maps.patch(
            &name,
            &PatchParams {
                field_manager: Some("bench-drift".into()),
                ..PatchParams::default()
            },
            &Patch::Merge(json!({"data": {"value": drifted}})),
        )
        .await
        .expect("the drifting edit");
        patch_answered.push(edited.elapsed());
        let at = seen.await.expect("the watch task").expect("healed");
        healed.push(at[1] - edited);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let _ = writeln!(
        report,
        "drift → healed, {DRIFTS} edits by field manager bench-drift (a different ConfigMap each):"
    );
    let _ = writeln!(
        report,
        "  from the edit's PATCH to git's value back:     {}   target p50 < 500 ms",
        summary(&healed)
    );
    let _ = writeln!(
        report,
        "  (the edit's PATCH alone, answered:             {})",
        summary(&patch_answered)
    );
    let _ = writeln!(
        report,
        "memory after the latency runs: {}\n",
        daemon.memory()
    );
    (report, repo)
}
