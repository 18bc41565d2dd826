//! Kubernetes events, as both daemons publish them: the note capped at the API's 1 kB (on a
//! character boundary), and a publish retried a bounded number of times with backoff. An event
//! is how a person (and an alert, and a notification relay) learns that a pull request merged or
//! drift was healed; one failed call to a busy API server must not lose it, and no failure may
//! stop a reconcile: after the last attempt it is logged and dropped.

use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};

use crate::notify::{Notice, Notifier, Severity};

/// The API server refuses an event whose note is longer (bytes).
pub const NOTE_MAX: usize = 1000;

/// Attempts per event, and the wait before the second (doubled for each further one).
const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// `text` cut to at most `max` bytes on a character boundary, with `...` when cut.
pub fn cap(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// The event `reason` (`action`, `note`) about the object `regarding`.
pub fn event(type_: EventType, reason: &str, action: &str, note: &str) -> Event {
    Event {
        type_,
        reason: reason.to_owned(),
        note: Some(cap(note, NOTE_MAX)),
        action: action.to_owned(),
        secondary: None,
    }
}

/// Where a daemon's events go: the API server (a [`Recorder`]) and the Alerts that want them
/// (a [`Notifier`]). Cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    recorder: Recorder,
    notifier: Notifier,
}

impl Publisher {
    pub fn new(recorder: Recorder, notifier: Notifier) -> Self {
        Publisher { recorder, notifier }
    }

    /// Publishes `event` about `regarding`, retrying a failed call (bounded, with backoff); a
    /// failure after the last attempt is logged, never returned. The event goes to the Alerts
    /// that want it too (queued: never waits), whether or not the API server took it.
    pub async fn publish(&self, event: &Event, regarding: &ObjectReference) {
        if let Some(reporter) = self.notifier.reporter() {
            self.notifier.notify(notice(event, regarding, reporter));
        }
        record(&self.recorder, event, regarding).await;
    }
}

/// The notice an Alert sees for `event` about `regarding`.
pub fn notice(event: &Event, regarding: &ObjectReference, reporter: &str) -> Notice {
    Notice {
        kind: regarding.kind.clone().unwrap_or_default(),
        namespace: regarding.namespace.clone().unwrap_or_default(),
        name: regarding.name.clone().unwrap_or_default(),
        severity: match event.type_ {
            EventType::Warning => Severity::Error,
            EventType::Normal => Severity::Info,
        },
        reason: event.reason.clone(),
        message: event.note.clone().unwrap_or_default(),
        reporter: reporter.to_owned(),
    }
}

async fn record(recorder: &Recorder, event: &Event, regarding: &ObjectReference) {
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        match recorder.publish(event, regarding).await {
            Ok(()) => return,
            Err(error) if attempt < ATTEMPTS && retriable(&error) => {
                tracing::debug!(%error, reason = %event.reason, attempt, "publishing an event again");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            Err(error) => {
                tracing::warn!(%error, reason = %event.reason, "cannot publish an event");
                return;
            }
        }
    }
}

/// Whether another attempt may succeed: not when the API server refused the event itself
/// (invalid, forbidden), which a retry would only repeat.
fn retriable(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_note_is_cut_on_a_character_boundary_within_the_limit() {
        assert_eq!(cap("short", NOTE_MAX), "short");
        let long = "é".repeat(800); // 1600 bytes
        let cut = cap(&long, NOTE_MAX);
        assert!(cut.len() <= NOTE_MAX, "{}", cut.len());
        assert!(cut.ends_with("..."));
        assert!(cut.trim_end_matches("...").chars().all(|c| c == 'é'));
        let note = event(EventType::Normal, "Healed", "Heal", &long)
            .note
            .unwrap();
        assert_eq!(note, cut);
    }

    #[test]
    fn only_refusals_of_the_event_itself_are_not_retried() {
        let api = |code: u16| {
            kube::Error::Api(
                kube::core::Status::failure("refused", "Reason")
                    .with_code(code)
                    .boxed(),
            )
        };
        assert!(retriable(&api(500)));
        assert!(retriable(&api(503)));
        assert!(retriable(&api(429)));
        assert!(!retriable(&api(422)));
        assert!(!retriable(&api(403)));
    }
}
