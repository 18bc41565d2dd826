//! Unit tests of what an `ImageUpdate`'s status says: one per branch of [`decide`], [`record`]
//! and [`failed`], on the status as a reconcile would find it stored.

use chrono::TimeDelta;

use super::*;
use crate::edit::ImageRef;
use crate::schedule::Window;
use crate::writeback::{Change, TrailerChange};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// Monday 2026-11-23, 10:00 UTC: inside business hours.
const MONDAY_TEN: &str = "2026-11-23T10:00:00Z";
/// The same Monday at 06:00 UTC: before business hours.
const MONDAY_SIX: &str = "2026-11-23T06:00:00Z";
const MINUTE: Duration = Duration::from_secs(60);

fn id(name: &str) -> PolicyId {
    PolicyId {
        namespace: "shop".into(),
        name: name.into(),
    }
}

fn chosen(tag: &str) -> Chosen {
    Chosen {
        image: ImageRef::new("127.0.0.1:5000/shop/web", Some(tag), None).unwrap(),
    }
}

fn business_hours() -> Batcher {
    let window = Window {
        cron: "* 9-17 * * 1-5".into(),
        time_zone: "UTC".into(),
    };
    Batcher::new(Duration::ZERO, Some(window.compile().unwrap()))
}

/// The status a reconcile finds when the last one said `reason`.
fn stored(ready: bool, reason: &str, message: &str) -> ImageUpdateStatus {
    ImageUpdateStatus {
        observed_generation: Some(3),
        conditions: set_ready(&[], ready, reason, message, Some(3)),
        ..ImageUpdateStatus::default()
    }
}

fn facts(waiting: usize) -> Facts {
    let entry = |i: usize| PendingEntry {
        policy: format!("shop/web{i}"),
        file: "apps/web/deployment.yaml".into(),
        old_image: "127.0.0.1:5000/shop/web:1.4.2".into(),
        new_image: "127.0.0.1:5000/shop/web:1.4.3".into(),
        since: "2026-11-23T05:59:00Z".into(),
    };
    Facts {
        generation: Some(3),
        waiting: (0..waiting).map(entry).collect(),
        preview_failed: None,
        interval: MINUTE,
        checked_at: None,
    }
}

fn ready(status: &ImageUpdateStatus) -> (&str, &str, &str) {
    let c = status.conditions.iter().find(|c| c.type_ == READY).unwrap();
    (c.status.as_str(), c.reason.as_str(), c.message.as_str())
}

fn pending_web(since: DateTime<Utc>) -> Pending<PolicyId, Chosen> {
    let mut pending = Pending::new();
    pending.record(id("web"), chosen("1.4.3"), since);
    pending
}

/// The status stored while one change waits for the batch delay, and what [`decide`] says
/// when its time came: the same, the change still listed.
fn batching_one() -> (ImageUpdateStatus, ImageUpdateStatus) {
    let mut was = stored(
        true,
        "Batching",
        "1 change(s) go out together at 2026-11-23T10:00:00Z",
    );
    was.pending = facts(1).waiting;
    was.pending_count = 1;
    (was.clone(), was)
}

fn change() -> Change {
    Change {
        policy: id("web"),
        file: "apps/web/deployment.yaml".into(),
        line: 7,
        image: "127.0.0.1:5000/shop/web".into(),
        old: "1.4.2".into(),
        new: "1.4.3".into(),
    }
}

fn broken_file() -> Problem {
    Problem {
        file: "apps/values.yaml".into(),
        line: Some(4),
        column: Some(9),
        policy: None,
        kind: ProblemKind::Unparsable {
            message: "unclosed flow sequence".into(),
        },
    }
}

fn pushed(problems: Vec<Problem>, reverted: Vec<TrailerChange>) -> Outcome {
    Outcome::Pushed {
        commit: "0123456789abcdef0123456789abcdef01234567".into(),
        branch: "main".into(),
        changes: vec![change()],
        problems,
        reverted,
        attempts: 1,
        proposed: None,
    }
}

#[test]
fn nothing_to_write_before_the_interval_requeues_until_it_has_passed() {
    let now = at(MONDAY_TEN);
    let mut f = facts(0);
    f.checked_at = Some(now - TimeDelta::seconds(15));
    let batcher = Batcher::new(Duration::ZERO, None);
    let (step, next) = decide(
        &ImageUpdateStatus::default(),
        &f,
        &batcher,
        &mut Pending::new(),
        now,
    );
    assert_eq!(step, Step::Requeue(Duration::from_secs(45)));
    assert_eq!(ready(&next), ("True", "UpToDate", "nothing to write"));
    assert_eq!(next.observed_generation, Some(3));

    // A Ready condition already there (say a push's PushedWithProblems) is kept as it is.
    let was = stored(
        true,
        "PushedWithProblems",
        "pushed 0123 to main; problems: …",
    );
    let (_, next) = decide(&was, &f, &batcher, &mut Pending::new(), now);
    assert_eq!(next, was, "an unchanged status: nothing is written");
}

#[test]
fn nothing_pending_once_the_interval_passed_reads_the_branch_again() {
    let now = at(MONDAY_TEN);
    let batcher = Batcher::new(Duration::ZERO, None);
    let (step, _) = decide(
        &ImageUpdateStatus::default(),
        &facts(0),
        &batcher,
        &mut Pending::new(),
        now,
    );
    assert_eq!(step, Step::Push(Vec::new()));

    // Not while the window is closed: due, it looks again one interval later.
    let now = at(MONDAY_SIX);
    let (step, _) = decide(
        &ImageUpdateStatus::default(),
        &facts(0),
        &business_hours(),
        &mut Pending::new(),
        now,
    );
    assert_eq!(step, Step::Requeue(MINUTE));
}

#[test]
fn a_change_whose_time_came_is_pushed() {
    let now = at(MONDAY_TEN);
    let mut pending = pending_web(now);
    let batcher = Batcher::new(Duration::ZERO, None);
    let (step, next) = decide(
        &ImageUpdateStatus::default(),
        &facts(1),
        &batcher,
        &mut pending,
        now,
    );
    let Step::Push(changes) = step else {
        panic!("{step:?}");
    };
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].key, id("web"));
    assert!(pending.is_empty(), "the batch was taken out of pending");
    assert_eq!(
        next.pending_count, 1,
        "listed until the push says otherwise"
    );
}

#[test]
fn batching_lists_the_changes_and_when_they_go_out() {
    let now = at(MONDAY_TEN);
    let mut pending = pending_web(now - TimeDelta::seconds(10));
    let batcher = Batcher::new(Duration::from_secs(30), None);
    let (step, next) = decide(
        &ImageUpdateStatus::default(),
        &facts(2),
        &batcher,
        &mut pending,
        now,
    );
    assert_eq!(step, Step::Requeue(Duration::from_secs(20)));
    assert_eq!(pending.len(), 1, "nothing taken");
    assert_eq!(next.pending.len(), 2);
    assert_eq!(next.pending_count, 2);
    assert_eq!(next.next_push_time.as_deref(), Some("2026-11-23T10:00:20Z"));
    assert_eq!(
        ready(&next),
        (
            "True",
            "Batching",
            "2 change(s) go out together at 2026-11-23T10:00:20Z"
        )
    );

    // A branch that cannot be read is named; the changes are still listed.
    let mut f = facts(1);
    f.preview_failed = Some("authentication failed".into());
    let (_, next) = decide(
        &ImageUpdateStatus::default(),
        &f,
        &batcher,
        &mut pending,
        now,
    );
    assert_eq!(
        ready(&next).2,
        "1 change(s) go out together at 2026-11-23T10:00:20Z (the files cannot be listed: authentication failed)"
    );
}

#[test]
fn a_closed_window_holds_the_changes_until_it_opens() {
    let now = at(MONDAY_SIX);
    let mut pending = pending_web(now);
    let (step, next) = decide(
        &ImageUpdateStatus::default(),
        &facts(1),
        &business_hours(),
        &mut pending,
        now,
    );
    assert_eq!(step, Step::Requeue(Duration::from_secs(3 * 3600)));
    assert_eq!(next.next_push_time.as_deref(), Some("2026-11-23T09:00:00Z"));
    assert_eq!(
        ready(&next),
        (
            "True",
            "WaitingForWindow",
            "1 change(s) wait for the update window, which opens at 2026-11-23T09:00:00Z"
        )
    );
}

#[test]
fn a_window_that_closed_before_the_round_started_requeues_its_changes_until_it_opens() {
    let now = at(MONDAY_SIX);
    let was = ImageUpdateStatus::default();
    let (_, next) = decide(
        &was,
        &facts(1),
        &Batcher::new(Duration::ZERO, None),
        &mut pending_web(now),
        now,
    );
    let outcome = Outcome::WindowClosed {
        next_open: Some(at("2026-11-23T09:00:00Z")),
    };
    let verdict = record(&was, next, &outcome, &BTreeSet::new(), MINUTE, now);
    assert_eq!(verdict.requeue, Duration::from_secs(3 * 3600));
    assert_eq!(verdict.next.pending_count, 1);
    assert_eq!(
        verdict.next.next_push_time.as_deref(),
        Some("2026-11-23T09:00:00Z")
    );
    assert_eq!(ready(&verdict.next).1, "WaitingForWindow");
    assert!(verdict.events.is_empty());

    let never = Outcome::WindowClosed { next_open: None };
    let verdict = record(&was, verdict.next, &never, &BTreeSet::new(), MINUTE, now);
    assert_eq!(verdict.requeue, MINUTE);
    assert_eq!(
        ready(&verdict.next).2,
        "the update window never opens again"
    );
}

#[test]
fn a_push_clears_the_pending_changes_and_names_them() {
    let now = at(MONDAY_TEN);
    let (was, next) = batching_one();
    let verdict = record(
        &was,
        next,
        &pushed(Vec::new(), Vec::new()),
        &BTreeSet::new(),
        MINUTE,
        now,
    );
    let message = "pushed 0123456789ab to main: apps/web/deployment.yaml: 127.0.0.1:5000/shop/web 1.4.2 → 1.4.3";
    assert_eq!(ready(&verdict.next), ("True", "Pushed", message));
    assert!(verdict.next.pending.is_empty());
    assert_eq!(verdict.next.pending_count, 0);
    assert_eq!(
        verdict.next.last_push_commit.as_deref(),
        Some("0123456789abcdef0123456789abcdef01234567")
    );
    assert_eq!(verdict.next.last_push_time.as_deref(), Some(MONDAY_TEN));
    assert_eq!(verdict.events, vec![note(false, "Pushed", message)]);
    assert_eq!(verdict.requeue, MINUTE);
}

#[test]
fn a_push_with_problems_names_them_once_per_new_list() {
    let now = at(MONDAY_TEN);
    let was = ImageUpdateStatus::default();
    let outcome = pushed(vec![broken_file()], Vec::new());
    let verdict = record(&was, was.clone(), &outcome, &BTreeSet::new(), MINUTE, now);
    let (status, reason, message) = ready(&verdict.next);
    assert_eq!((status, reason), ("True", "PushedWithProblems"));
    assert!(
        message.ends_with("; problems: apps/values.yaml:4:9: the file is not valid YAML (unclosed flow sequence); it was skipped"),
        "{message}"
    );
    let reasons: Vec<&str> = verdict.events.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(reasons, ["Pushed", "RepositoryProblems"]);
    assert!(verdict.events[1].warning);
    assert!(
        verdict.events[1]
            .message
            .starts_with("left alone: apps/values.yaml:4:9: ")
    );

    // The branch up to date with the same problems: the message changes, a Warning again;
    // then the same round again: no new Warning, and an unchanged status.
    let up_to_date = Outcome::UpToDate {
        problems: vec![broken_file()],
        reverted: Vec::new(),
        proposed: None,
    };
    let round_on = |stored: &ImageUpdateStatus| {
        let known = BTreeSet::new();
        record(stored, stored.clone(), &up_to_date, &known, MINUTE, now)
    };
    let first = round_on(&verdict.next);
    assert_eq!(ready(&first.next).1, "UpToDateWithProblems");
    assert_eq!(first.events.len(), 1);
    let again = round_on(&first.next);
    assert!(again.events.is_empty());
    assert_eq!(again.next, first.next);
}

#[test]
fn an_up_to_date_branch_settles_the_pending_changes() {
    let (was, next) = batching_one();
    let up_to_date = Outcome::UpToDate {
        problems: Vec::new(),
        reverted: Vec::new(),
        proposed: None,
    };
    let verdict = record(
        &was,
        next,
        &up_to_date,
        &BTreeSet::new(),
        MINUTE,
        at(MONDAY_TEN),
    );
    assert_eq!(
        ready(&verdict.next),
        ("True", "UpToDate", "the branch holds every chosen image")
    );
    assert!(verdict.next.pending.is_empty());
    assert!(verdict.events.is_empty());
}

#[test]
fn a_git_failure_lists_the_changes_again_and_warns_once_per_reason() {
    let (was, next) = batching_one();
    // The round's changes wait again, listed without their files.
    let waiting: Vec<PendingEntry> = facts(1)
        .waiting
        .into_iter()
        .map(|e| PendingEntry {
            file: String::new(),
            ..e
        })
        .collect();
    let verdict = failed(
        &was,
        next,
        waiting.clone(),
        "GitAuth",
        "authentication failed",
        MINUTE,
    );
    let message = "write-back failed: authentication failed";
    assert_eq!(ready(&verdict.next), ("False", "GitAuth", message));
    assert_eq!(verdict.next.pending, waiting);
    assert_eq!(verdict.next.pending_count, 1);
    assert_eq!(verdict.events, vec![note(true, "GitAuth", message)]);

    let again = failed(
        &verdict.next,
        verdict.next.clone(),
        waiting,
        "GitAuth",
        "authentication failed",
        MINUTE,
    );
    assert!(
        again.events.is_empty(),
        "the same reason: no second Warning"
    );
    assert_eq!(again.next, verdict.next);
}

#[test]
fn a_spec_that_cannot_be_used_is_invalid() {
    let next = invalid(
        &ImageUpdateStatus::default(),
        Some(4),
        "batchDelay \"soon\" is not a duration",
    );
    assert_eq!(next.observed_generation, Some(4));
    assert_eq!(
        ready(&next),
        ("False", "Invalid", "batchDelay \"soon\" is not a duration")
    );
}

#[test]
fn a_revert_seen_blocks_its_tags_in_the_namespace() {
    let revert = |ns: &str, name: &str, new: &str| TrailerChange {
        policy: PolicyId {
            namespace: ns.into(),
            name: name.into(),
        },
        file: "apps/web/deployment.yaml".into(),
        image: "127.0.0.1:5000/shop/web".into(),
        old: "1.4.2".into(),
        new: new.into(),
    };
    let outcome = pushed(
        Vec::new(),
        vec![
            revert("shop", "web", "1.4.3"),
            revert(
                "shop",
                "web",
                "1.4.4@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            ),
            revert(
                "shop",
                "api",
                "sha256:1111111111111111111111111111111111111111111111111111111111111111",
            ),
            revert("other", "web", "9.9.9"),
        ],
    );
    let tags = reverted_tags(&outcome, "shop");
    assert_eq!(
        tags,
        BTreeMap::from([(
            "web".to_owned(),
            vec!["1.4.3".to_owned(), "1.4.4".to_owned()]
        )]),
        "a digest has no tag to block; another namespace's policy is not ours"
    );
    assert!(reverted_tags(&Outcome::WindowClosed { next_open: None }, "shop").is_empty());
}

#[test]
fn the_branch_is_read_again_once_the_interval_has_passed() {
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
    let unknown = |name: &str| Problem {
        file: "apps/web.yaml".into(),
        line: Some(12),
        column: Some(18),
        policy: Some(id(name)),
        kind: ProblemKind::UnknownPolicy {
            policy: format!("shop:{name}"),
        },
    };
    let broken = broken_file();
    let known: BTreeSet<PolicyId> = [id("web")].into();
    let reported = reportable(&[unknown("web"), unknown("ghost"), broken], &known);
    assert_eq!(reported.len(), 2, "{reported:?}");
    assert!(reported[0].starts_with("apps/web.yaml:12:18: "));
    assert!(reported[0].contains("shop:ghost, which is unknown"));
    assert!(reported[1].starts_with("apps/values.yaml:4:9: the file is not valid YAML"));
}
