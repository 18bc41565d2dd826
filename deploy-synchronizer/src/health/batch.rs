//! Jobs and CronJobs: run-to-completion workloads, whose health is how their last run ended.

use serde_json::Value;

use super::conditions::condition;
use super::{Health, int, text};

/// A terminal condition decides: `Failed` (or `FailureTarget`, its forerunner since Kubernetes
/// 1.31) → Degraded with the reason (`BackoffLimitExceeded`…); `Complete` (or
/// `SuccessCriteriaMet`) → Healthy; `Suspended`, or `spec.suspend` → Suspended. Anything else is
/// still running: Progressing.
pub(super) fn job(job: &Value) -> Health {
    let holds = |kind: &str| condition(job, kind).filter(|c| c.is_true());
    if let Some(failed) = holds("Failed").or_else(|| holds("FailureTarget")) {
        return Health::degraded(format!("failed: {}", failed.explain()));
    }
    if holds("Complete")
        .or_else(|| holds("SuccessCriteriaMet"))
        .is_some()
    {
        return Health::healthy("completed");
    }
    if holds("Suspended").is_some()
        || job.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true)
    {
        return Health::suspended("suspended");
    }
    let count = |field: &str| int(job, &["status", field]).unwrap_or(0);
    Health::progressing(format!(
        "running: {} active, {} succeeded, {} failed",
        count("active"),
        count("succeeded"),
        count("failed")
    ))
}

/// `spec.suspend` → Suspended. While a run is active → Healthy: a CronJob's runs must not hold a
/// sync's health back. Otherwise Degraded when the last scheduled run has not succeeded since
/// (`lastSuccessfulTime` missing or older than `lastScheduleTime`; their Job was deleted or
/// failed), because a failing schedule is broken until someone changes something; Healthy when
/// it succeeded or has never run.
pub(super) fn cron_job(cron_job: &Value) -> Health {
    if cron_job.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
        return Health::suspended("suspended");
    }
    let active = cron_job
        .pointer("/status/active")
        .and_then(Value::as_array)
        .is_some_and(|active| !active.is_empty());
    if active {
        return Health::healthy("a scheduled run is active");
    }
    let scheduled = text(cron_job, &["status", "lastScheduleTime"]);
    let succeeded = text(cron_job, &["status", "lastSuccessfulTime"]);
    match (scheduled, succeeded) {
        (None, _) => Health::healthy("not run yet"),
        // RFC 3339 UTC timestamps as the apiserver writes them order as strings.
        (Some(scheduled), Some(succeeded)) if succeeded >= scheduled => {
            Health::healthy(format!("last run succeeded at {succeeded}"))
        }
        (Some(scheduled), _) => {
            Health::degraded(format!("the run scheduled at {scheduled} did not succeed"))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::tests::yaml;
    use super::super::{HealthStatus, assess};
    use super::*;

    #[test]
    fn jobs_end_complete_or_failed() {
        let failed = yaml(include_str!("fixtures/job-failed.yaml"));
        assert_eq!(
            assess(&failed),
            Health::degraded(
                "failed: BackoffLimitExceeded: Job has reached the specified backoff limit"
            )
        );

        let mut job = failed.clone();
        job["status"] = json!({"active": 1, "ready": 0, "startTime": "2025-05-14T10:00:00Z"});
        assert_eq!(
            assess(&job),
            Health::progressing("running: 1 active, 0 succeeded, 0 failed")
        );

        job["status"] = json!({"succeeded": 1, "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached"},
            {"type": "Complete", "status": "True", "reason": "CompletionsReached"}]});
        assert_eq!(assess(&job), Health::healthy("completed"));

        job["spec"]["suspend"] = true.into();
        job["status"] = json!({"conditions": [{"type": "Suspended", "status": "True", "reason": "JobSuspended"}]});
        assert_eq!(assess(&job).status, HealthStatus::Suspended);
    }

    #[test]
    fn cron_jobs_by_their_last_run() {
        let cron = |spec: Value, status: Value| {
            json!({"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "report", "namespace": "shop"}, "spec": spec, "status": status})
        };
        let schedule = json!({"schedule": "0 * * * *", "suspend": false});
        assert_eq!(
            assess(&cron(schedule.clone(), json!({}))),
            Health::healthy("not run yet")
        );
        assert_eq!(
            assess(&cron(
                schedule.clone(),
                json!({"lastScheduleTime": "2025-05-14T10:00:00Z",
                                                   "lastSuccessfulTime": "2025-05-14T10:00:41Z"})
            )),
            Health::healthy("last run succeeded at 2025-05-14T10:00:41Z")
        );
        assert_eq!(
            assess(&cron(
                schedule.clone(),
                json!({"lastScheduleTime": "2025-05-14T11:00:00Z",
                                                   "lastSuccessfulTime": "2025-05-14T10:00:41Z"})
            )),
            Health::degraded("the run scheduled at 2025-05-14T11:00:00Z did not succeed")
        );
        let running = json!({"lastScheduleTime": "2025-05-14T11:00:00Z",
            "active": [{"apiVersion": "batch/v1", "kind": "Job", "name": "report-29120460", "namespace": "shop"}]});
        assert_eq!(
            assess(&cron(schedule, running)).status,
            HealthStatus::Healthy
        );
        let suspended = json!({"schedule": "0 * * * *", "suspend": true});
        assert_eq!(
            assess(&cron(suspended, json!({}))),
            Health::suspended("suspended")
        );
    }
}
