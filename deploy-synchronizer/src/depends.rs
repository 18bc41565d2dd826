//! Ordering between sources (`spec.dependsOn`), decided in pure code: a GitSync applies only once
//! every GitSync it depends on has applied its current spec and is Healthy (CRDs and operators
//! before the applications that use them, as Flux's `dependsOn`). While one is not, it waits and
//! says which; a cycle is refused. [`gate`] reads the GitSyncs as the controller's store holds
//! them; the controller re-runs a dependent as soon as a dependency changes (a watch, not an
//! interval), so waiting costs nothing and no failed attempt comes first.

use std::collections::BTreeSet;

use crate::resource::{DependencyRef, GitSync};
use crate::status::{HEALTHY, READY};

/// How deep a chain of dependencies is followed looking for a cycle.
const MAX_DEPTH: usize = 32;

/// Whether a GitSync may apply now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate {
    /// No dependency, or every one is ready.
    Open,
    /// Some dependency is not ready yet: which, and why, in words.
    Waiting(String),
    /// The dependencies lead back to the GitSync itself (the chain, `a → b → a`).
    Cycle(String),
}

/// `namespace/name` of a dependency of a GitSync in `namespace`.
fn key_of(namespace: &str, dependency: &DependencyRef) -> String {
    let ns = dependency.namespace.as_deref().unwrap_or(namespace);
    format!("{ns}/{}", dependency.name)
}

/// The gate of the GitSync `key` with `depends_on`, the GitSyncs known being found by `find`
/// (`namespace/name` → the GitSync).
pub fn gate<'a>(
    key: &str,
    depends_on: &[DependencyRef],
    find: impl Fn(&str) -> Option<&'a GitSync>,
) -> Gate {
    if depends_on.is_empty() {
        return Gate::Open;
    }
    let namespace = key.split_once('/').map_or("", |(ns, _)| ns);
    if let Some(chain) = cycle(key, namespace, depends_on, &find) {
        return Gate::Cycle(chain);
    }
    let waiting: Vec<String> = depends_on
        .iter()
        .map(|d| key_of(namespace, d))
        .filter_map(|dep| not_ready(find(&dep)).map(|why| format!("GitSync {dep} {why}")))
        .collect();
    if waiting.is_empty() {
        Gate::Open
    } else {
        Gate::Waiting(waiting.join("; "))
    }
}

/// Why a dependency is not ready, if it is not.
fn not_ready(sync: Option<&GitSync>) -> Option<String> {
    let Some(sync) = sync else {
        return Some("does not exist".into());
    };
    let Some(status) = sync.status.as_ref() else {
        return Some("has not synced yet".into());
    };
    let condition = |type_: &str| status.conditions.iter().find(|c| c.type_ == type_);
    if sync.spec.suspend {
        return Some("is suspended".into());
    }
    if status.observed_generation != sync.metadata.generation {
        return Some("has not applied its current spec yet".into());
    }
    match condition(READY) {
        Some(c) if c.status == "True" => {}
        Some(c) => return Some(format!("is not Ready ({}: {})", c.reason, c.message)),
        None => return Some("has not synced yet".into()),
    }
    match condition(HEALTHY) {
        Some(c) if c.status == "True" => None,
        Some(c) => Some(format!("is not Healthy yet ({})", c.reason)),
        None => Some("has no health verdict yet".into()),
    }
}

/// The chain back to `key` through the dependencies, if there is one.
fn cycle<'a>(
    key: &str,
    namespace: &str,
    depends_on: &[DependencyRef],
    find: &impl Fn(&str) -> Option<&'a GitSync>,
) -> Option<String> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<(String, Vec<String>)> = depends_on
        .iter()
        .map(|d| {
            let dep = key_of(namespace, d);
            (dep.clone(), vec![key.to_owned(), dep])
        })
        .collect();
    while let Some((at, path)) = stack.pop() {
        if at == key {
            return Some(path.join(" → "));
        }
        if path.len() > MAX_DEPTH || !seen.insert(at.clone()) {
            continue;
        }
        let Some(sync) = find(&at) else { continue };
        let at_ns = at.split_once('/').map_or("", |(ns, _)| ns);
        for d in &sync.spec.depends_on {
            let next = key_of(at_ns, d);
            let mut longer = path.clone();
            longer.push(next.clone());
            stack.push((next, longer));
        }
    }
    None
}

/// Whether `sync` names `namespace/name` among its dependencies (for the watch that re-runs
/// dependents when a dependency changes).
pub fn depends_on(sync: &GitSync, namespace: &str, name: &str) -> bool {
    let own = sync.metadata.namespace.as_deref().unwrap_or_default();
    sync.spec
        .depends_on
        .iter()
        .any(|d| d.name == name && d.namespace.as_deref().unwrap_or(own) == namespace)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn sync(key: &str, deps: &[&str], status: serde_json::Value) -> GitSync {
        let (ns, name) = key.split_once('/').unwrap();
        let deps: Vec<serde_json::Value> = deps
            .iter()
            .map(|d| match d.split_once('/') {
                Some((ns, name)) => json!({"name": name, "namespace": ns}),
                None => json!({"name": d}),
            })
            .collect();
        serde_json::from_value(json!({
            "apiVersion": "sluice.dev/v1alpha1", "kind": "GitSync",
            "metadata": {"name": name, "namespace": ns, "generation": 2},
            "spec": {"source": {"url": "https://git.example/config.git"}, "dependsOn": deps},
            "status": status,
        }))
        .unwrap()
    }

    fn healthy() -> serde_json::Value {
        json!({"observedGeneration": 2, "conditions": [
            {"type": "Ready", "status": "True", "reason": "Applied", "message": "applied", "lastTransitionTime": "2026-12-04T10:00:00Z"},
            {"type": "Healthy", "status": "True", "reason": "Healthy", "message": "all healthy", "lastTransitionTime": "2026-12-04T10:00:00Z"}]})
    }

    fn progressing() -> serde_json::Value {
        json!({"observedGeneration": 2, "conditions": [
            {"type": "Ready", "status": "True", "reason": "Applied", "message": "applied", "lastTransitionTime": "2026-12-04T10:00:00Z"},
            {"type": "Healthy", "status": "False", "reason": "Progressing", "message": "rolling out", "lastTransitionTime": "2026-12-04T10:00:00Z"}]})
    }

    fn gate_of(syncs: &[GitSync], key: &str) -> Gate {
        let by_key: BTreeMap<String, &GitSync> = syncs
            .iter()
            .map(|s| {
                (
                    format!(
                        "{}/{}",
                        s.metadata.namespace.as_deref().unwrap(),
                        s.metadata.name.as_deref().unwrap()
                    ),
                    s,
                )
            })
            .collect();
        let own = by_key[key];
        gate(key, &own.spec.depends_on, |k| by_key.get(k).copied())
    }

    #[test]
    fn an_app_waits_for_its_platform_until_it_is_healthy() {
        let app = sync("shop/app", &["platform/crds"], json!({}));
        let rolling = sync("platform/crds", &[], progressing());
        match gate_of(&[app.clone(), rolling], "shop/app") {
            Gate::Waiting(why) => assert_eq!(
                why,
                "GitSync platform/crds is not Healthy yet (Progressing)"
            ),
            other => panic!("{other:?}"),
        }
        let missing = gate_of(std::slice::from_ref(&app), "shop/app");
        assert_eq!(
            missing,
            Gate::Waiting("GitSync platform/crds does not exist".into())
        );
        let ready = sync("platform/crds", &[], healthy());
        assert_eq!(gate_of(&[app, ready], "shop/app"), Gate::Open);
    }

    #[test]
    fn a_dependency_that_has_not_applied_its_new_spec_is_not_ready() {
        let app = sync("shop/app", &["db"], json!({}));
        let mut stale = sync("shop/db", &[], healthy());
        stale.metadata.generation = Some(3);
        assert!(
            matches!(gate_of(&[app, stale], "shop/app"), Gate::Waiting(w) if w.contains("current spec"))
        );
    }

    #[test]
    fn a_cycle_is_named_and_refused() {
        let a = sync("shop/a", &["b"], healthy());
        let b = sync("shop/b", &["other/c"], healthy());
        let c = sync("other/c", &["shop/a"], healthy());
        assert_eq!(
            gate_of(&[a.clone(), b, c], "shop/a"),
            Gate::Cycle("shop/a → shop/b → other/c → shop/a".into())
        );
        let own = sync("shop/self", &["self"], healthy());
        assert_eq!(
            gate_of(&[own], "shop/self"),
            Gate::Cycle("shop/self → shop/self".into())
        );
        assert!(depends_on(&a, "shop", "b"));
        assert!(!depends_on(&a, "other", "b"));
    }
}
