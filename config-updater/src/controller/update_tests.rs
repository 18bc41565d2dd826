//! Unit tests of the `ImageUpdate` reconciler's pure parts.

use super::*;

#[test]
fn the_branch_is_read_again_once_the_interval_has_passed() {
    let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
    let minute = Duration::from_secs(60);
    let now = at("2026-11-23T10:00:00Z");
    assert_eq!(interval_left(None, now, minute), Duration::ZERO);
    assert_eq!(
        interval_left(Some(at("2026-11-23T09:59:45Z")), now, minute),
        Duration::from_secs(45)
    );
    assert_eq!(
        interval_left(Some(at("2026-11-23T09:59:00Z")), now, minute),
        Duration::ZERO
    );
    assert_eq!(
        interval_left(Some(at("2026-11-23T09:50:00Z")), now, minute),
        Duration::ZERO
    );
    // A clock that went back: read now rather than wait for who knows how long.
    assert_eq!(
        interval_left(Some(at("2026-11-23T10:05:00Z")), now, minute),
        Duration::ZERO
    );
}

#[test]
fn a_marker_of_a_policy_that_has_not_chosen_yet_is_no_problem() {
    let id = |name: &str| PolicyId {
        namespace: "shop".into(),
        name: name.into(),
    };
    let unknown = |name: &str| Problem {
        file: "apps/web.yaml".into(),
        line: Some(12),
        column: Some(18),
        policy: Some(id(name)),
        kind: ProblemKind::UnknownPolicy {
            policy: format!("shop:{name}"),
        },
    };
    let broken = Problem {
        file: "apps/values.yaml".into(),
        line: Some(4),
        column: Some(9),
        policy: None,
        kind: ProblemKind::Unparsable {
            message: "unclosed flow sequence".into(),
        },
    };
    let known: BTreeSet<PolicyId> = [id("web")].into();
    let reported = reportable(&[unknown("web"), unknown("ghost"), broken], &known);
    assert_eq!(reported.len(), 2, "{reported:?}");
    assert!(reported[0].starts_with("apps/web.yaml:12:18: "));
    assert!(reported[0].contains("shop:ghost, which is unknown"));
    assert!(reported[1].starts_with("apps/values.yaml:4:9: the file is not valid YAML"));
}

#[test]
fn batch_delays() {
    assert_eq!(parse_batch_delay("0s"), Ok(Duration::ZERO));
    assert_eq!(parse_batch_delay("30s"), Ok(Duration::from_secs(30)));
    assert!(parse_batch_delay("soon").is_err());
}

#[test]
fn only_policies_with_a_latest_ref_are_chosen() {
    let with: ImagePolicy = serde_json::from_value(json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "ImagePolicy",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": {"imageRepositoryRef": {"name": "web"}, "policy": {"semver": {"range": ">=1.0.0"}}},
        "status": {"latestRef": {"name": "127.0.0.1:5000/demo/web", "tag": "1.4.3"}}
    }))
    .unwrap();
    let mut without = with.clone();
    without.metadata.name = Some("api".into());
    without.status = None;
    let chosen = chosen_of(&[with, without]);
    assert_eq!(chosen.len(), 1);
    let (id, c) = chosen.iter().next().unwrap();
    assert_eq!(id.to_string(), "apps:web");
    assert_eq!(c.image.to_string(), "127.0.0.1:5000/demo/web:1.4.3");
}
