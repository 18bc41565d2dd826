//! Polling with a deadline, instead of sleeping and hoping: for anything ([`wait_until`]), or
//! for the status of a resource to say what a story expects ([`wait_status`]).

use std::fmt::{Debug, Display};
use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Api;
use kube::core::object::HasStatus;
use serde::de::DeserializeOwned;

/// Polls `poll` until it returns `Ok`, and returns that value. `Err(why)` means "not yet",
/// with `why` telling what was seen. After `timeout` it panics with `what` and the last `why`.
///
/// ```no_run
/// # async fn example(api: kube::Api<k8s_openapi::api::apps::v1::Deployment>) {
/// use std::time::Duration;
/// let ready = sluice_e2e::wait_until("web to be available", Duration::from_secs(60), || async {
///     let d = api.get("web").await.map_err(|e| e.to_string())?;
///     let available = d.status.as_ref().and_then(|s| s.available_replicas) == Some(2);
///     if available { Ok(d) } else { Err(format!("not yet: {:?}", d.status)) }
/// })
/// .await;
/// # }
/// ```
pub async fn wait_until<T, E, F, Fut>(what: &str, timeout: Duration, mut poll: F) -> T
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let start = Instant::now();
    let mut interval = Duration::from_millis(100);
    loop {
        let last = match poll().await {
            Ok(v) => return v,
            Err(why) => why.to_string(),
        };
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            panic!("timed out after {elapsed:.1?} waiting for {what}; last seen: {last}");
        }
        tokio::time::sleep(interval.min(timeout - elapsed)).await;
        interval = (interval * 2).min(Duration::from_secs(1));
    }
}

/// Polls the status of the object `name` (its default while it has none yet) until `until`
/// accepts it, and returns that status. After `timeout` it panics with `what` and the status
/// last seen. The stories' predicates read as they say it, e.g.
/// `|s| s.applied(&fix) && s.is("Ready=True")` (see [`Conditions`]).
pub async fn wait_status<K>(
    api: &Api<K>,
    name: &str,
    what: &str,
    timeout: Duration,
    until: impl Fn(&K::Status) -> bool,
) -> K::Status
where
    K: HasStatus + Clone + DeserializeOwned + Debug,
    K::Status: Clone + Default + Seen,
{
    wait_until(what, timeout, || async {
        let object = api.get(name).await.map_err(|e| e.to_string())?;
        let status = object.status().cloned().unwrap_or_default();
        if until(&status) {
            Ok(status)
        } else {
            Err(status.seen())
        }
    })
    .await
}

/// How a status reads in a timed-out wait's "last seen".
pub trait Seen {
    fn seen(&self) -> String;
}

/// The conditions of a status (a GitSync's, an ImageUpdate's, …), for wait predicates.
pub trait Conditions {
    fn conditions(&self) -> &[Condition];

    /// Condition `type_`, if the status has one.
    fn condition_of(&self, type_: &str) -> Option<&Condition> {
        self.conditions().iter().find(|c| c.type_ == type_)
    }

    /// Whether a condition is as `spec` says: `"Ready=True"` (its status) or
    /// `"Ready=False GitFailed"` (its status and reason).
    fn is(&self, spec: &str) -> bool {
        let (type_, rest) = spec
            .split_once('=')
            .unwrap_or_else(|| panic!("{spec:?}: not Type=Status [Reason]"));
        let (status, reason) = match rest.split_once(' ') {
            Some((status, reason)) => (status, Some(reason)),
            None => (rest, None),
        };
        self.condition_of(type_)
            .is_some_and(|c| c.status == status && reason.is_none_or(|r| c.reason == r))
    }

    /// The reason of condition `type_` ("" without one).
    fn reason(&self, type_: &str) -> &str {
        self.condition_of(type_).map_or("", |c| c.reason.as_str())
    }

    /// The message of condition `type_` ("" without one).
    fn message(&self, type_: &str) -> &str {
        self.condition_of(type_).map_or("", |c| c.message.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Status(Vec<Condition>);

    impl Conditions for Status {
        fn conditions(&self) -> &[Condition] {
            &self.0
        }
    }

    fn condition(type_: &str, status: &str, reason: &str, message: &str) -> Condition {
        serde_json::from_value(serde_json::json!({
            "type": type_, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": "2026-12-04T12:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn is_reads_type_status_and_an_optional_reason() {
        let s = Status(vec![
            condition("Ready", "False", "GitFailed", "authentication failed"),
            condition("Healthy", "True", "Healthy", ""),
        ]);
        assert!(s.is("Ready=False"));
        assert!(s.is("Ready=False GitFailed"));
        assert!(!s.is("Ready=False RenderFailed"));
        assert!(!s.is("Ready=True"));
        assert!(s.is("Healthy=True"));
        assert!(!s.is("Stalled=False"), "no such condition");
        assert_eq!(s.reason("Ready"), "GitFailed");
        assert_eq!(s.message("Ready"), "authentication failed");
        assert_eq!(s.message("Stalled"), "");
    }

    #[test]
    #[should_panic(expected = "not Type=Status")]
    fn is_refuses_a_spec_without_a_status() {
        Status(vec![]).is("Ready");
    }
}
