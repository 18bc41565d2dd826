use super::*;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

#[test]
fn durations_parse_like_go() {
    assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
    assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
    assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    for bad in ["", "5", "m", "5x", "-1s", "1.5m"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_condition_keeps_its_transition_time_while_its_status_stays() {
    let mut conditions = Vec::new();
    set_condition(
        &mut conditions,
        READY,
        true,
        "Applied",
        "one",
        Some(1),
        at(0),
    );
    set_condition(
        &mut conditions,
        READY,
        true,
        "Applied",
        "two",
        Some(2),
        at(10),
    );
    assert_eq!(conditions.len(), 1);
    assert_eq!(conditions[0].last_transition_time, Time(at(0)));
    assert_eq!(conditions[0].message, "two");
    set_condition(
        &mut conditions,
        READY,
        false,
        "RenderFailed",
        "bad",
        Some(2),
        at(20),
    );
    assert_eq!(conditions[0].last_transition_time, Time(at(20)));
}

#[test]
fn a_failure_sets_ready_false_and_stalled_for_bad_input_only() {
    let mut status = GitSyncStatus::default();
    record_failure(
        &mut status,
        Some(("a".repeat(40).as_str(), "broken yaml")),
        FailureReason::RenderFailed,
        "render failed: app.yaml:3:1: invalid YAML",
        Some(1),
        at(0),
    );
    assert_eq!(
        status.last_attempted_revision.as_deref(),
        Some("a".repeat(40).as_str())
    );
    assert_eq!(status.last_applied_revision, None);
    let ready = condition(&status, READY).unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "RenderFailed")
    );
    assert_eq!(condition(&status, STALLED).unwrap().status, "True");
    assert_eq!(status.history[0].reason.as_deref(), Some("RenderFailed"));

    record_failure(
        &mut status,
        None,
        FailureReason::GitFailed,
        "unreachable",
        Some(1),
        at(5),
    );
    assert_eq!(condition(&status, STALLED).unwrap().status, "False");
    assert_eq!(status.history.len(), 1);
}

#[test]
fn history_is_newest_first_and_capped() {
    let mut status = GitSyncStatus::default();
    for n in 0..12 {
        let revision = format!("{n:040}");
        record_applied(&mut status, &revision, "subject", "ok", Some(1), at(n));
        record_applied(
            &mut status,
            &revision,
            "subject",
            "ok again",
            Some(1),
            at(n + 1),
        );
    }
    assert_eq!(status.history.len(), HISTORY_LIMIT);
    assert_eq!(status.history[0].revision, format!("{:040}", 11));
    assert_eq!(status.history[0].applied_at, Some(at(11).to_string()));
}

#[test]
fn an_applied_revision_that_failed_before_is_marked_applied() {
    let mut status = GitSyncStatus::default();
    record_failure(
        &mut status,
        Some(("r1", "s")),
        FailureReason::ApplyFailed,
        "x",
        None,
        at(0),
    );
    record_applied(&mut status, "r1", "s", "ok", None, at(1));
    assert_eq!(status.history.len(), 1);
    assert_eq!(status.history[0].failed_at, None);
    assert!(health_pending(&status));
}

#[test]
fn health_is_waited_for_until_the_timeout() {
    let mut status = GitSyncStatus::default();
    record_applied(&mut status, "r1", "s", "ok", None, at(0));
    let timeout = Duration::from_secs(60);
    let progressing = Health::progressing("1 of 2 replicas available");
    assert_eq!(
        record_health(&mut status, &progressing, timeout, None, at(10)),
        Verdict::Waiting
    );
    assert_eq!(condition(&status, HEALTHY).unwrap().status, "Unknown");
    assert_eq!(status.health.as_deref(), Some("Progressing"));

    assert_eq!(
        record_health(&mut status, &progressing, timeout, None, at(61)),
        Verdict::TimedOut
    );
    let healthy = condition(&status, HEALTHY).unwrap();
    assert_eq!(
        (healthy.status.as_str(), healthy.reason.as_str()),
        ("False", "HealthTimeout")
    );
    assert!(status.history[0].failed_at.is_some());
    assert!(!health_pending(&status));
    // Later assessments only report, and keep saying the revision timed out while it is not
    // healthy.
    assert_eq!(
        record_health(&mut status, &progressing, timeout, None, at(65)),
        Verdict::Settled
    );
    let healthy = condition(&status, HEALTHY).unwrap();
    assert_eq!(
        (healthy.status.as_str(), healthy.reason.as_str()),
        ("False", "HealthTimeout")
    );
    assert!(
        healthy.message.contains("now Progressing"),
        "{}",
        healthy.message
    );
    let ok = Health::healthy("2 objects healthy");
    assert_eq!(
        record_health(&mut status, &ok, timeout, None, at(70)),
        Verdict::Settled
    );
    assert_eq!(status.health.as_deref(), Some("Healthy"));
    assert_eq!(condition(&status, HEALTHY).unwrap().reason, "Healthy");
}

#[test]
fn becoming_healthy_ends_the_wait() {
    let mut status = GitSyncStatus::default();
    record_applied(&mut status, "r1", "s", "ok", None, at(0));
    let verdict = record_health(
        &mut status,
        &Health::healthy("3 objects healthy"),
        Duration::from_secs(60),
        None,
        at(3),
    );
    assert_eq!(verdict, Verdict::Healthy);
    assert_eq!(status.history[0].healthy_at, Some(at(3).to_string()));
    assert_eq!(condition(&status, HEALTHY).unwrap().status, "True");
}

#[test]
fn degraded_while_waiting_is_false_not_unknown() {
    let mut status = GitSyncStatus::default();
    record_applied(&mut status, "r1", "s", "ok", None, at(0));
    let degraded = Health::degraded("pod web-1: CrashLoopBackOff");
    assert_eq!(
        record_health(&mut status, &degraded, Duration::from_secs(60), None, at(5)),
        Verdict::Waiting
    );
    let healthy = condition(&status, HEALTHY).unwrap();
    assert_eq!(
        (healthy.status.as_str(), healthy.reason.as_str()),
        ("False", "Degraded")
    );
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let cap = Duration::from_secs(10);
    let waits: Vec<u64> = (1..=6).map(|n| backoff(n, cap).as_secs()).collect();
    assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
}

#[test]
fn only_what_is_not_applied_and_ready_is_an_upgrade() {
    let mut status = GitSyncStatus {
        last_applied_revision: Some("abc".into()),
        last_applied_inputs: Some("oci://r/shop 1.4.2 (sha256:0)".into()),
        observed_generation: Some(3),
        ..GitSyncStatus::default()
    };
    set_condition(
        &mut status.conditions,
        READY,
        true,
        "Synced",
        "ok",
        Some(3),
        at(0),
    );
    let inputs = status.last_applied_inputs.clone();
    assert!(!is_upgrade(&status, "abc", &inputs, Some(3)));
    assert!(is_upgrade(&status, "def", &inputs, Some(3)));
    assert!(is_upgrade(
        &status,
        "abc",
        &Some("oci://r/shop 1.4.3 (sha256:1)".into()),
        Some(3)
    ));
    assert!(is_upgrade(&status, "abc", &inputs, Some(4)));
    set_condition(
        &mut status.conditions,
        READY,
        false,
        "ApplyFailed",
        "hook",
        Some(3),
        at(1),
    );
    assert!(is_upgrade(&status, "abc", &inputs, Some(3)));
}

fn id(group: &str, kind: &str, name: &str) -> ObjectRef {
    ObjectRef {
        group: group.into(),
        kind: kind.into(),
        namespace: "shop".into(),
        name: name.into(),
    }
}

/// A status whose applied revision `a1` was assessed Healthy.
fn healthy_at_a1() -> GitSyncStatus {
    let mut status = GitSyncStatus::default();
    record_applied(&mut status, "a1", "first", "applied", Some(1), at(0));
    let health = Health::healthy("3 objects healthy");
    record_health(
        &mut status,
        &health,
        Duration::from_secs(60),
        Some(1),
        at(5),
    );
    status
}

#[test]
fn health_is_carried_over_a_revision_that_sent_only_configuration() {
    let before = healthy_at_a1();
    let config = id("", "ConfigMap", "routes");
    let role = id("rbac.authorization.k8s.io", "Role", "reader");
    let carried = carried_health(&before, [&config, &role], 1000).unwrap();
    assert_eq!(carried, Health::healthy("1000 objects healthy"));
    // As the full assessment words it, so the next one finds nothing to write.
    let parts = (0..1000).map(|i| (id("", "ConfigMap", &format!("c{i}")), Health::healthy("")));
    assert_eq!(carried, health::aggregate(parts));
    // Nothing sent (a prune only): still known.
    assert!(carried_health(&before, [], 10).is_some());
}

#[test]
fn health_is_assessed_when_a_workload_is_sent_or_the_last_look_was_not_healthy() {
    let before = healthy_at_a1();
    let web = id("apps", "Deployment", "web");
    let config = id("", "ConfigMap", "routes");
    assert_eq!(carried_health(&before, [&config, &web], 10), None);
    let service = id("", "Service", "web");
    assert_eq!(carried_health(&before, [&service], 10), None);

    let mut degraded = before.clone();
    let health = Health::degraded("pod web-1: CrashLoopBackOff");
    record_health(
        &mut degraded,
        &health,
        Duration::from_secs(60),
        Some(1),
        at(9),
    );
    assert_eq!(carried_health(&degraded, [&config], 10), None);

    // Applied but not assessed yet: unknown, whatever it sends.
    let mut waiting = before.clone();
    record_applied(&mut waiting, "b2", "second", "applied", Some(1), at(10));
    assert_eq!(carried_health(&waiting, [&config], 10), None);
    assert_eq!(
        carried_health(&GitSyncStatus::default(), [&config], 10),
        None
    );
}
