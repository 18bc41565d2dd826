//! Running a plan's Helm hooks ([`crate::plan::Hooks`] says which run and when): one at a time,
//! in order, each applied (re-created when its delete policy says `before-hook-creation`) and
//! awaited until it has run ([`completion`], pure), then deleted when its policy says so. A hook
//! that fails, or does not finish within the sync's `healthTimeout`, stops the sync with the
//! hook named.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Applier, ApplyError, Kinds, ObjectFailure, write};
use crate::plan::Hook;

/// How often a running hook is looked at.
const POLL: Duration = Duration::from_millis(500);

/// Where a hook's object stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completion {
    Running,
    Done,
    Failed(String),
}

/// Whether a hook's live object has run: a Job until `Complete` (or `Failed`), a Pod until
/// `Succeeded` (or `Failed`); any other kind is done once applied, as Helm has it.
pub fn completion(kind: &str, live: &Value) -> Completion {
    let status = live.get("status");
    match kind {
        "Job" => {
            let conditions = status
                .and_then(|s| s.get("conditions"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let holds = |type_: &str| {
                conditions.iter().find(|c| {
                    c.get("type").and_then(Value::as_str) == Some(type_)
                        && c.get("status").and_then(Value::as_str) == Some("True")
                })
            };
            if holds("Complete").is_some() {
                Completion::Done
            } else if let Some(failed) = holds("Failed") {
                let text = |key: &str| failed.get(key).and_then(Value::as_str).unwrap_or("");
                Completion::Failed(
                    format!("Job failed: {} {}", text("reason"), text("message"))
                        .trim()
                        .to_owned(),
                )
            } else {
                Completion::Running
            }
        }
        "Pod" => match status.and_then(|s| s.get("phase")).and_then(Value::as_str) {
            Some("Succeeded") => Completion::Done,
            Some("Failed") => {
                let reason = status
                    .and_then(|s| s.get("reason"))
                    .and_then(Value::as_str)
                    .unwrap_or("its containers failed");
                Completion::Failed(format!("Pod failed: {reason}"))
            }
            _ => Completion::Running,
        },
        _ => Completion::Done,
    }
}

impl Applier {
    /// Runs `hooks` in order (see the module docs).
    pub(super) async fn run_hooks(&self, kinds: &Kinds, hooks: &[Hook]) -> Result<(), ApplyError> {
        for hook in hooks {
            self.run_hook(kinds, hook).await?;
        }
        Ok(())
    }

    async fn run_hook(&self, kinds: &Kinds, hook: &Hook) -> Result<(), ApplyError> {
        let apply = &hook.apply;
        let fail = |message: String| ApplyError::Hook {
            id: Box::new(apply.id.clone()),
            origin: apply.source.clone(),
            message,
        };
        let resolved = kinds
            .resolve(&apply.id.group, apply.api_version(), &apply.id.kind)
            .ok_or_else(|| {
                fail(format!(
                    "the cluster serves no {} {}",
                    apply.api_version(),
                    apply.id.kind
                ))
            })?;
        let applied = if hook.delete.before_creation {
            write::recreate(&self.writer, &resolved, apply, "the previous run of a hook").await
        } else {
            write::apply_one(&self.writer, &resolved, apply, false).await
        };
        applied.map_err(|failure: ObjectFailure| fail(failure.message))?;
        tracing::info!(hook = %apply.id, "hook applied");
        let api = resolved.api(self.reader.clone(), &apply.id);
        let started = Instant::now();
        let outcome = loop {
            let live = api
                .get_opt(&apply.id.name)
                .await
                .map_err(|error| fail(format!("cannot be read: {error}")))?;
            let state = match live {
                Some(object) => completion(
                    &apply.id.kind,
                    &serde_json::to_value(object).unwrap_or_default(),
                ),
                None => Completion::Failed("deleted while it ran".into()),
            };
            match state {
                Completion::Running if started.elapsed() < self.hook_timeout => {
                    tokio::time::sleep(POLL).await;
                }
                Completion::Running => {
                    break Err(format!(
                        "did not finish within {}s (the sync's healthTimeout)",
                        self.hook_timeout.as_secs()
                    ));
                }
                Completion::Done => break Ok(()),
                Completion::Failed(why) => break Err(why),
            }
        };
        let delete = match &outcome {
            Ok(()) => hook.delete.on_success,
            Err(_) => hook.delete.on_failure,
        };
        if delete
            && let Err(failure) =
                write::delete(&self.writer, kinds, &apply.id, apply.api_version()).await
        {
            tracing::warn!(hook = %apply.id, error = %failure, "cannot delete the hook as its policy asks");
        }
        match outcome {
            Ok(()) => {
                tracing::info!(hook = %apply.id, took = ?started.elapsed(), "hook done");
                Ok(())
            }
            Err(why) => Err(fail(why)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_job_is_done_when_complete_and_failed_when_failed() {
        let job = |conditions: Value| json!({"status": {"conditions": conditions}});
        assert_eq!(completion("Job", &json!({})), Completion::Running);
        assert_eq!(
            completion("Job", &job(json!([{"type": "Complete", "status": "True"}]))),
            Completion::Done
        );
        assert_eq!(
            completion(
                "Job",
                &job(
                    json!([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                             "message": "Job has reached the specified backoff limit"}])
                )
            ),
            Completion::Failed(
                "Job failed: BackoffLimitExceeded Job has reached the specified backoff limit"
                    .into()
            )
        );
        assert_eq!(
            completion(
                "Job",
                &job(json!([{"type": "Complete", "status": "False"}]))
            ),
            Completion::Running
        );
    }

    #[test]
    fn a_pod_is_done_when_succeeded_and_anything_else_once_applied() {
        assert_eq!(
            completion("Pod", &json!({"status": {"phase": "Succeeded"}})),
            Completion::Done
        );
        assert_eq!(
            completion("Pod", &json!({"status": {"phase": "Running"}})),
            Completion::Running
        );
        assert!(matches!(
            completion("Pod", &json!({"status": {"phase": "Failed"}})),
            Completion::Failed(_)
        ));
        assert_eq!(completion("ConfigMap", &json!({})), Completion::Done);
    }
}
