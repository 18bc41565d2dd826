//! `config-updater scan --once --dry-run`: what the next write-back round would change, without
//! changing anything. For every `ImageUpdate` it scans the repositories its namespace's
//! `ImagePolicies` name, chooses as the policy controller does (honouring `status.blockedTags`),
//! clones the config repository into a temporary directory and plans the round as the
//! write-back does (`writeback::plan_round`, the same round, rolled-back versions left out). Nothing
//! is committed, pushed or written to any status.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use similar::TextDiff;
use sluice_shared::git::Remote;

use crate::controller::policy::{Picked, choose_and_pin};
use crate::controller::{Context, Error as ControllerError, Options};
use crate::edit::{ImageRef, PolicyId};
use crate::policy::CompiledPolicy;
use crate::resource::{ImagePolicy, ImageRepository, ImageUpdate};
use crate::scan::TagCache;
use crate::writeback::{Change, Chosen, Problem, WritePlan, plan_round};

/// The dry run could not even list the resources.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Nothing to plan: a dry run that checked nothing must not pass for "nothing would change".
    #[error("{}", no_image_update(.namespace.as_deref()))]
    NoImageUpdate { namespace: Option<String> },
}

/// The message for a dry run that found no `ImageUpdate` to plan.
fn no_image_update(namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!(
            "no ImageUpdate in namespace {ns}: nothing to plan (is -n the namespace of the ImageUpdate?)"
        ),
        None => "no ImageUpdate in any namespace: nothing to plan".to_owned(),
    }
}

/// What every `ImageUpdate` would change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DryRunReport {
    pub updates: Vec<UpdateReport>,
}

/// What one `ImageUpdate` would change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateReport {
    /// `namespace/name`.
    pub update: String,
    /// The branch the round would build on.
    pub branch: String,
    /// One unified diff per changed file, sorted by path.
    pub diffs: Vec<FileDiff>,
    pub changes: Vec<Change>,
    pub problems: Vec<Problem>,
    /// Policies that could not choose, or a repository that could not be read (no credential
    /// in any message).
    pub errors: Vec<String>,
}

/// The unified diff of one file (`--- a/<path>` / `+++ b/<path>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDiff {
    pub path: String,
    pub diff: String,
}

impl DryRunReport {
    /// Whether any `ImageUpdate` would change a file.
    pub fn would_change(&self) -> bool {
        self.updates.iter().any(|u| !u.changes.is_empty())
    }

    /// Whether anything failed along the way.
    pub fn has_errors(&self) -> bool {
        self.updates.iter().any(|u| !u.errors.is_empty())
    }

    /// 0: nothing would change; 1: changes would be made; 2: something failed.
    pub fn exit_code(&self) -> u8 {
        if self.has_errors() {
            2
        } else if self.would_change() {
            1
        } else {
            0
        }
    }

    /// The report as text: per `ImageUpdate`, the diffs, the changes and the problems.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.updates.is_empty() {
            out.push_str("no ImageUpdate found\n");
        }
        for u in &self.updates {
            let _ = writeln!(out, "# ImageUpdate {} (branch {})", u.update, u.branch);
            for d in &u.diffs {
                out.push_str(&d.diff);
                if !d.diff.ends_with('\n') {
                    out.push('\n');
                }
            }
            if u.changes.is_empty() {
                out.push_str("no changes\n");
            } else {
                out.push_str("changes:\n");
                for c in &u.changes {
                    let _ = writeln!(out, "  {}: {} {} → {}", c.file, c.image, c.old, c.new);
                }
            }
            if !u.problems.is_empty() {
                out.push_str("problems:\n");
                for p in &u.problems {
                    let _ = writeln!(out, "  {p}");
                }
            }
            if !u.errors.is_empty() {
                out.push_str("errors:\n");
                for e in &u.errors {
                    let _ = writeln!(out, "  {e}");
                }
            }
        }
        out
    }
}

/// Plans every `ImageUpdate` of `namespace` (all namespaces when `None`) without writing
/// anything anywhere but a temporary directory.
pub async fn run(client: Client, namespace: Option<&str>) -> Result<DryRunReport, Error> {
    let ctx = Context::new(client.clone(), &Options::default());
    let updates: Api<ImageUpdate> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut updates = updates.list(&ListParams::default()).await?.items;
    if updates.is_empty() {
        return Err(Error::NoImageUpdate {
            namespace: namespace.map(str::to_owned),
        });
    }
    updates.sort_by_key(|u| (u.namespace(), u.name_any()));
    let mut report = DryRunReport::default();
    // Choices per namespace: several ImageUpdates of one namespace scan once.
    let mut choices: BTreeMap<String, (BTreeMap<PolicyId, Chosen>, Vec<String>)> = BTreeMap::new();
    for update in &updates {
        let ns = update.namespace().unwrap_or_default();
        if !choices.contains_key(&ns) {
            let chosen = choose_all(&ctx, &ns).await?;
            choices.insert(ns.clone(), chosen);
        }
        let (chosen, errors) = &choices[&ns];
        let mut u = UpdateReport {
            update: format!("{ns}/{}", update.name_any()),
            branch: update
                .spec
                .git
                .push_branch
                .clone()
                .unwrap_or_else(|| update.spec.git.branch.clone()),
            errors: errors.clone(),
            ..UpdateReport::default()
        };
        match plan_update(&ctx, &ns, update, chosen.clone()).await {
            Ok((files, planned)) => {
                u.diffs = diffs(&files, &planned);
                u.changes = planned.changes;
                u.problems = planned.problems;
            }
            Err(e) => u.errors.push(format!(
                "git {}: {}",
                sluice_shared::git::url::redact(&update.spec.git.url),
                sluice_shared::exit::describe(&e)
            )),
        }
        report.updates.push(u);
    }
    Ok(report)
}

/// The image each policy of `ns` chooses now, and what went wrong for the others.
async fn choose_all(
    ctx: &Context,
    ns: &str,
) -> Result<(BTreeMap<PolicyId, Chosen>, Vec<String>), Error> {
    let policies: Api<ImagePolicy> = Api::namespaced(ctx.client.clone(), ns);
    let mut policies = policies.list(&ListParams::default()).await?.items;
    policies.sort_by_key(|p| p.name_any());
    let mut chosen = BTreeMap::new();
    let mut errors = Vec::new();
    let mut tags_of: BTreeMap<String, Result<ScannedRepo, String>> = BTreeMap::new();
    for policy in &policies {
        let repo_name = policy.spec.image_repository_ref.name.clone();
        if !tags_of.contains_key(&repo_name) {
            let scanned = scan_repository(ctx, ns, &repo_name)
                .await
                .map_err(|e| sluice_shared::exit::describe(&e));
            tags_of.insert(repo_name.clone(), scanned);
        }
        let id = PolicyId {
            namespace: ns.to_owned(),
            name: policy.name_any(),
        };
        let scanned = match &tags_of[&repo_name] {
            Ok(s) => s,
            Err(e) => {
                errors.push(format!(
                    "policy {ns}/{}: ImageRepository {repo_name}: {e}",
                    id.name
                ));
                continue;
            }
        };
        match choose(policy, scanned).await {
            Ok(Some(c)) => {
                chosen.insert(id, c);
            }
            Ok(None) => {}
            Err(e) => errors.push(format!("policy {ns}/{}: {e}", id.name)),
        }
    }
    Ok((chosen, errors))
}

struct ScannedRepo {
    image: String,
    tags: Vec<String>,
    client: Arc<crate::scan::RegistryClient>,
}

async fn scan_repository(
    ctx: &Context,
    ns: &str,
    name: &str,
) -> Result<ScannedRepo, ControllerError> {
    let repos: Api<ImageRepository> = Api::namespaced(ctx.client.clone(), ns);
    let repo = repos.get_opt(name).await?.ok_or_else(|| {
        ControllerError::Invalid(format!("the ImageRepository {ns}/{name} does not exist"))
    })?;
    let access = repo.spec.access.validate()?;
    let client =
        Arc::new(crate::controller::repository::client_for(&repo, ctx, ns, &access).await?);
    let mut cache = TagCache::default();
    let outcome = crate::scan::scan(&client, &access, &mut cache).await?;
    Ok(ScannedRepo {
        image: repo.spec.access.image.clone(),
        tags: outcome.list.tags,
        client,
    })
}

/// The policy's choice, as the policy controller makes it ([`choose_and_pin`]); `None` when no
/// tag qualifies.
async fn choose(policy: &ImagePolicy, scanned: &ScannedRepo) -> Result<Option<Chosen>, String> {
    let compiled = CompiledPolicy::new(&policy.spec.policy).map_err(|e| e.to_string())?;
    let blocked: HashSet<String> = policy
        .status
        .as_ref()
        .map(|s| s.blocked_tags.iter().cloned().collect())
        .unwrap_or_default();
    let client = Some(scanned.client.as_ref());
    let latest =
        match choose_and_pin(&compiled, &scanned.image, &scanned.tags, &blocked, client).await {
            Picked::Chosen { latest, .. } => latest,
            Picked::NoMatch { .. } => return Ok(None),
            Picked::Unpinned { error, .. } => return Err(error.to_string()),
        };
    let image = ImageRef::new(&latest.name, Some(&latest.tag), latest.digest.as_deref())
        .map_err(|e| e.to_string())?;
    Ok(Some(Chosen { image }))
}

/// Clones the config repository into a temporary directory and plans the round there.
async fn plan_update(
    ctx: &Context,
    ns: &str,
    update: &ImageUpdate,
    chosen: BTreeMap<PolicyId, Chosen>,
) -> Result<(Vec<(String, Vec<u8>)>, WritePlan), ControllerError> {
    let auth = crate::controller::credentials::git_auth(&ctx.client, ns, update).await?;
    let remote = Remote::new(update.spec.git.url.clone(), auth)?;
    let spec = update.spec.clone();
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().map_err(|e| {
            ControllerError::Invalid(format!("cannot create a temporary directory: {e}"))
        })?;
        let round = plan_round(&remote, &spec, &chosen, dir.path(), None)?;
        Ok((round.files, round.plan))
    })
    .await
    .map_err(|e| ControllerError::Invalid(format!("the dry-run task failed: {e}")))?
}

/// A unified diff per changed file.
fn diffs(files: &[(String, Vec<u8>)], planned: &WritePlan) -> Vec<FileDiff> {
    planned
        .files
        .iter()
        .map(|edit| {
            let old = files
                .iter()
                .find(|(p, _)| *p == edit.path)
                .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            let new = String::from_utf8_lossy(&edit.new_bytes).into_owned();
            let diff = unified(&old, &new, &edit.path);
            FileDiff {
                path: edit.path.clone(),
                diff,
            }
        })
        .collect()
}

/// `--- a/<path>` / `+++ b/<path>` and the hunks.
pub fn unified(old: &str, new: &str, path: &str) -> String {
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writeback::Change;

    #[test]
    fn a_diff_names_both_sides_and_changes_one_line() {
        let old = "a: 1\nimage: web:1.4.2 # {\"$imagepolicy\": \"ns:web\"}\nb: 2\n";
        let new = old.replace("1.4.2", "1.4.3");
        let diff = unified(old, &new, "apps/web.yaml");
        assert!(
            diff.starts_with("--- a/apps/web.yaml\n+++ b/apps/web.yaml\n"),
            "{diff}"
        );
        assert!(diff.contains("\n-image: web:1.4.2 # {\"$imagepolicy\": \"ns:web\"}\n"));
        assert!(diff.contains("\n+image: web:1.4.3 # {\"$imagepolicy\": \"ns:web\"}\n"));
    }

    #[test]
    fn no_image_update_names_the_namespace() {
        let e = Error::NoImageUpdate {
            namespace: Some("shop".into()),
        };
        assert_eq!(
            e.to_string(),
            "no ImageUpdate in namespace shop: nothing to plan (is -n the namespace of the ImageUpdate?)"
        );
        let e = Error::NoImageUpdate { namespace: None };
        assert_eq!(
            e.to_string(),
            "no ImageUpdate in any namespace: nothing to plan"
        );
    }

    #[test]
    fn exit_codes_and_rendering() {
        let mut report = DryRunReport::default();
        assert_eq!(report.exit_code(), 0);
        report.updates.push(UpdateReport {
            update: "ns/config".into(),
            branch: "main".into(),
            ..UpdateReport::default()
        });
        assert_eq!(report.exit_code(), 0);
        assert!(report.render().contains("no changes"));
        report.updates[0].changes.push(Change {
            policy: PolicyId {
                namespace: "ns".into(),
                name: "web".into(),
            },
            file: "apps/web.yaml".into(),
            line: 2,
            image: "reg/web".into(),
            old: "1.4.2".into(),
            new: "1.4.3".into(),
        });
        assert_eq!(report.exit_code(), 1);
        assert!(
            report
                .render()
                .contains("  apps/web.yaml: reg/web 1.4.2 → 1.4.3\n")
        );
        report.updates[0].errors.push("boom".into());
        assert_eq!(report.exit_code(), 2);
    }
}
