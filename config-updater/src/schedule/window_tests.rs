use super::*;

fn window(cron: &str, tz: &str) -> CompiledWindow {
    Window {
        cron: cron.into(),
        time_zone: tz.into(),
    }
    .compile()
    .unwrap_or_else(|e| panic!("{e}"))
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .to_utc()
}

const WEEKDAYS_9_TO_6: &str = "* 9-17 * * 1-5";

#[test]
fn business_hours_in_berlin_summer_and_winter() {
    let w = window(WEEKDAYS_9_TO_6, "Europe/Berlin");
    // Monday 2024-06-03, CEST (UTC+2).
    assert!(!w.is_open(utc("2024-06-03T06:59:59Z")));
    assert!(w.is_open(utc("2024-06-03T07:00:00Z")));
    assert!(
        w.is_open(utc("2024-06-03T15:59:59.999Z")),
        "17:59:59 is still inside `9-17`"
    );
    assert!(!w.is_open(utc("2024-06-03T16:00:00Z")));
    // Monday 2024-01-08, CET (UTC+1): the same local hours are an hour later in UTC.
    assert!(!w.is_open(utc("2024-01-08T07:30:00Z")));
    assert!(w.is_open(utc("2024-01-08T08:00:00Z")));
    // Weekend.
    assert!(!w.is_open(utc("2024-06-08T10:00:00Z")));
}

#[test]
fn next_open_is_now_when_open_else_the_next_open_minute() {
    let w = window(WEEKDAYS_9_TO_6, "Europe/Berlin");
    let now = utc("2024-06-03T10:17:42Z");
    assert_eq!(w.next_open(now), Some(now));
    assert_eq!(
        w.next_open(utc("2024-06-03T06:30:10Z")),
        Some(utc("2024-06-03T07:00:00Z"))
    );
    // Friday evening → Monday 09:00 CEST.
    assert_eq!(
        w.next_open(utc("2024-06-07T16:00:00Z")),
        Some(utc("2024-06-10T07:00:00Z"))
    );
    // Whatever next_open returns is open.
    for probe in [
        "2024-03-29T18:00:00Z",
        "2024-10-25T17:00:00Z",
        "2024-12-24T23:59:59Z",
    ] {
        let t = w.next_open(utc(probe)).unwrap();
        assert!(w.is_open(t) && t >= utc(probe), "{probe} -> {t}");
    }
}

#[test]
fn other_time_zones() {
    let tokyo = window(WEEKDAYS_9_TO_6, "Asia/Tokyo"); // UTC+9, no DST
    assert!(tokyo.is_open(utc("2024-06-03T00:00:00Z")));
    assert!(
        !tokyo.is_open(utc("2024-06-02T23:59:00Z")),
        "Monday 08:59 in Tokyo"
    );
    let utc_window = window("* 9-17 * * *", "UTC");
    assert!(utc_window.is_open(utc("2024-06-03T09:00:00Z")));
    assert_eq!(
        window("* 9-17 * * *", "Etc/UTC").next_open(utc("2024-06-03T18:00:00Z")),
        Some(utc("2024-06-04T09:00:00Z"))
    );
}

#[test]
fn spring_forward_skipped_minutes_never_open() {
    // Berlin, 2024-03-31: at 01:00 UTC the clock jumps from 02:00 CET to 03:00 CEST.
    let w = window("* 2 * * *", "Europe/Berlin");
    let mut t = utc("2024-03-30T22:00:00Z");
    while t < utc("2024-03-31T22:00:00Z") {
        assert!(
            !w.is_open(t),
            "{t} is not 02:xx anywhere in Berlin that day"
        );
        t += TimeDelta::minutes(1);
    }
    assert_eq!(
        w.next_open(utc("2024-03-30T23:00:00Z")),
        Some(utc("2024-04-01T00:00:00Z"))
    );
    // A single skipped minute is not moved to 03:00 either (croner would fire a job there).
    let w = window("30 2 * * *", "Europe/Berlin");
    assert_eq!(
        w.next_open(utc("2024-03-30T23:00:00Z")),
        Some(utc("2024-04-01T00:30:00Z"))
    );
}

#[test]
fn spring_forward_around_the_gap() {
    let w = window("* 1-3 * * *", "Europe/Berlin");
    assert!(w.is_open(utc("2024-03-31T00:59:00Z")), "01:59 CET");
    assert!(
        w.is_open(utc("2024-03-31T01:00:00Z")),
        "03:00 CEST, right after the gap"
    );
    assert!(w.is_open(utc("2024-03-31T01:59:00Z")), "03:59 CEST");
    assert!(!w.is_open(utc("2024-03-31T02:00:00Z")), "04:00 CEST");
}

#[test]
fn fall_back_repeated_minutes_open_twice() {
    // Berlin, 2024-10-27: at 01:00 UTC the clock goes back from 03:00 CEST to 02:00 CET.
    let w = window("* 2 * * *", "Europe/Berlin");
    assert!(!w.is_open(utc("2024-10-26T23:59:00Z")), "01:59 CEST");
    assert!(w.is_open(utc("2024-10-27T00:00:00Z")), "02:00 CEST");
    assert!(w.is_open(utc("2024-10-27T00:59:00Z")), "02:59 CEST");
    assert!(
        w.is_open(utc("2024-10-27T01:00:00Z")),
        "02:00 CET, the second time"
    );
    assert!(w.is_open(utc("2024-10-27T01:59:00Z")), "02:59 CET");
    assert!(!w.is_open(utc("2024-10-27T02:00:00Z")), "03:00 CET");

    let fixed = window("30 2 * * *", "Europe/Berlin");
    assert_eq!(
        fixed.next_open(utc("2024-10-27T00:00:00Z")),
        Some(utc("2024-10-27T00:30:00Z"))
    );
    // After the first 02:30, the second one (CET) comes next, an hour later.
    assert_eq!(
        fixed.next_open(utc("2024-10-27T00:31:00Z")),
        Some(utc("2024-10-27T01:30:00Z"))
    );
    assert_eq!(
        fixed.next_open(utc("2024-10-27T01:31:00Z")),
        Some(utc("2024-10-28T01:30:00Z"))
    );
}

#[test]
fn fall_back_finds_a_repeated_minute_that_is_behind_on_the_wall_clock() {
    // At 02:20 CEST the next 02:15 on the wall clock is 02:15 CET, 55 minutes later; a search
    // that only walked the wall clock forward from 02:20 would find tomorrow instead.
    let w = window("15 2 * * *", "Europe/Berlin");
    assert_eq!(
        w.next_open(utc("2024-10-27T00:20:00Z")),
        Some(utc("2024-10-27T01:15:00Z"))
    );
    // One whose minutes lie before the repeated hour does not come back.
    let w = window("* 1 * * *", "Europe/Berlin");
    assert_eq!(
        w.next_open(utc("2024-10-27T00:30:00Z")),
        Some(utc("2024-10-28T00:00:00Z"))
    );
}

#[test]
fn a_yearly_window_is_found_quickly() {
    let w = window("0 0 1 1 *", "Europe/Berlin");
    let start = std::time::Instant::now();
    assert_eq!(
        w.next_open(utc("2024-06-01T00:00:00Z")),
        Some(utc("2024-12-31T23:00:00Z"))
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(1));
    // Leap days only.
    let leap = window("* * 29 2 *", "UTC");
    assert_eq!(
        leap.next_open(utc("2024-03-01T00:00:00Z")),
        Some(utc("2028-02-29T00:00:00Z"))
    );
}

#[test]
fn seconds_field_is_read_per_second() {
    let w = window("0 * * * * *", "UTC");
    assert!(w.is_open(utc("2024-06-03T10:00:00.500Z")));
    assert!(!w.is_open(utc("2024-06-03T10:00:01Z")));
    assert_eq!(
        w.next_open(utc("2024-06-03T10:00:01Z")),
        Some(utc("2024-06-03T10:01:00Z"))
    );
    let whole_minutes = window("* * 9-17 * * *", "UTC");
    assert!(whole_minutes.is_open(utc("2024-06-03T09:00:37Z")));
}

#[test]
fn nicknames_are_minute_windows() {
    let w = window("@daily", "Europe/Berlin");
    assert!(w.is_open(utc("2024-06-02T22:00:59Z")), "00:00 CEST");
    assert!(!w.is_open(utc("2024-06-02T22:01:00Z")));
}

#[test]
fn compile_errors() {
    let err = |cron: &str, tz: &str| {
        Window {
            cron: cron.into(),
            time_zone: tz.into(),
        }
        .compile()
        .unwrap_err()
    };
    assert!(matches!(
        err("61 * * * *", "UTC"),
        WindowError::InvalidCron { .. }
    ));
    assert!(matches!(
        err("every day", "UTC"),
        WindowError::FieldCount { .. }
    ));
    assert!(matches!(
        err("* * * *", "UTC"),
        WindowError::FieldCount { .. }
    ));
    assert!(matches!(
        err("* * * * * * *", "UTC"),
        WindowError::FieldCount { .. }
    ));
    assert!(matches!(
        err("a b c d e", "UTC"),
        WindowError::InvalidCron { .. }
    ));
    assert!(matches!(
        err("* * * * *", "Mars/Olympus_Mons"),
        WindowError::UnknownTimeZone { .. }
    ));
    assert!(matches!(
        err("* * * * *", "CEST"),
        WindowError::UnknownTimeZone { .. }
    ));
    let start = std::time::Instant::now();
    assert!(matches!(
        err("0 0 30 2 *", "UTC"),
        WindowError::NeverOpens { .. }
    ));
    println!(
        "rejecting a never-matching window took {:?}",
        start.elapsed()
    );
    assert!(err("* * * * *", "Nowhere").to_string().contains("Nowhere"));
}

#[test]
fn serde_shape_defaults_to_utc() {
    let w: Window = serde_json::from_value(serde_json::json!({"cron": "* 9-17 * * 1-5"})).unwrap();
    assert_eq!(w.time_zone, "UTC");
    let w: Window =
        serde_json::from_value(serde_json::json!({"cron": "*", "timeZone": "Europe/Berlin"}))
            .unwrap();
    assert_eq!(w.time_zone, "Europe/Berlin");
    assert_eq!(window("* * * * *", "UTC").spec().cron, "* * * * *");
}
