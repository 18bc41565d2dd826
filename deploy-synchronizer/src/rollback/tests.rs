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

#[test]
fn a_rollback_by_hand_reverts_the_applied_revision_or_goes_back_to_one() {
    let applied = failed();
    let status = GitSyncStatus {
        last_applied_revision: Some(applied.revision.clone()),
        history: vec![applied.clone()],
        ..GitSyncStatus::default()
    };
    // Rollback need not be enabled for a person to ask.
    let off: GitSyncSpec = serde_json::from_value(json!({"source": {"url": "u"}})).unwrap();
    let revert = by_hand(&off, &status, None).unwrap();
    assert_eq!(revert.undo, Undo::Revert);
    assert_eq!(revert.revision, applied.revision);
    assert_eq!(revert.branch, "sluice/rollback/4f1c2d9");
    assert!(
        revert
            .message
            .starts_with("Revert \"shop: bump web to 2.0.13\"\n\nThis reverts commit 4f1c2d9e")
    );
    assert!(
        revert.message.contains("asked for this rollback"),
        "{}",
        revert.message
    );

    let back = by_hand(&off, &status, Some("a1b2c3d4e5")).unwrap();
    assert_eq!(
        (back.undo, back.branch.as_str()),
        (Undo::BackTo, "sluice/rollback/to-a1b2c3d")
    );
    assert!(
        back.message.starts_with("Roll main back to a1b2c3d\n"),
        "{}",
        back.message
    );

    assert_eq!(
        by_hand(&off, &GitSyncStatus::default(), None),
        Err(Refusal::NothingApplied)
    );
    let tag = spec(json!({"source": {"url": "u", "ref": {"tag": "v1"}}}));
    assert_eq!(by_hand(&tag, &status, None), Err(Refusal::NotABranch));
}
