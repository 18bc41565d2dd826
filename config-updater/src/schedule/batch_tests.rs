use super::*;
use crate::schedule::Window;

/// A key as the daemon will use it: (image policy, file).
type Key = (&'static str, &'static str);

/// A payload as the daemon might use it: the new tag.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bump {
    tag: &'static str,
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .to_utc()
}

fn minutes(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

fn business_hours() -> CompiledWindow {
    Window {
        cron: "* 9-17 * * 1-5".into(),
        time_zone: "Europe/Berlin".into(),
    }
    .compile()
    .unwrap()
}

fn pushed(decision: Decision<Key, Bump>) -> Vec<(Key, &'static str)> {
    match decision {
        Decision::PushNow { changes } => {
            changes.into_iter().map(|c| (c.key, c.change.tag)).collect()
        }
        other => panic!("expected a push, got {other:?}"),
    }
}

const APP: Key = ("app", "apps/app/deployment.yaml");
const API: Key = ("api", "apps/api/values.yaml");
const WEB: Key = ("web", "apps/web/kustomization.yaml");

#[test]
fn nothing_pending_is_idle() {
    let batcher = Batcher::new(minutes(5), None);
    let mut pending: Pending<Key, Bump> = Pending::new();
    assert_eq!(
        batcher.decide(&mut pending, at("2024-06-03T10:00:00Z")),
        Decision::Idle
    );
    assert_eq!(
        batcher.next_push(&pending, at("2024-06-03T10:00:00Z")),
        NextPush::Nothing
    );
}

#[test]
fn one_bump_waits_the_delay_then_goes() {
    let batcher = Batcher::new(minutes(5), None);
    let mut pending = Pending::new();
    let t0 = at("2024-06-03T10:00:00Z");
    assert_eq!(
        pending.record(APP, Bump { tag: "1.4.13" }, t0),
        Recorded::Added
    );
    assert_eq!(
        batcher.decide(&mut pending, t0),
        Decision::WaitUntil(at("2024-06-03T10:05:00Z"))
    );
    assert_eq!(
        batcher.decide(&mut pending, at("2024-06-03T10:04:59Z")),
        Decision::WaitUntil(at("2024-06-03T10:05:00Z"))
    );
    assert_eq!(
        pushed(batcher.decide(&mut pending, at("2024-06-03T10:05:00Z"))),
        [(APP, "1.4.13")]
    );
    assert!(pending.is_empty());
    assert_eq!(
        batcher.decide(&mut pending, at("2024-06-03T10:05:00Z")),
        Decision::Idle
    );
}

#[test]
fn bumps_within_the_delay_go_out_as_one_batch() {
    let batcher = Batcher::new(minutes(5), None);
    let mut pending = Pending::new();
    pending.record(WEB, Bump { tag: "w2" }, at("2024-06-03T10:00:00Z"));
    pending.record(APP, Bump { tag: "a2" }, at("2024-06-03T10:02:00Z"));
    pending.record(API, Bump { tag: "p2" }, at("2024-06-03T10:04:30Z"));
    // The clock runs from the oldest bump, not the newest.
    assert_eq!(
        batcher.decide(&mut pending, at("2024-06-03T10:04:30Z")),
        Decision::WaitUntil(at("2024-06-03T10:05:00Z"))
    );
    // All three, in key order, though API has waited only 30 s.
    assert_eq!(
        pushed(batcher.decide(&mut pending, at("2024-06-03T10:05:00Z"))),
        [(API, "p2"), (APP, "a2"), (WEB, "w2")]
    );
}

#[test]
fn a_newer_bump_replaces_the_older_but_keeps_its_place_in_line() {
    let batcher = Batcher::new(minutes(5), None);
    let mut pending = Pending::new();
    pending.record(APP, Bump { tag: "1.4.12" }, at("2024-06-03T10:00:00Z"));
    let replaced = pending.record(APP, Bump { tag: "1.4.13" }, at("2024-06-03T10:03:00Z"));
    assert_eq!(replaced, Recorded::Replaced(Bump { tag: "1.4.12" }));
    assert_eq!(pending.len(), 1);
    assert_eq!(pending.oldest(), Some(at("2024-06-03T10:00:00Z")));
    let Decision::PushNow { changes } = batcher.decide(&mut pending, at("2024-06-03T10:05:00Z"))
    else {
        panic!()
    };
    assert_eq!(
        changes,
        [PendingChange {
            key: APP,
            change: Bump { tag: "1.4.13" },
            first_seen: at("2024-06-03T10:00:00Z"),
            last_seen: at("2024-06-03T10:03:00Z"),
        }]
    );
}

#[test]
fn a_steady_stream_of_bumps_does_not_postpone_the_push_forever() {
    let batcher = Batcher::new(minutes(5), None);
    let mut pending = Pending::new();
    let t0 = at("2024-06-03T10:00:00Z");
    let tags = ["b0", "b1", "b2", "b3", "b4", "b5"];
    for (i, tag) in tags.into_iter().enumerate() {
        let now = t0 + TimeDelta::minutes(i as i64);
        pending.record(APP, Bump { tag }, now);
        let decision = batcher.decide(&mut pending, now);
        if i < 5 {
            assert_eq!(decision, Decision::WaitUntil(t0 + TimeDelta::minutes(5)));
        } else {
            assert_eq!(pushed(decision), [(APP, "b5")]);
        }
    }
}

#[test]
fn out_of_order_bumps_are_dropped() {
    let mut pending = Pending::new();
    pending.record(APP, Bump { tag: "new" }, at("2024-06-03T10:05:00Z"));
    assert_eq!(
        pending.record(APP, Bump { tag: "old" }, at("2024-06-03T10:01:00Z")),
        Recorded::Stale(Bump { tag: "old" })
    );
    assert_eq!(pending.get(&APP), Some(&Bump { tag: "new" }));
    assert_eq!(pending.oldest(), Some(at("2024-06-03T10:05:00Z")));
}

#[test]
fn zero_delay_pushes_at_once() {
    let batcher = Batcher::new(Duration::ZERO, None);
    let mut pending = Pending::new();
    let now = at("2024-06-03T10:00:00Z");
    pending.record(APP, Bump { tag: "x" }, now);
    assert_eq!(pushed(batcher.decide(&mut pending, now)), [(APP, "x")]);
}

#[test]
fn outside_the_window_everything_waits_for_it_to_open() {
    let batcher = Batcher::new(minutes(5), Some(business_hours()));
    let mut pending = Pending::new();
    // Friday 2024-06-07 17:58 CEST: the delay runs out at 18:03, after the window shut.
    pending.record(APP, Bump { tag: "a1" }, at("2024-06-07T15:58:00Z"));
    let monday_9 = at("2024-06-10T07:00:00Z");
    assert_eq!(
        batcher.decide(&mut pending, at("2024-06-07T15:58:00Z")),
        Decision::WaitUntil(monday_9)
    );
    // Over the weekend more bumps gather; one replaces the first.
    pending.record(API, Bump { tag: "p1" }, at("2024-06-08T12:00:00Z"));
    pending.record(APP, Bump { tag: "a2" }, at("2024-06-09T20:00:00Z"));
    assert_eq!(
        batcher.decide(&mut pending, at("2024-06-09T20:00:00Z")),
        Decision::WaitUntil(monday_9)
    );
    // One more a minute before the window opens: it has not waited its delay, but goes along.
    pending.record(WEB, Bump { tag: "w1" }, at("2024-06-10T06:59:00Z"));
    assert_eq!(
        batcher.decide(&mut pending, at("2024-06-10T06:59:30Z")),
        Decision::WaitUntil(monday_9)
    );
    assert_eq!(
        pushed(batcher.decide(&mut pending, monday_9)),
        [(API, "p1"), (APP, "a2"), (WEB, "w1")],
        "one batch when the window opens"
    );
}

#[test]
fn the_window_opens_while_the_delay_runs() {
    let batcher = Batcher::new(minutes(5), Some(business_hours()));
    let mut pending = Pending::new();
    // 08:57 CEST: due at 09:02, when the window is open: wait for the delay, not the window.
    pending.record(APP, Bump { tag: "a1" }, at("2024-06-03T06:57:00Z"));
    assert_eq!(
        batcher.decide(&mut pending, at("2024-06-03T06:57:00Z")),
        Decision::WaitUntil(at("2024-06-03T07:02:00Z"))
    );
    assert_eq!(
        pushed(batcher.decide(&mut pending, at("2024-06-03T07:02:00Z"))),
        [(APP, "a1")]
    );

    // 08:50 CEST with a 2-minute delay: due 08:52, closed; the window opens at 09:00.
    let short = Batcher::new(minutes(2), Some(business_hours()));
    pending.record(API, Bump { tag: "p1" }, at("2024-06-03T06:50:00Z"));
    assert_eq!(
        short.decide(&mut pending, at("2024-06-03T06:50:00Z")),
        Decision::WaitUntil(at("2024-06-03T07:00:00Z"))
    );
    // Woken late (the daemon was busy): still pushes.
    assert_eq!(
        pushed(short.decide(&mut pending, at("2024-06-03T07:13:20Z"))),
        [(API, "p1")]
    );
}

#[test]
fn inside_the_window_it_is_just_the_delay() {
    let batcher = Batcher::new(minutes(5), Some(business_hours()));
    let mut pending = Pending::new();
    pending.record(APP, Bump { tag: "a1" }, at("2024-06-03T10:00:00Z"));
    assert_eq!(
        batcher.decide(&mut pending, at("2024-06-03T10:01:00Z")),
        Decision::WaitUntil(at("2024-06-03T10:05:00Z"))
    );
    assert_eq!(
        batcher.next_push(&pending, at("2024-06-03T10:01:00Z")),
        NextPush::At(at("2024-06-03T10:05:00Z"))
    );
    assert_eq!(
        pushed(batcher.decide(&mut pending, at("2024-06-03T10:05:00Z"))),
        [(APP, "a1")]
    );
}

#[test]
fn a_failed_push_is_requeued_without_losing_newer_bumps() {
    let batcher = Batcher::new(minutes(5), None);
    let mut pending = Pending::new();
    pending.record(APP, Bump { tag: "a1" }, at("2024-06-03T10:00:00Z"));
    pending.record(API, Bump { tag: "p1" }, at("2024-06-03T10:01:00Z"));
    let Decision::PushNow { changes } = batcher.decide(&mut pending, at("2024-06-03T10:05:00Z"))
    else {
        panic!()
    };
    // While the push ran, APP was bumped again; then the push failed.
    pending.record(APP, Bump { tag: "a2" }, at("2024-06-03T10:05:10Z"));
    pending.requeue(changes);
    assert_eq!(pending.get(&APP), Some(&Bump { tag: "a2" }));
    assert_eq!(pending.get(&API), Some(&Bump { tag: "p1" }));
    // The retry is not delayed again: APP keeps its original first_seen.
    assert_eq!(pending.oldest(), Some(at("2024-06-03T10:00:00Z")));
    assert_eq!(
        pushed(batcher.decide(&mut pending, at("2024-06-03T10:05:20Z"))),
        [(API, "p1"), (APP, "a2")]
    );
}

#[test]
fn withdrawn_bumps_leave_the_batch() {
    let batcher = Batcher::new(minutes(5), None);
    let mut pending = Pending::new();
    pending.record(APP, Bump { tag: "a1" }, at("2024-06-03T10:00:00Z"));
    pending.record(API, Bump { tag: "p1" }, at("2024-06-03T10:03:00Z"));
    let gone = pending.withdraw(&APP).unwrap();
    assert_eq!((gone.key, gone.change.tag), (APP, "a1"));
    assert_eq!(pending.withdraw(&APP), None);
    // The delay now runs from API's first sighting.
    assert_eq!(
        batcher.decide(&mut pending, at("2024-06-03T10:05:00Z")),
        Decision::WaitUntil(at("2024-06-03T10:08:00Z"))
    );
}

#[test]
fn absurd_delays_saturate() {
    let batcher = Batcher::new(Duration::MAX, None);
    let mut pending = Pending::new();
    pending.record(APP, Bump { tag: "a1" }, at("2024-06-03T10:00:00Z"));
    assert_eq!(
        batcher.decide(&mut pending, at("2024-06-03T10:00:00Z")),
        Decision::WaitUntil(DateTime::<Utc>::MAX_UTC)
    );
    let windowed = Batcher::new(Duration::MAX, Some(business_hours()));
    assert_eq!(
        windowed.decide(&mut pending, at("2024-06-03T10:00:00Z")),
        Decision::WindowNeverOpens
    );
    assert_eq!(pending.len(), 1, "kept");
}

#[test]
fn a_replaced_bump_keeps_its_first_seen() {
    let mut pending: Pending<Key, Bump> = Pending::new();
    let key = ("web", "apps/web.yaml");
    assert_eq!(pending.first_seen(&key), None);
    pending.record(key, Bump { tag: "1.4.3" }, at("2026-11-23T10:00:00Z"));
    pending.record(key, Bump { tag: "1.4.4" }, at("2026-11-23T10:03:00Z"));
    assert_eq!(pending.first_seen(&key), Some(at("2026-11-23T10:00:00Z")));
    assert_eq!(pending.get(&key), Some(&Bump { tag: "1.4.4" }));
}
