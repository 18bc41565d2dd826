//! Update windows: the wall-clock minutes, in a named time zone, during which pushes may start.
//!
//! A window is written as a cron expression, read as a *set of minutes* rather than as trigger
//! times: `* 9-17 * * 1-5` in `Europe/Berlin` is open from 09:00 to 17:59:59 Berlin time on
//! weekdays. The time zone matters because people plan change windows in local time, and DST
//! moves local time against UTC twice a year:
//!
//! * **Spring forward**: wall-clock minutes that do not exist (02:00–02:59 in Berlin on the last
//!   Sunday of March) never open. A window of only `* 2 * * *` stays shut that day; we do not
//!   invent a substitute time.
//! * **Fall back**: wall-clock minutes that happen twice (02:00–02:59 on the last Sunday of
//!   October) are open both times.
//!
//! A 6-field expression has a seconds field and is read per second (`* * 9-17 * * *` for whole
//! minutes); 5 fields are read per minute. The window gates when a push *starts*: a push begun at
//! 17:59 may finish after 18:00.

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An update window as the user writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    /// A cron expression for the open minutes, e.g. `* 9-17 * * 1-5` (5 fields, per minute) or
    /// with a leading seconds field (6 fields, per second).
    pub cron: String,
    /// An IANA time zone, e.g. `Europe/Berlin`. Default `UTC`.
    #[serde(default = "utc")]
    pub time_zone: String,
}

fn utc() -> String {
    "UTC".to_owned()
}

/// Why a window does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("window cron {cron:?} is invalid: {reason}")]
    InvalidCron { cron: String, reason: String },
    #[error(
        "window cron {cron:?} must have 5 fields (minute granularity) or 6 (with seconds first)"
    )]
    FieldCount { cron: String },
    #[error("window time zone {time_zone:?} is not an IANA time zone name (e.g. Europe/Berlin)")]
    UnknownTimeZone { time_zone: String },
    #[error("window cron {cron:?} never matches any time, so the window would never open")]
    NeverOpens { cron: String },
}

/// A compiled [`Window`].
#[derive(Debug, Clone)]
pub struct CompiledWindow {
    cron: Cron,
    tz: Tz,
    /// The granularity: a second with a seconds field, otherwise a minute.
    unit: TimeDelta,
    spec: Window,
}

/// The largest backward jump of a zone's UTC offset we allow for when searching (real DST and
/// zone changes are at most 2 hours). Larger jumps are still measured; this is only how far
/// around a search point we look for one.
const MAX_JUMP: TimeDelta = TimeDelta::hours(3);

/// A bound on candidate minutes examined by one `next_open`: enough for a dense window whose
/// candidates all fall in a repeated (fall-back) hour, at per-second granularity.
const MAX_CANDIDATES: usize = 4 * 3600;

impl Window {
    /// Checks and compiles the window.
    pub fn compile(&self) -> Result<CompiledWindow, WindowError> {
        let tz: Tz = self
            .time_zone
            .trim()
            .parse()
            .map_err(|_| WindowError::UnknownTimeZone {
                time_zone: self.time_zone.clone(),
            })?;
        let fields = self.cron.split_whitespace().count();
        let nickname = self.cron.trim_start().starts_with('@');
        if !nickname && !(5..=6).contains(&fields) {
            return Err(WindowError::FieldCount {
                cron: self.cron.clone(),
            });
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(&self.cron)
            .map_err(|e| WindowError::InvalidCron {
                cron: self.cron.clone(),
                reason: e.to_string(),
            })?;
        // Refuse windows that can never open (`* * 30 2 *`): they would hold changes forever.
        let epoch = NaiveDateTime::default(); // 1970-01-01 00:00
        if cron.find_next_occurrence(&epoch, true).is_err() {
            return Err(WindowError::NeverOpens {
                cron: self.cron.clone(),
            });
        }
        let unit = if fields == 6 {
            TimeDelta::seconds(1)
        } else {
            TimeDelta::minutes(1)
        };
        Ok(CompiledWindow {
            cron,
            tz,
            unit,
            spec: self.clone(),
        })
    }
}

impl CompiledWindow {
    /// The window as written.
    pub fn spec(&self) -> &Window {
        &self.spec
    }

    /// Whether a push may start at `now`: its wall-clock minute (second, for 6 fields) matches.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.wall(now).is_some_and(|wall| {
            self.cron
                .is_time_matching(&self.truncate(wall))
                .unwrap_or(false)
        })
    }

    /// The earliest instant at or after `now` when the window is open: `now` itself if open,
    /// else the start of the next open minute. `None` if it never opens again.
    ///
    /// The search runs on the wall clock (where cron lives) and maps each matching wall-clock
    /// minute back to the instants that show it: none in a spring-forward gap, two in a
    /// fall-back overlap. Wall-clock order and instant order differ only around a backward
    /// jump, so the search starts early and runs on past its first answer only when a jump is
    /// near `now` or near that answer.
    pub fn next_open(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.is_open(now) {
            return Some(now);
        }
        // Instants still to come can show wall-clock times up to one backward jump before now's.
        let back = (self.offset(now) - self.offset(now.checked_add_signed(MAX_JUMP)?))
            .max(TimeDelta::zero());
        let mut cursor = self.truncate(self.wall(now)?.checked_sub_signed(back)?);
        let mut best: Option<DateTime<Utc>> = None;
        let mut search_until: Option<NaiveDateTime> = None;
        for _ in 0..MAX_CANDIDATES {
            let Ok(wall) = self.cron.find_next_occurrence(&cursor, true) else {
                break;
            };
            if search_until.is_some_and(|until| wall > until) {
                break;
            }
            for instant in self.instants(wall) {
                if instant >= now && best.is_none_or(|b| instant < b) {
                    best = Some(instant);
                }
            }
            if let (Some(b), None) = (best, search_until) {
                // A later wall-clock time maps to an earlier instant only if the clock jumped
                // back shortly before `b`; otherwise `b` is the answer.
                let before = b.checked_sub_signed(MAX_JUMP).unwrap_or(b);
                let margin = (self.offset(before) - self.offset(b)).max(TimeDelta::zero());
                if margin.is_zero() {
                    break;
                }
                search_until = self.wall(b).and_then(|w| w.checked_add_signed(margin));
                if search_until.is_none() {
                    break;
                }
            }
            let Some(next) = wall.checked_add_signed(self.unit) else {
                break;
            };
            cursor = next;
        }
        best
    }

    /// The wall clock at `t`; `None` only at the very ends of chrono's range.
    fn wall(&self, t: DateTime<Utc>) -> Option<NaiveDateTime> {
        let offset = self.tz.offset_from_utc_datetime(&t.naive_utc()).fix();
        t.naive_utc().checked_add_offset(offset)
    }

    fn offset(&self, t: DateTime<Utc>) -> TimeDelta {
        TimeDelta::seconds(
            self.tz
                .offset_from_utc_datetime(&t.naive_utc())
                .fix()
                .local_minus_utc()
                .into(),
        )
    }

    /// The instants (UTC) whose wall clock shows `wall`: one, none (gap) or two (overlap).
    fn instants(&self, wall: NaiveDateTime) -> Vec<DateTime<Utc>> {
        match self.tz.from_local_datetime(&wall) {
            LocalResult::Single(t) => vec![t.to_utc()],
            LocalResult::Ambiguous(a, b) => vec![a.to_utc(), b.to_utc()],
            LocalResult::None => vec![],
        }
    }

    /// Drops what is finer than the window's granularity.
    fn truncate(&self, wall: NaiveDateTime) -> NaiveDateTime {
        let wall = wall.with_nanosecond(0).unwrap_or(wall);
        if self.unit == TimeDelta::minutes(1) {
            wall.with_second(0).unwrap_or(wall)
        } else {
            wall
        }
    }
}

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;
