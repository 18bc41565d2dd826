use serde_json::json;

use super::*;

fn spec(extra: serde_json::Value) -> GitSyncSpec {
    let mut value = json!({
        "source": {"url": "https://git.example/config.git", "ref": {"branch": "prod"}},
        "rollback": {"enabled": true}
    });
    for (key, v) in extra.as_object().unwrap() {
        value[key] = v.clone();
    }
    serde_json::from_value(value).unwrap()
}

fn failed() -> HistoryEntry {
    HistoryEntry {
        revision: "4f1c2d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e".into(),
        subject: "shop: bump web to 2.0.13".into(),
        applied_at: Some("2026-11-22T08:00:00Z".into()),
        failed_at: Some("2026-11-22T08:05:00Z".into()),
        reason: Some("HealthTimeout: Degraded".into()),
        ..HistoryEntry::default()
    }
}

#[test]
fn a_failed_revision_gets_a_revert_on_its_own_branch() {
    let plan = plan(
        &spec(json!({})),
        &failed(),
        "HealthTimeout: Deployment shop/web: CrashLoopBackOff",
    )
    .unwrap();
    assert_eq!(plan.base, "prod");
    assert_eq!(plan.branch, "sluice/rollback/4f1c2d9");
    assert_eq!(plan.revision, failed().revision);
    assert_eq!(
        (plan.author_name.as_str(), plan.author_email.as_str()),
        ("Sluice", "sluice@sluice.dev")
    );
    assert!(plan.message.starts_with("Revert \"shop: bump web to 2.0.13\"\n\nThis reverts commit 4f1c2d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e.\n"), "{}", plan.message);
    assert!(plan.message.contains("CrashLoopBackOff"));
    assert!(
        plan.message
            .ends_with("Sluice-Rollback-Of: 4f1c2d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e\n")
    );
}

#[test]
fn the_branch_prefix_and_author_are_configurable() {
    let spec = spec(
        json!({"rollback": {"enabled": true, "branchPrefix": "revert-",
        "authorName": "Platform Bot", "authorEmail": "bot@example.com"}}),
    );
    let plan = plan(&spec, &failed(), "x").unwrap();
    assert_eq!(plan.branch, "revert-4f1c2d9");
    assert_eq!(plan.author_name, "Platform Bot");
}

#[test]
fn no_proposal_when_off_pinned_or_done() {
    let off: GitSyncSpec = serde_json::from_value(json!({"source": {"url": "u"}})).unwrap();
    assert_eq!(plan(&off, &failed(), "x"), Err(Skip::Disabled));
    let disabled = spec(json!({"rollback": {"enabled": false}}));
    assert_eq!(plan(&disabled, &failed(), "x"), Err(Skip::Disabled));
    let tag = spec(json!({"source": {"url": "u", "ref": {"tag": "v1"}}}));
    assert_eq!(plan(&tag, &failed(), "x"), Err(Skip::NotABranch));
    let done = HistoryEntry {
        rollback_branch: Some("sluice/rollback/4f1c2d9".into()),
        ..failed()
    };
    assert_eq!(
        plan(&spec(json!({})), &done, "x"),
        Err(Skip::AlreadyProposed)
    );
}

#[test]
fn a_branch_default_is_main() {
    let spec = spec(json!({"source": {"url": "u"}}));
    assert_eq!(plan(&spec, &failed(), "x").unwrap().base, "main");
}
