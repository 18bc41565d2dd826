//! `deploy-synchronizer diff`: what a sync would change, object by object, without writing.
//!
//! Renders a local directory (`--path`) or a GitSync's source at its ref, server-side dry-runs
//! every object as field manager `sluice` (forced, as a sync applies), reads the live object and
//! hands both to [`crate::diff::diff_objects`]. For a GitSync, objects of its `status.inventory`
//! that left the render are shown as deletions, unless prune is off.

use std::path::{Path, PathBuf};

use futures::{StreamExt, stream};
use kube::Client;
use kube::api::{Api, DynamicObject};
use serde_json::{Value, json};

use crate::apply::{Kinds, ObjectFailure, PARALLELISM, Problem, dry_run_apply};
use crate::diff::{DiffReport, ObjectDiff, diff_objects};
use crate::plan::{Apply, Deletion, Desired, Inventory, Scope, ScopeLookup};
use crate::resource::{GitSync, GitSyncSpec, RenderMode};
use crate::revision::{self, Cluster, PlannedRevision, SyncOf};
use crate::source::SourceError;
use crate::stages::Stages;
use crate::tenancy::Lockdown;

/// What to diff.
#[derive(Clone, Debug)]
pub enum Target {
    /// A local directory, rendered as a sync would; namespaced objects without a namespace go to
    /// `target_namespace`, else the client's default namespace.
    Path {
        dir: PathBuf,
        target_namespace: Option<String>,
    },
    /// GitSync `name` of `namespace`: its source at its ref, plus prune of its inventory.
    GitSync {
        namespace: String,
        name: String,
        /// Where git caches and checkouts go.
        cache_dir: PathBuf,
    },
}

/// Why a diff could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The source could not be fetched.
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("cannot read GitSync {namespace}/{name}: {error}")]
    GitSync {
        namespace: String,
        name: String,
        #[source]
        error: kube::Error,
    },
    /// The revision could not be rendered or planned, as a sync would fail on it.
    #[error(transparent)]
    Revision(#[from] revision::Error),
    #[error("{} object(s) cannot be diffed: {}", .0.len(), listed(.0))]
    Objects(Vec<ObjectFailure>),
}

fn listed(failures: &[ObjectFailure]) -> String {
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Makes the diff of `target`: reads with `client`; dry-runs with it too (or, for a GitSync
/// naming a ServiceAccount, as that account, like the sync). `config` is `client`'s config, for
/// impersonation.
pub async fn run(
    client: &Client,
    config: &kube::Config,
    target: &Target,
) -> Result<DiffReport, Error> {
    match target {
        Target::Path {
            dir,
            target_namespace,
        } => {
            let kinds = Kinds::discover(client)
                .await
                .map_err(revision::Error::Discovery)?;
            let namespace = target_namespace
                .clone()
                .filter(|ns| !ns.is_empty())
                .unwrap_or_else(|| client.default_namespace().to_owned());
            // A chart directory renders as a release named after the directory.
            let release = dir
                .canonicalize()
                .ok()
                .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "release".to_owned());
            let sync = SyncOf {
                namespace: &namespace,
                name: &release,
                cache_root: dir,
            };
            let spec = GitSyncSpec::default();
            let helm = revision::helm_options(client, &kinds, sync, &spec).await;
            let options = revision::render_options(RenderMode::Auto, helm);
            let desired = revision::render(dir, Path::new(""), &options)
                .await
                .map_err(revision::Error::from)?;
            let applies = place_plain(desired, &kinds, &namespace)?;
            let objects = diff_applies(client, client, &kinds, &applies).await?;
            Ok(DiffReport::new(objects))
        }
        Target::GitSync {
            namespace,
            name,
            cache_dir,
        } => diff_git_sync(client, config, namespace, name, cache_dir).await,
    }
}

async fn diff_git_sync(
    client: &Client,
    config: &kube::Config,
    namespace: &str,
    name: &str,
    cache_root: &Path,
) -> Result<DiffReport, Error> {
    let api: Api<GitSync> = Api::namespaced(client.clone(), namespace);
    let sync = api.get(name).await.map_err(|error| Error::GitSync {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        error,
    })?;
    let of = SyncOf {
        namespace,
        name,
        cache_root,
    };
    let checkout = revision::fetch(client, of, &sync.spec).await?;
    let inputs = revision::chart_inputs(client, of, &sync.spec)
        .await
        .map_err(revision::Error::from)?;
    tracing::info!(sync = %format!("{namespace}/{name}"), revision = %checkout.commit, "fetched");
    let inventory: Inventory = sync
        .status
        .as_ref()
        .map(|status| status.inventory.iter().cloned().collect())
        .unwrap_or_default();
    let cluster = Cluster {
        client,
        config,
        lockdown: &Lockdown::default(),
    };
    let PlannedRevision {
        plan,
        kinds,
        writer,
    } = revision::plan(
        cluster,
        of,
        &sync.spec,
        (checkout, inputs),
        (&inventory, None),
        &mut Stages::new(),
    )
    .await?;

    let applies: Vec<Apply> = plan.applies().cloned().collect();
    let mut objects = diff_applies(client, &writer, &kinds, &applies).await?;
    objects.extend(diff_prunes(client, &kinds, &plan.prune).await?);
    Ok(DiffReport::new(objects))
}

/// The live objects `prune` would delete, each diffed against nothing. Any that cannot be read
/// fails the diff, naming each.
async fn diff_prunes(
    client: &Client,
    kinds: &Kinds,
    prune: &[Deletion],
) -> Result<Vec<ObjectDiff>, Error> {
    let mut objects = Vec::new();
    let mut failures = Vec::new();
    for deletion in prune {
        let Some(resolved) =
            kinds.resolve(&deletion.id.group, &deletion.api_version, &deletion.id.kind)
        else {
            continue;
        };
        match resolved
            .api(client.clone(), &deletion.id)
            .get_opt(&deletion.id.name)
            .await
        {
            Ok(Some(live)) => {
                let live = serde_json::to_value(live).unwrap_or(Value::Null);
                objects.push(diff_objects(None, Some(&live)));
            }
            Ok(None) => {}
            Err(error) => failures.push(ObjectFailure {
                id: deletion.id.clone(),
                source: String::new(),
                problem: Problem::Unreachable,
                message: format!("cannot read the live object: {error}"),
            }),
        }
    }
    if failures.is_empty() {
        Ok(objects)
    } else {
        Err(Error::Objects(failures))
    }
}

/// A local directory's objects, placed without a GitSync: namespaced objects that name no
/// namespace go to `namespace`; nothing is marked as owned (there is no sync to own them).
fn place_plain(desired: Vec<Desired>, kinds: &Kinds, namespace: &str) -> Result<Vec<Apply>, Error> {
    let mut applies = Vec::with_capacity(desired.len());
    let mut failures = Vec::new();
    for Desired {
        mut id,
        mut object,
        source,
    } in desired
    {
        match kinds.scope_of(&id.group, &id.kind) {
            None => failures.push(ObjectFailure {
                id,
                source,
                problem: Problem::UnknownKind,
                message: "the cluster does not serve this kind (is its CRD installed?)".to_owned(),
            }),
            Some(Scope::Cluster) => {
                id.namespace.clear();
                if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                    metadata.remove("namespace");
                }
                applies.push(Apply { id, object, source });
            }
            Some(Scope::Namespaced) => {
                if id.namespace.is_empty() {
                    id.namespace = namespace.to_owned();
                    if let Some(metadata) =
                        object.get_mut("metadata").and_then(Value::as_object_mut)
                    {
                        metadata.insert("namespace".to_owned(), json!(namespace));
                    }
                }
                applies.push(Apply { id, object, source });
            }
        }
    }
    if failures.is_empty() {
        Ok(applies)
    } else {
        Err(Error::Objects(failures))
    }
}

/// How many times an object is dry-run and read until both are of one revision of it.
const CONSISTENT_ATTEMPTS: usize = 3;

/// Whether a dry-run and a read of an object start from the same revision of it: the dry-run's
/// `resourceVersion` is that of the object it was applied over (a dry-run stores nothing), so
/// it differs from the read's when a controller wrote the object between the two, say
/// `deployment.kubernetes.io/revision` on a new Deployment. Diffing those two would show that
/// write as a change Git asks for.
fn same_revision(dry_run: &Value, live: Option<&Value>) -> bool {
    let version = |object: &Value| {
        object
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    version(dry_run) == live.map(version).unwrap_or_default()
}

/// Dry-runs each of `applies` with `writer`, reads it live with `reader`, and diffs the two,
/// dry-running and reading again when a write came between (see [`same_revision`]).
/// Any refusal fails the whole diff, naming every refused object and its file.
async fn diff_applies(
    reader: &Client,
    writer: &Client,
    kinds: &Kinds,
    applies: &[Apply],
) -> Result<Vec<ObjectDiff>, Error> {
    let results: Vec<Result<ObjectDiff, ObjectFailure>> = stream::iter(applies)
        .map(|apply| async move {
            let Some(resolved) =
                kinds.resolve(&apply.id.group, apply.api_version(), &apply.id.kind)
            else {
                return Err(ObjectFailure {
                    id: apply.id.clone(),
                    source: apply.source.clone(),
                    problem: Problem::UnknownKind,
                    message: format!(
                        "the cluster does not serve {} {} (is its CRD installed?)",
                        apply.api_version(),
                        apply.id.kind
                    ),
                });
            };
            let api: Api<DynamicObject> = resolved.api(reader.clone(), &apply.id);
            let mut attempt = 1;
            let (desired, live) = loop {
                let desired = dry_run_apply(writer, &resolved, apply).await?;
                let live = api
                    .get_opt(&apply.id.name)
                    .await
                    .map_err(|error| ObjectFailure {
                        id: apply.id.clone(),
                        source: apply.source.clone(),
                        problem: Problem::Unreachable,
                        message: format!("cannot read the live object: {error}"),
                    })?
                    .map(|live| serde_json::to_value(live).unwrap_or(Value::Null));
                if same_revision(&desired, live.as_ref()) || attempt == CONSISTENT_ATTEMPTS {
                    break (desired, live);
                }
                attempt += 1;
            };
            Ok(diff_objects(Some(&desired), live.as_ref()))
        })
        .buffered(PARALLELISM)
        .collect()
        .await;
    let mut objects = Vec::with_capacity(results.len());
    let mut failures = Vec::new();
    for result in results {
        match result {
            Ok(object) => objects.push(object),
            Err(failure) => failures.push(failure),
        }
    }
    if failures.is_empty() {
        Ok(objects)
    } else {
        Err(Error::Objects(failures))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_dry_run_and_a_read_of_one_revision_are_told_from_two() {
        let at = |version: &str| json!({"metadata": {"name": "web", "resourceVersion": version}});
        assert!(same_revision(&at("4117"), Some(&at("4117"))));
        // The deployment controller annotated the Deployment between the dry-run and the read.
        assert!(!same_revision(&at("4117"), Some(&at("4121"))));
        // A dry-run create has no resourceVersion: consistent while the object is still absent.
        let created = json!({"metadata": {"name": "web"}});
        assert!(same_revision(&created, None));
        assert!(!same_revision(&created, Some(&at("4121"))));
        // Deleted between: the dry-run was over an object the read no longer finds.
        assert!(!same_revision(&at("4117"), None));
    }
}
