//! Conditions, timestamps and events, shared by the three reconcilers.

use chrono::{DateTime, SecondsFormat, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::Resource;
use kube::runtime::events::EventType;
use sluice_shared::events;

use super::Context;

pub const READY: &str = "Ready";

/// RFC 3339 in UTC, to the second.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `conditions` with the `Ready` condition set; the transition time is kept while the status
/// stays the same, so an unchanged condition compares equal.
pub fn set_ready(
    conditions: &[Condition],
    ready: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) -> Vec<Condition> {
    let status = if ready { "True" } else { "False" };
    let previous = conditions.iter().find(|c| c.type_ == READY);
    let transition = previous
        .filter(|c| c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| Time(k8s_openapi::jiff::Timestamp::now()));
    let mut message = message.to_owned();
    if message.len() > 32_000 {
        let mut end = 32_000;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    let mut out: Vec<Condition> = conditions
        .iter()
        .filter(|c| c.type_ != READY)
        .cloned()
        .collect();
    out.insert(
        0,
        Condition {
            type_: READY.to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            message,
            observed_generation: generation,
            last_transition_time: transition,
        },
    );
    out
}

/// Publishes an event about `object`; a failure to publish is logged, never fatal.
pub async fn publish<K>(ctx: &Context, object: &K, warning: bool, reason: &str, note: &str)
where
    K: Resource<DynamicType = ()>,
{
    let type_ = if warning {
        EventType::Warning
    } else {
        EventType::Normal
    };
    let event = events::event(type_, reason, reason, note);
    ctx.events.publish(&event, &object.object_ref(&())).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unchanged_ready_condition_keeps_its_transition_time() {
        let first = set_ready(&[], true, "Scanned", "3 tags", Some(1));
        let again = set_ready(&first, true, "Scanned", "3 tags", Some(1));
        assert_eq!(first, again);
        let failed = set_ready(&again, false, "Unauthorized", "401", Some(1));
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].status, "False");
        assert_eq!(failed[0].reason, "Unauthorized");
    }

    #[test]
    fn timestamps_round_trip() {
        let now = parse_timestamp("2026-11-22T06:00:00Z").unwrap();
        assert_eq!(timestamp(now), "2026-11-22T06:00:00Z");
    }
}
