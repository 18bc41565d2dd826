//! Every kind of bad input, one after the other on one GitSync that applied a good revision: a
//! document without `kind`, one without `apiVersion`, a kind the cluster does not serve, an
//! object defined twice, a kustomization naming a missing file, a file that is not UTF-8, a
//! symlink to `/etc/passwd`, a relative symlink climbing out of the checkout with `../`, a 50 MiB
//! file (the manifest size cap is 4 MiB), 10,000 documents in one file with one broken near the
//! end, a billion laughs (anchors and aliases), a kustomization whose base is outside the
//! repository, a symlink loop. Each
//! is Ready=False with a reason and a message naming the file (and line where one applies; the
//! symlinks are refused by the git layer as it checks the commit out, GitFailed naming the commit);
//! none of them applies anything or deletes anything; the fixing commit is applied.

mod sync_support;

use deploy_synchronizer::resource::GitSyncStatus;
use k8s_openapi::api::core::v1::ConfigMap;
use sluice_e2e::{TestNamespace, World, unique_name};
use sync_support::*;

/// The app's settings; every bad commit also changes them, so an apply would show.
fn settings(level: &str) -> String {
    format!(
        r#"# Settings of the orders service.
apiVersion: v1
kind: ConfigMap
metadata:
  name: orders-settings
data:
  log-level: {level}
  retries: "3"
"#
    )
}

const FLAGS: &str = r#"apiVersion: v1
kind: ConfigMap
metadata: {name: orders-flags}
data: {new-checkout: "off"}
"#;

/// One bad commit: the files it adds beside a changed settings.yaml (flags.yaml is gone from
/// it, so a prune would show too), and what the condition must say.
struct Case {
    what: &'static str,
    files: Vec<(&'static str, Vec<u8>)>,
    /// Symlinks it commits (git stores them as links): path, target.
    links: Vec<(&'static str, &'static str)>,
    /// Refused by the git layer while checking the commit out, before any render, without the
    /// commit being known (none of the cases today: a symlink out of the tree is refused at
    /// checkout but reported as a render refusal of that commit).
    at_checkout: bool,
    reason: &'static str,
    /// Every one of these is in the message.
    says: Vec<&'static str>,
    /// The file the message names, and the range its line must be in.
    at: Option<(&'static str, std::ops::RangeInclusive<usize>)>,
}

fn cases() -> Vec<Case> {
    let text = |s: &str| s.as_bytes().to_vec();
    // Latin-1 "é" (0xE9) in a comment on line 3: an editor that saved in the wrong encoding.
    let mut latin1 = b"apiVersion: v1\nkind: ConfigMap\n# caf".to_vec();
    latin1.push(0xE9);
    latin1.extend_from_slice(b" menu\nmetadata: {name: menu}\n");
    vec![
        Case {
            what: "a document without kind",
            files: vec![(
                "deploy/extra.yaml",
                text(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\n---\n# the second one forgot its kind\napiVersion: v1\nmetadata:\n  name: extra-two\ndata: {a: b}\n",
                ),
            )],
            links: vec![],
            at_checkout: false,
            reason: "RenderFailed",
            says: vec!["not a Kubernetes object", "missing kind"],
            at: Some(("deploy/extra.yaml", 4..=6)),
        },
        Case {
            what: "a document without apiVersion",
            files: vec![(
                "deploy/extra.yaml",
                text("kind: ConfigMap\nmetadata:\n  name: extra\ndata: {a: b}\n"),
            )],
            links: vec![],
            at_checkout: false,
            reason: "RenderFailed",
            says: vec!["not a Kubernetes object", "apiVersion"],
            at: Some(("deploy/extra.yaml", 1..=1)),
        },
        Case {
            what: "an unknown kind",
            files: vec![(
                "deploy/cache.yaml",
                text(
                    "# a typo in the kind\napiVersion: v1\nkind: ConfigMapp\nmetadata: {name: cache}\n",
                ),
            )],
            links: vec![],
            at_checkout: false,
            reason: "PlanRefused",
            says: vec!["ConfigMapp", "serves no kind"],
            at: Some(("deploy/cache.yaml", 1..=2)),
        },
        Case {
            what: "an object defined twice",
            files: vec![("deploy/settings-copy.yaml", text(&settings("trace")))],
            links: vec![],
            at_checkout: false,
            reason: "RenderFailed",
            says: vec!["defined twice", "deploy/settings.yaml:", "orders-settings"],
            at: Some(("deploy/settings-copy.yaml", 1..=2)),
        },
        Case {
            what: "a kustomization naming a missing file",
            files: vec![(
                "deploy/kustomization.yaml",
                text(
                    "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - settings.yaml\n  - rate-limits.yaml   # not committed\n",
                ),
            )],
            links: vec![],
            at_checkout: false,
            reason: "RenderFailed",
            says: vec!["kustomize", "deploy/rate-limits.yaml"],
            at: None,
        },
        Case {
            what: "a file that is not UTF-8",
            files: vec![("deploy/menu.yaml", latin1)],
            links: vec![],
            at_checkout: false,
            reason: "RenderFailed",
            says: vec!["not UTF-8"],
            at: Some(("deploy/menu.yaml", 3..=3)),
        },
        Case {
            what: "a symlink to /etc/passwd",
            files: vec![],
            links: vec![("deploy/users.yaml", "/etc/passwd")],
            at_checkout: false,
            reason: "RenderFailed",
            says: vec![
                "deploy/users.yaml",
                "a symlink out of the tree (/etc/passwd)",
            ],
            at: None,
        },
        Case {
            what: "a relative symlink climbing out of the repository",
            files: vec![],
            // Deep enough to reach / from wherever the synchronizer checks the commit out.
            links: vec![(
                "deploy/shared/hosts.yaml",
                "../../../../../../../../../../../../../../etc/hosts",
            )],
            at_checkout: false,
            reason: "RenderFailed",
            says: vec!["deploy/shared/hosts.yaml", "a symlink out of the tree (../"],
            at: None,
        },
        Case {
            what: "10,000 documents in one file, one near the end without kind",
            files: vec![("deploy/generated.yaml", text(&generated(10_000, 9_990)))],
            links: vec![],
            at_checkout: false,
            reason: "RenderFailed",
            says: vec!["not a Kubernetes object", "missing kind"],
            // Document 9,990 (0-based) starts on line 2 + 5 * 9,990.
            at: Some(("deploy/generated.yaml", 49_952..=49_956)),
        },
        Case {
            what: "a billion laughs",
            files: vec![("deploy/laughs.yaml", text(&billion_laughs()))],
            links: vec![],
            at_checkout: false,
            reason: "RenderFailed",
            says: vec!["too big once its anchors and aliases are expanded"],
            at: Some(("deploy/laughs.yaml", 12..=12)),
        },
        Case {
            what: "a kustomization whose base is outside the repository",
            files: vec![(
                "deploy/kustomization.yaml",
                text(
                    "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - settings.yaml\n  # the platform team's shared base, as it sits on a laptop\n  - ../../../../../../../../../../../../../../../etc/sluice-shared-base\n",
                ),
            )],
            links: vec![],
            at_checkout: false,
            reason: "RenderFailed",
            says: vec![
                "deploy/kustomization.yaml",
                "resources names \"../../",
                "outside the repository",
            ],
            at: None,
        },
        Case {
            what: "a symlink loop",
            files: vec![],
            links: vec![
                ("deploy/current.yaml", "previous.yaml"),
                ("deploy/previous.yaml", "current.yaml"),
            ],
            at_checkout: false,
            reason: "RenderFailed",
            says: vec!["deploy/current.yaml", "symbolic links"],
            at: None,
        },
        Case {
            what: "a file over the size cap",
            files: vec![("deploy/dump.yaml", text(&big_config_map()))],
            links: vec![],
            at_checkout: false,
            reason: "RenderFailed",
            says: vec!["deploy/dump.yaml", "over the 4194304-byte limit"],
            at: None,
        },
    ]
}

/// A ConfigMap of 50 MiB: a generated dump someone committed by mistake (the cap is 4 MiB).
fn big_config_map() -> String {
    let mut yaml = String::from(
        "# generated by the export job; do not edit\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: dump}\ndata:\n  rows.csv: |\n",
    );
    let mut row = 0;
    while yaml.len() < 50 * 1024 * 1024 {
        yaml.push_str(&format!(
            "    {row},order-{row:08},shipped,2026-11-22T08:00:00Z\n"
        ));
        row += 1;
    }
    yaml
}

/// `count` generated ConfigMaps, five lines each after a comment line; the one at `broken`
/// lost its kind in a bad merge.
fn generated(count: usize, broken: usize) -> String {
    let mut yaml = String::from("# generated by the tenant onboarding job\n");
    for i in 0..count {
        let kind = if i == broken { "" } else { "kind: ConfigMap" };
        yaml.push_str(&format!(
            "---\napiVersion: v1\n{kind}\nmetadata: {{name: tenant-{i:05}}}\ndata: {{tier: free}}\n"
        ));
    }
    yaml
}

/// A billion laughs: nine levels of anchors, each aliasing the one before ten times: 10^9
/// "lol"s once expanded, from a kilobyte of YAML.
fn billion_laughs() -> String {
    let mut yaml = String::from(
        "# a YAML bomb\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: laughs}\ndata:\n  l0: &l0 \"lol\"\n",
    );
    for level in 1..=9 {
        let aliases = vec![format!("*l{}", level - 1); 10].join(", ");
        yaml.push_str(&format!("  l{level}: &l{level} [{aliases}]\n"));
    }
    yaml
}

/// The line number after `file:` in `message`.
fn line_after(message: &str, file: &str) -> Option<usize> {
    message
        .split(&format!("{file}:"))
        .nth(1)?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

fn write_tree(files: &[(&str, Vec<u8>)], links: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    for (path, target) in links {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, path).unwrap();
    }
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_bad_input_applies_nothing_says_where_and_a_fix_recovers() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-badkinds").await;
    let repo = unique_name("sync-badkinds");
    let good = tree(&[
        ("deploy/settings.yaml", &settings("info")),
        ("deploy/flags.yaml", FLAGS),
    ]);
    let seed = world.git_seed(&repo, Some(good.path())).await.unwrap();
    git_secret(&ns, world, "git").await;
    create_git_sync(&ns, "orders", &world.git_http_url(&repo), "deploy", "git").await;
    let synchronizer = Synchronizer::start(world, ns.name()).await;
    wait_applied(&ns, "orders", &seed).await;
    let uids = {
        let api = ns.api::<ConfigMap>();
        let settings = api.get("orders-settings").await.unwrap().metadata.uid;
        let flags = api.get("orders-flags").await.unwrap().metadata.uid;
        (settings, flags)
    };

    let mut refused = Vec::new();
    for case in cases() {
        let mut files = vec![("deploy/settings.yaml", settings("debug").into_bytes())];
        files.extend(case.files.iter().cloned());
        let dir = write_tree(&files, &case.links);
        let bad = commit_dir(world, &repo, dir.path(), case.what).await;
        // Refused at checkout, the commit is not attempted: the message names it.
        let refused_it = |s: &GitSyncStatus| {
            if case.at_checkout {
                s.reason("Ready") == case.reason && s.message("Ready").contains(bad.as_str())
            } else {
                s.attempted(&bad)
            }
        };
        let what = format!("{} to be refused", case.what);
        let failed = wait_status(&ns, "orders", &what, |s| {
            s.is("Ready=False") && refused_it(s)
        })
        .await;
        let (_, reason, message) = condition(&failed, "Ready").unwrap();
        println!("{}: {reason}: {message}", case.what);
        assert_eq!(reason, case.reason, "{}: {message}", case.what);
        for needle in &case.says {
            assert!(
                message.contains(needle),
                "{}: {needle:?} not in: {message}",
                case.what
            );
        }
        if let Some((file, lines)) = &case.at {
            let line = line_after(&message, file)
                .unwrap_or_else(|| panic!("{}: no {file}:LINE in: {message}", case.what));
            assert!(
                lines.contains(&line),
                "{}: line {line} of {file} not in {lines:?}: {message}",
                case.what
            );
        }
        assert!(
            !message.contains("/checkouts/") && !message.contains("/tmp/"),
            "{}: the message shows the synchronizer's scratch paths: {message}",
            case.what
        );
        if !case.at_checkout {
            assert_eq!(
                condition(&failed, "Stalled").map(|c| c.0).as_deref(),
                Some("True"),
                "{}",
                case.what
            );
        }
        // Nothing applied, nothing deleted.
        assert_eq!(failed.last_applied_revision.as_deref(), Some(seed.as_str()));
        assert_eq!(failed.inventory.len(), 2, "{}", describe(&failed));
        let api = ns.api::<ConfigMap>();
        let settings_now = api.get("orders-settings").await.unwrap();
        assert_eq!(settings_now.metadata.uid, uids.0);
        assert_eq!(
            settings_now.data.unwrap()["log-level"],
            "info",
            "{}",
            case.what
        );
        let flags_now = api.get_opt("orders-flags").await.unwrap();
        assert_eq!(
            flags_now.and_then(|f| f.metadata.uid),
            uids.1,
            "{}: orders-flags was deleted",
            case.what
        );
        for name in [
            "extra",
            "extra-two",
            "cache",
            "menu",
            "dump",
            "tenant-00000",
            "laughs",
        ] {
            assert!(api.get_opt(name).await.unwrap().is_none(), "{name} applied");
        }
        if !case.at_checkout {
            refused.push((bad, reason));
        }
    }

    // The fix: settings changed, flags removed; applied and pruned.
    let fixed = tree(&[("deploy/settings.yaml", &settings("debug"))]);
    let fix = commit_dir(
        world,
        &repo,
        fixed.path(),
        "orders: debug logging, no flags",
    )
    .await;
    let recovered = wait_applied(&ns, "orders", &fix).await;
    assert_eq!(
        condition(&recovered, "Stalled").map(|c| c.0).as_deref(),
        Some("False")
    );
    let api = ns.api::<ConfigMap>();
    let settings_now = api.get("orders-settings").await.unwrap();
    assert_eq!(settings_now.metadata.uid, uids.0);
    assert_eq!(settings_now.data.unwrap()["log-level"], "debug");
    assert!(api.get_opt("orders-flags").await.unwrap().is_none());
    // The history tells the story: the fix, every refused commit with its reason, the seed.
    let history: Vec<(&str, Option<&str>)> = recovered
        .history
        .iter()
        .map(|h| (h.revision.as_str(), h.reason.as_deref()))
        .collect();
    // It keeps the last 10 revisions: the oldest (the seed first) fall off.
    let limit = deploy_synchronizer::resource::HISTORY_LIMIT;
    assert_eq!(history.len(), (refused.len() + 2).min(limit), "{history:?}");
    assert_eq!(history[0].0, fix, "{history:?}");
    for (n, (bad, reason)) in refused.iter().rev().enumerate().take(limit - 1) {
        assert_eq!(
            history[n + 1],
            (bad.as_str(), Some(reason.as_str())),
            "{history:?}"
        );
    }
    if refused.len() + 2 <= limit {
        assert_eq!(history[refused.len() + 1].0, seed, "{history:?}");
    }

    synchronizer.stop().await;
}
