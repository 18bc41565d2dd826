//! The thin shell that carries out a [`Plan`] against the cluster.
//!
//! Order, and why:
//! 1. **Dry-run everything.** Every object of the render goes through a server-side dry-run
//!    apply before anything is written; if any is refused, nothing is written and the error names
//!    each refused object and the file and line it came from. Two kinds of objects cannot be
//!    dry-run before the first write, because what they need does not exist yet: custom resources
//!    whose CRD is in the same render, and objects in a Namespace the same render creates. They
//!    are dry-run right after stage one (CRDs and Namespaces), before any of stage two is written,
//!    so stage two is still all-or-nothing.
//! 2. **Stage one** (Namespaces, CRDs, ClusterRoles…), then wait until its CRDs are
//!    `Established` and discover the cluster's kinds again.
//! 3. **Stage two**, [`PARALLELISM`] objects at a time.
//! 4. **Prune**, in the plan's order, with background propagation. A failed deletion does not
//!    fail the sync: it is reported, and the caller keeps the object in the inventory so the next
//!    sync retries it.
//!
//! **Helm hooks** ([`crate::plan::Hooks`]) are dry-run with everything in step 1; the pre hooks
//! run between steps 1 and 2, each awaited (one that fails stops the sync there); the post hooks
//! after step 4, once what the plan applied is Healthy; by then everything is applied, so a post
//! hook that cannot run or fails is reported in [`Report`], not as a failed sync (see [`hooks`]).
//!
//! **Server-side apply with `force: true`.** Sluice applies as field manager `sluice` and forces
//! conflicts, as Flux's kustomize-controller does: Git is the source of truth for every field a
//! manifest sets, so a field someone changed with `kubectl edit` (another manager) is taken back.
//! Fields the manifest does not set — an HPA's `replicas` — are never in Sluice's apply, so SSA
//! leaves them with their owner and nothing is fought over.
//!
//! **Immutable fields.** An apply refused because it changes an immutable field (a Deployment's
//! selector, a Job's template) is reported with the fix; with
//! `spec.recreateOnImmutableChange` the object is deleted, awaited until gone, and applied again.
//!
//! **Identity.** Reads (discovery, live facts, health) use the synchronizer's own client; every
//! write, dry-runs included, uses the writer client, which impersonates the sync's
//! ServiceAccount when it names one (see [`impersonating`]), so RBAC refuses a write the
//! ServiceAccount may not make during the dry-run, before anything is written.

mod hooks;
mod kinds;
mod write;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

use futures::{StreamExt, stream};
use kube::Client;
use serde_json::Value;

use crate::object::ObjectRef;
use crate::plan::{Apply, Plan, StageName};

pub use kinds::{Kinds, Resolved};
pub use write::read_live_facts;

/// Server-side dry-runs `apply` as field manager `sluice`, forced: the object as the apiserver
/// would make it (what `diff` compares with the live object).
pub async fn dry_run_apply(
    writer: &Client,
    resolved: &Resolved,
    apply: &Apply,
) -> Result<Value, ObjectFailure> {
    write::apply_one(writer, resolved, apply, true).await
}

/// Server-side applies `apply` for real, as field manager `sluice`, forced: what self-heal
/// re-applies. Returns the object as the apiserver made it.
pub async fn apply_object(
    writer: &Client,
    resolved: &Resolved,
    apply: &Apply,
) -> Result<Value, ObjectFailure> {
    write::apply_one(writer, resolved, apply, false).await
}

/// How many objects are dry-run, applied or read at once.
pub const PARALLELISM: usize = 8;
/// How long a CRD of stage one may take to become `Established`.
pub const ESTABLISHED_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a deleted object may take to disappear before it is re-created.
pub const RECREATE_TIMEOUT: Duration = Duration::from_secs(60);

/// A client that acts as ServiceAccount `name` of `namespace`: `config` with
/// `Impersonate-User: system:serviceaccount:<namespace>:<name>`. The synchronizer's own identity
/// needs the `impersonate` verb on `serviceaccounts` for it.
pub fn impersonating(
    config: &kube::Config,
    namespace: &str,
    name: &str,
) -> Result<Client, kube::Error> {
    let mut config = config.clone();
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{namespace}:{name}"));
    config.auth_info.impersonate_groups = None;
    Client::try_from(config)
}

/// Carries out plans: reads with `reader`, writes with `writer`.
#[derive(Clone)]
pub struct Applier {
    pub reader: Client,
    pub writer: Client,
    /// Delete and re-create an object whose apply changes an immutable field.
    pub recreate_on_immutable_change: bool,
    /// How long a Helm hook may run, and the rest take to be Healthy before the post hooks (the
    /// sync's `healthTimeout`).
    pub hook_timeout: Duration,
}

/// What became of one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectFailure {
    pub id: ObjectRef,
    /// `path/in/repo.yaml:line`, or empty for a deletion.
    pub source: String,
    pub problem: Problem,
    pub message: String,
}

/// Why an object was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The apiserver refused it (invalid, forbidden, conflict…).
    Refused,
    /// It changes an immutable field.
    Immutable,
    /// Its kind is not served, even after stage one.
    UnknownKind,
    /// The apiserver could not be asked (connection, timeout).
    Unreachable,
}

impl fmt::Display for ObjectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.source.is_empty() {
            write!(f, "{}: {}", self.id, self.message)
        } else {
            write!(f, "{} (from {}): {}", self.id, self.source, self.message)
        }
    }
}

/// `a; b; c`.
struct Listed<'a>(&'a [ObjectFailure]);

impl fmt::Display for Listed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, failure) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{failure}")?;
        }
        Ok(())
    }
}

/// A plan could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("cannot discover the cluster's kinds: {0}")]
    Discovery(#[source] kube::Error),
    #[error("cannot read the live objects: {0}")]
    Read(#[source] kube::Error),
    /// The dry-run refused objects. `written` is false when it came before any write.
    #[error(
        "server-side dry-run refused {} object(s){}: {}",
        failures.len(),
        if *written { " after stage one was applied; stage two was not written" }
        else { "; nothing was written" },
        Listed(failures)
    )]
    Validation {
        failures: Vec<ObjectFailure>,
        written: bool,
    },
    /// Some objects of a stage were not applied; later stages and prune did not run.
    #[error("apply of {} object(s) failed ({} applied before): {}", failures.len(), applied, Listed(failures))]
    Apply {
        failures: Vec<ObjectFailure>,
        applied: usize,
    },
    /// A Helm hook failed, or did not finish in time; what came after it did not run.
    #[error("hook {id} (from {origin}): {message}")]
    Hook {
        id: Box<ObjectRef>,
        /// `path/in/repo.yaml:line` (thiserror keeps `source` for a cause).
        origin: String,
        message: String,
    },
    #[error(
        "CustomResourceDefinition {name} did not become Established within {}s: {last}",
        waited.as_secs()
    )]
    NotEstablished {
        name: String,
        waited: Duration,
        last: String,
    },
}

impl ApplyError {
    /// Whether the render itself is at fault (a person must change Git), as opposed to the
    /// cluster being unreachable or slow.
    pub fn is_validation(&self) -> bool {
        matches!(self, Self::Validation { .. })
    }
}

/// What a plan did.
#[derive(Debug, Default)]
pub struct Report {
    /// Every applied object, in apply order, as much of the apiserver's response as drift
    /// detection needs ([`crate::drift::applied_record`]).
    pub applied: Vec<(ObjectRef, Value)>,
    /// Deleted by prune.
    pub pruned: Vec<ObjectRef>,
    /// Deletions that failed; they stay in the inventory.
    pub prune_failed: Vec<ObjectFailure>,
    /// Deleted and re-created over an immutable field.
    pub recreated: Vec<ObjectRef>,
    /// Why the post hooks did not all run (the rest not Healthy in time, or a hook failed).
    pub post_hooks_failed: Option<String>,
}

impl Applier {
    /// Dry-runs, applies the stages and prunes (see the module docs). `kinds` is the discovery
    /// the plan was made with; it is discovered again after stage one, so on return it knows
    /// the kinds the render's CRDs declare.
    pub async fn execute(&self, plan: &Plan, kinds: &mut Kinds) -> Result<Report, ApplyError> {
        let created_namespaces: BTreeSet<&str> = plan
            .applies()
            .filter(|apply| apply.id.group.is_empty() && apply.id.kind == "Namespace")
            .map(|apply| apply.id.name.as_str())
            .collect();
        let all: Vec<&Apply> = plan
            .applies()
            .chain(plan.hooks.all().map(|hook| &hook.apply))
            .collect();
        let mut deferred = self.dry_run(kinds, &all, &created_namespaces, plan).await?;
        self.run_hooks(kinds, &plan.hooks.pre).await?;

        let mut report = Report::default();
        for stage in &plan.stages {
            if stage.name == StageName::Resources && !deferred.is_empty() {
                let later = std::mem::take(&mut deferred);
                let still = self.dry_run(kinds, &later, &BTreeSet::new(), plan).await;
                match still {
                    Ok(unknown) if unknown.is_empty() => {}
                    Ok(unknown) => {
                        let failures = unknown.iter().map(|a| unknown_kind(a)).collect();
                        return Err(ApplyError::Validation {
                            failures,
                            written: true,
                        });
                    }
                    Err(ApplyError::Validation { failures, .. }) => {
                        return Err(ApplyError::Validation {
                            failures,
                            written: true,
                        });
                    }
                    Err(other) => return Err(other),
                }
            }
            let objects: Vec<&Apply> = stage.objects.iter().collect();
            self.apply_all(kinds, &objects, &mut report).await?;
            if !stage.await_established.is_empty() {
                for crd in &stage.await_established {
                    write::await_established(&self.reader, &crd.name, ESTABLISHED_TIMEOUT).await?;
                }
            }
            if stage.name == StageName::Foundations {
                *kinds = Kinds::discover(&self.reader)
                    .await
                    .map_err(ApplyError::Discovery)?;
            }
        }
        for deletion in &plan.prune {
            match write::delete(&self.writer, kinds, &deletion.id, &deletion.api_version).await {
                Ok(true) => report.pruned.push(deletion.id.clone()),
                Ok(false) => {} // already gone
                Err(failure) => report.prune_failed.push(failure),
            }
        }
        if let Some(first) = plan.hooks.post.first() {
            // Everything is applied by now: a post hook that cannot run, or fails, is reported,
            // and the health check and its rollback proposal take their course.
            let post = async {
                self.await_healthy(kinds, plan, first).await?;
                self.run_hooks(kinds, &plan.hooks.post).await
            };
            if let Err(error) = post.await {
                tracing::warn!(sync = %plan.sync, %error, "post hooks");
                report.post_hooks_failed = Some(error.to_string());
            }
        }
        Ok(report)
    }

    /// Waits until what `plan` applied is Healthy, for its post hooks (`first` of them is named
    /// when it is not, within the hook timeout).
    async fn await_healthy(
        &self,
        kinds: &Kinds,
        plan: &Plan,
        first: &crate::plan::Hook,
    ) -> Result<(), ApplyError> {
        let inventory = plan.next_inventory();
        let started = std::time::Instant::now();
        loop {
            let health = crate::assess::assess_inventory(&self.reader, kinds, &inventory).await;
            if health.status == crate::health::HealthStatus::Healthy {
                return Ok(());
            }
            if started.elapsed() >= self.hook_timeout {
                return Err(ApplyError::Hook {
                    id: Box::new(first.apply.id.clone()),
                    origin: first.apply.source.clone(),
                    message: format!(
                        "post hooks not run: the rest was not Healthy within {}s: {health}",
                        self.hook_timeout.as_secs()
                    ),
                });
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Dry-runs `objects`; returns those that cannot be dry-run yet (see the module docs).
    async fn dry_run<'a>(
        &self,
        kinds: &Kinds,
        objects: &[&'a Apply],
        created_namespaces: &BTreeSet<&str>,
        plan: &Plan,
    ) -> Result<Vec<&'a Apply>, ApplyError> {
        // Hooks re-created before they run may change what is immutable (a Job's template).
        let recreated: BTreeSet<&ObjectRef> = plan
            .hooks
            .all()
            .filter(|hook| hook.delete.before_creation)
            .map(|hook| &hook.apply.id)
            .collect();
        let checks: Vec<_> = objects
            .iter()
            .map(|&apply| {
                let recreate = self.recreate_on_immutable_change || recreated.contains(&apply.id);
                self.dry_run_one(kinds, apply, created_namespaces, recreate)
            })
            .collect();
        let results: Vec<_> = stream::iter(checks)
            .buffer_unordered(PARALLELISM)
            .collect()
            .await;
        let mut deferred = Vec::new();
        let mut failures = Vec::new();
        for (apply, outcome) in results {
            match outcome {
                Outcome::Passed => {}
                Outcome::Deferred => deferred.push(apply),
                Outcome::Failed(failure) => failures.push(failure),
            }
        }
        if failures.is_empty() {
            Ok(deferred)
        } else {
            failures.sort_by(|a, b| a.source.cmp(&b.source).then(a.id.cmp(&b.id)));
            Err(ApplyError::Validation {
                failures,
                written: false,
            })
        }
    }

    /// Applies one stage with bounded parallelism; every failure of the stage is reported.
    async fn apply_all(
        &self,
        kinds: &Kinds,
        objects: &[&Apply],
        report: &mut Report,
    ) -> Result<(), ApplyError> {
        // Each response is cut down to what drift detection keeps as it arrives, so a stage of
        // a thousand objects holds PARALLELISM whole responses at a time, not a thousand.
        let writes: Vec<_> = objects
            .iter()
            .map(|&apply| async move {
                let (apply, result, recreated) = self.apply_one(kinds, apply).await;
                (apply, result.map(crate::drift::applied_record), recreated)
            })
            .collect();
        let results: Vec<_> = stream::iter(writes)
            .buffer_unordered(PARALLELISM)
            .collect()
            .await;
        let mut applied = Vec::new();
        let mut failures = Vec::new();
        for (apply, result, recreated) in results {
            match result {
                Ok(record) => {
                    if recreated {
                        report.recreated.push(apply.id.clone());
                    }
                    applied.push((apply.id.clone(), record));
                }
                Err(failure) => failures.push(failure),
            }
        }
        // Keep the plan's order, whatever order the requests finished in.
        let position: HashMap<&ObjectRef, usize> = objects
            .iter()
            .enumerate()
            .map(|(at, apply)| (&apply.id, at))
            .collect();
        applied.sort_by_key(|(id, _)| position.get(id).copied());
        report.applied.extend(applied);
        if failures.is_empty() {
            Ok(())
        } else {
            failures.sort_by(|a, b| a.source.cmp(&b.source).then(a.id.cmp(&b.id)));
            Err(ApplyError::Apply {
                failures,
                applied: report.applied.len(),
            })
        }
    }

    async fn dry_run_one<'a>(
        &self,
        kinds: &Kinds,
        apply: &'a Apply,
        created_namespaces: &BTreeSet<&str>,
        recreate: bool,
    ) -> (&'a Apply, Outcome) {
        let Some(resolved) = kinds.resolve(&apply.id.group, apply.api_version(), &apply.id.kind)
        else {
            return (apply, Outcome::Deferred);
        };
        let outcome = match write::apply_one(&self.writer, &resolved, apply, true).await {
            Ok(_) => Outcome::Passed,
            Err(failure)
                if created_namespaces.contains(apply.id.namespace.as_str())
                    && failure.message.contains("not found") =>
            {
                Outcome::Deferred
            }
            Err(failure) if failure.problem == Problem::Immutable && recreate => Outcome::Passed,
            Err(failure) => Outcome::Failed(failure),
        };
        (apply, outcome)
    }

    async fn apply_one<'a>(
        &self,
        kinds: &Kinds,
        apply: &'a Apply,
    ) -> (&'a Apply, Result<Value, ObjectFailure>, bool) {
        let Some(resolved) = kinds.resolve(&apply.id.group, apply.api_version(), &apply.id.kind)
        else {
            return (apply, Err(unknown_kind(apply)), false);
        };
        match write::apply_one(&self.writer, &resolved, apply, false).await {
            Err(failure)
                if failure.problem == Problem::Immutable && self.recreate_on_immutable_change =>
            {
                let why = "to re-create it over an immutable field";
                let result = write::recreate(&self.writer, &resolved, apply, why).await;
                (apply, result, true)
            }
            result => (apply, result, false),
        }
    }
}

enum Outcome {
    Passed,
    Deferred,
    Failed(ObjectFailure),
}

fn unknown_kind(apply: &Apply) -> ObjectFailure {
    ObjectFailure {
        id: apply.id.clone(),
        source: apply.source.clone(),
        problem: Problem::UnknownKind,
        message: format!(
            "the cluster serves no {} {}, even after the render's CustomResourceDefinitions were applied",
            apply.api_version(),
            apply.id.kind
        ),
    }
}
