//! Helm hooks, mapped as Argo CD maps them. `helm template` renders a chart's hooks as ordinary
//! objects carrying `helm.sh/hook`; applied with the rest they would run at the wrong moment (a
//! database migration Job racing the Deployment that needs it) and, being in the inventory, be
//! pruned and healed like any object. Here they are split off by annotation:
//!
//! - `pre-install` / `pre-upgrade`: the **pre** phase, applied after the whole render's dry-run
//!   and before anything else, each awaited (a Job until Complete, a Pod until Succeeded);
//! - `post-install` / `post-upgrade`: the **post** phase, once the rest is applied and Healthy;
//! - `test*`, `pre-delete`, `post-delete`, `pre-rollback`, `post-rollback`: not applied (Sluice
//!   neither deletes releases nor rolls back through Helm; a rollback is a Git revert).
//!
//! Within a phase, hooks go in `helm.sh/hook-weight` order (then kind and name, as Helm sorts
//! them). `helm.sh/hook-delete-policy` is honoured: `before-hook-creation` (Helm's default when
//! none is given) deletes the previous run's object before the hook is applied again — a Job's
//! template is immutable, so without it a second run could not be applied —, `hook-succeeded`
//! and `hook-failed` delete it after it ran. Hooks are not in the inventory: never pruned, never
//! healed, and they run only when a sync applies a new revision, new inputs or a new spec, as
//! Helm runs them on an install or an upgrade.

use serde_json::Value;

use super::Apply;
use super::order::apply_key;

/// The annotation naming an object's hooks.
pub const HOOK_ANNOTATION: &str = "helm.sh/hook";
const WEIGHT_ANNOTATION: &str = "helm.sh/hook-weight";
const DELETE_POLICY_ANNOTATION: &str = "helm.sh/hook-delete-policy";

/// When a hook runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Before the rest is applied.
    Pre,
    /// After the rest is applied and Healthy.
    Post,
}

/// When a hook's object is deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeletePolicy {
    pub before_creation: bool,
    pub on_success: bool,
    pub on_failure: bool,
}

/// One hook, placed like any object.
#[derive(Clone, Debug, PartialEq)]
pub struct Hook {
    pub phase: Phase,
    pub weight: i64,
    pub delete: DeletePolicy,
    pub apply: Apply,
}

/// The hooks of a render, each phase in run order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hooks {
    pub pre: Vec<Hook>,
    pub post: Vec<Hook>,
}

impl Hooks {
    /// Every hook, pre before post.
    pub fn all(&self) -> impl Iterator<Item = &Hook> {
        self.pre.iter().chain(&self.post)
    }

    /// Sorts `hooks` into their phases, each in weight, then kind and name, order.
    pub fn from_hooks(hooks: Vec<Hook>) -> Self {
        let (mut pre, mut post): (Vec<_>, Vec<_>) =
            hooks.into_iter().partition(|h| h.phase == Phase::Pre);
        for phase in [&mut pre, &mut post] {
            phase.sort_by(|a, b| {
                a.weight
                    .cmp(&b.weight)
                    .then_with(|| apply_key(&a.apply.id).cmp(&apply_key(&b.apply.id)))
            });
        }
        Self { pre, post }
    }
}

/// What the `helm.sh/hook` annotation makes of a rendered object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// No hook: applied with the rest.
    Object,
    /// A hook of `phase`, with its weight and delete policy.
    Hook {
        phase: Phase,
        weight: i64,
        delete: DeletePolicy,
    },
    /// A hook Sluice does not run (`test`, `pre-delete`…): left out.
    NotRun(String),
}

/// Reads an object's hook annotations.
pub fn role(object: &Value) -> Role {
    let annotation = |key: &str| {
        object
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
    };
    let Some(hooks) = annotation(HOOK_ANNOTATION) else {
        return Role::Object;
    };
    let names: Vec<&str> = hooks
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    let phase = if names
        .iter()
        .any(|h| matches!(*h, "pre-install" | "pre-upgrade"))
    {
        Phase::Pre
    } else if names
        .iter()
        .any(|h| matches!(*h, "post-install" | "post-upgrade"))
    {
        Phase::Post
    } else if names.is_empty() {
        return Role::Object;
    } else {
        return Role::NotRun(names.join(","));
    };
    let weight = annotation(WEIGHT_ANNOTATION)
        .and_then(|w| w.trim().parse().ok())
        .unwrap_or(0);
    let delete = match annotation(DELETE_POLICY_ANNOTATION) {
        None => DeletePolicy {
            before_creation: true,
            ..DeletePolicy::default()
        },
        Some(policies) => {
            let has = |p: &str| policies.split(',').any(|x| x.trim() == p);
            DeletePolicy {
                before_creation: has("before-hook-creation"),
                on_success: has("hook-succeeded"),
                on_failure: has("hook-failed"),
            }
        }
    };
    Role::Hook {
        phase,
        weight,
        delete,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn annotated(annotations: Value) -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": "migrate", "annotations": annotations}})
    }

    #[test]
    fn objects_without_a_hook_annotation_are_ordinary() {
        assert_eq!(role(&annotated(json!({"team": "shop"}))), Role::Object);
        assert_eq!(role(&json!({"kind": "ConfigMap"})), Role::Object);
    }

    #[test]
    fn install_and_upgrade_hooks_run_before_or_after_the_rest() {
        assert_eq!(
            role(&annotated(
                json!({"helm.sh/hook": "pre-install,pre-upgrade",
                                   "helm.sh/hook-weight": "-5"})
            )),
            Role::Hook {
                phase: Phase::Pre,
                weight: -5,
                delete: DeletePolicy {
                    before_creation: true,
                    ..DeletePolicy::default()
                }
            }
        );
        assert_eq!(
            role(&annotated(json!({"helm.sh/hook": "post-upgrade",
                                   "helm.sh/hook-delete-policy": "hook-succeeded, hook-failed"}))),
            Role::Hook {
                phase: Phase::Post,
                weight: 0,
                delete: DeletePolicy {
                    before_creation: false,
                    on_success: true,
                    on_failure: true
                }
            }
        );
    }

    #[test]
    fn test_delete_and_rollback_hooks_are_not_run() {
        for hook in ["test", "test-success", "pre-delete", "post-rollback"] {
            assert_eq!(
                role(&annotated(json!({"helm.sh/hook": hook}))),
                Role::NotRun(hook.to_owned())
            );
        }
    }

    #[test]
    fn a_phase_runs_by_weight_then_kind_then_name() {
        let hook = |kind: &str, name: &str, weight: i64, phase: Phase| Hook {
            phase,
            weight,
            delete: DeletePolicy::default(),
            apply: Apply {
                id: crate::object::ObjectRef::of(&json!({
                    "apiVersion": "v1", "kind": kind,
                    "metadata": {"name": name, "namespace": "shop"}}))
                .unwrap(),
                object: json!({}),
                source: String::new(),
            },
        };
        let hooks = Hooks::from_hooks(vec![
            hook("Pod", "smoke", 0, Phase::Post),
            hook("Pod", "b-late", 5, Phase::Pre),
            hook("Pod", "a-job", 0, Phase::Pre),
            hook("ConfigMap", "z-config", 0, Phase::Pre),
        ]);
        let names: Vec<&str> = hooks.pre.iter().map(|h| h.apply.id.name.as_str()).collect();
        assert_eq!(names, ["z-config", "a-job", "b-late"]);
        assert_eq!(hooks.post.len(), 1);
    }
}
