//! The `GitSync` custom resource: one git source applied to the cluster. Its types are the API;
//! the CRD in `manifests/crds/` is generated from them (`deploy-synchronizer crd`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_shared::forge::{ForgeSpec, PullRequestStatus};

/// How many revisions `status.history` keeps.
pub const HISTORY_LIMIT: usize = 10;

/// A git source applied to the cluster: fetched, rendered, validated by a server-side dry-run,
/// applied with server-side apply, pruned by inventory, healed on drift and health-checked.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "sluice.dev",
    version = "v1alpha1",
    kind = "GitSync",
    namespaced,
    status = "GitSyncStatus",
    shortname = "gsync",
    category = "sluice",
    printcolumn = r#"{"name":"Revision","type":"string","jsonPath":".status.lastAppliedRevision"}"#,
    printcolumn = r#"{"name":"Health","type":"string","jsonPath":".status.health"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct GitSyncSpec {
    /// Where the manifests come from.
    pub source: Source,
    /// How the checked-out path becomes objects.
    #[serde(default)]
    pub render: RenderMode,
    /// How a chart is rendered (`render: Helm`, or `Auto` with a `Chart.yaml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm: Option<HelmSpec>,
    /// Delete objects this sync applied earlier that are gone from the render. Default true.
    #[serde(default = "yes")]
    pub prune: bool,
    /// Allow a render with no objects to prune everything in the inventory. Without it, an empty
    /// render while the inventory is not empty is refused: it is far more often a mistake (a
    /// wrong path, a bad merge) than an intent.
    #[serde(default)]
    pub allow_empty: bool,
    /// Re-apply drifted objects as soon as a watch sees the drift. Default true.
    #[serde(default = "yes")]
    pub self_heal: bool,
    /// Delete and re-create an object whose apply fails on an immutable field. Default false:
    /// the conflict is reported instead.
    #[serde(default)]
    pub recreate_on_immutable_change: bool,
    /// How long a revision may take to become healthy before it counts as failed (e.g. `5m`).
    #[serde(default = "default_health_timeout")]
    pub health_timeout: String,
    /// The ServiceAccount (in this namespace) whose permissions every write uses. Without it, the
    /// synchronizer's own identity writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Namespace given to namespaced objects that name none. Default: this resource's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_namespace: Option<String>,
    /// Namespaces objects may be written to. Empty: only the target namespace; `"*"`: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_namespaces: Vec<String>,
    /// Whether cluster-scoped objects (Namespaces, CRDs, ClusterRoles…) may be applied.
    #[serde(default)]
    pub allow_cluster_scoped: bool,
    /// Stop applying and healing until set back to false.
    #[serde(default)]
    pub suspend: bool,
    /// Propose a rollback when a revision fails its health check: a revert commit pushed to a
    /// branch of its own, for a pull request. Merging it rolls the cluster back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Rollback>,
    /// GitSyncs that must have applied their current spec and be Healthy before this one applies
    /// (CRDs and operators before the applications that use them). While one is not, this one
    /// waits (`Ready=False`, reason `DependencyNotReady`, naming it); a cycle is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<DependencyRef>,
    /// The forge hosting `source.url` (Gitea, GitHub, GitLab). When set, every revision applied
    /// gets a commit status `sluice/<namespace>/<name>` (`pending` while its health is awaited,
    /// then `success` or `failure`), and a rollback is proposed as a pull request whose body is
    /// a diagnosis. `provider` and `apiURL` are guessed from `source.url` when unset; the token
    /// is key `token` of `secretRef`, else of `rollback.secretRef` or `source.secretRef` (key
    /// `token`, else `password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forge: Option<ForgeSpec>,
}

/// A GitSync this one depends on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DependencyRef {
    pub name: String,
    /// Default: this GitSync's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// How a failed revision's rollback is proposed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rollback {
    /// Off unless true.
    #[serde(default)]
    pub enabled: bool,
    /// The revert goes to `<branchPrefix><short revision>`, never to the synced branch.
    #[serde(default = "default_rollback_prefix")]
    pub branch_prefix: String,
    /// The revert commit's author and committer.
    #[serde(default = "default_rollback_author_name")]
    pub author_name: String,
    #[serde(default = "default_rollback_author_email")]
    pub author_email: String,
    /// A Secret with write credentials for the repository (same keys as `source.secretRef`).
    /// Default: `source.secretRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
}

impl Default for Rollback {
    fn default() -> Self {
        Rollback {
            enabled: false,
            branch_prefix: default_rollback_prefix(),
            author_name: default_rollback_author_name(),
            author_email: default_rollback_author_email(),
            secret_ref: None,
        }
    }
}

fn default_rollback_prefix() -> String {
    "sluice/rollback/".to_owned()
}

fn default_rollback_author_name() -> String {
    "Sluice".to_owned()
}

fn default_rollback_author_email() -> String {
    "sluice@sluice.dev".to_owned()
}

/// A git repository, a ref in it and a path below its root.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    /// `https://…` or `ssh://…` (scp-like `git@host:path` is accepted too).
    pub url: String,
    /// What to check out; default: the `main` branch.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<GitRef>,
    /// Directory below the repository root to render. Default: the root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// How often to poll when no webhook arrives (e.g. `1m`).
    #[serde(default = "default_interval")]
    pub interval: String,
    /// Secret with credentials: `username` + `password` (or `password` alone as a token) for
    /// https; `identity` (private key) and `known_hosts` for ssh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
}

/// One of branch, tag or commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum GitRef {
    Branch(String),
    Tag(String),
    Commit(String),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LocalObjectReference {
    pub name: String,
}

/// Plain YAML, Kustomize or a Helm chart; `Auto`: Helm when the path holds a `Chart.yaml`,
/// Kustomize when it holds a kustomization file, else plain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RenderMode {
    #[default]
    Auto,
    Plain,
    Kustomize,
    Helm,
}

/// How a chart is rendered (`helm template`): the chart at the source's path, or one pulled from
/// an OCI registry or an HTTP chart repository (`repoURL`, `chart`, `version`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HelmSpec {
    /// Where the chart comes from when it is not the source's path: `oci://host/path` (the
    /// chart is `<repoURL>/<chart>`), or the `https://` address of a chart repository (its
    /// `index.yaml`). Values files are still read from the source's path.
    #[serde(default, rename = "repoURL", skip_serializing_if = "Option::is_none")]
    pub repo_url: Option<String>,
    /// The chart's name in `repoURL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
    /// A version or a semver range (`1.4.x`, `>=1.4.0 <2.0.0`) of the chart in `repoURL`.
    /// Default: the newest stable version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// A Secret in the GitSync's namespace with logins for the chart: `username` and `password`
    /// (sent to `repoURL`'s host only), or `.dockerconfigjson` (each registry it names, for
    /// `repoURL` and the chart's dependencies); and `ca.crt`, a PEM CA bundle to trust.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart_secret_ref: Option<LocalObjectReference>,
    /// Reach the OCI registries of `repoURL` and of the chart's dependencies over plain HTTP.
    #[serde(
        default,
        rename = "plainHTTP",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub plain_http: bool,
    /// Values from ConfigMaps and Secrets of the GitSync's namespace, merged in order after the
    /// values files and before the inline values. A change to one re-renders the chart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values_from: Vec<ValuesReference>,
    /// The release name. Default: the GitSync's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_name: Option<String>,
    /// The release namespace (`.Release.Namespace`). Default: `targetNamespace`, else the
    /// GitSync's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Values files, relative to the chart directory, merged in order (later ones win).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values_files: Vec<String>,
    /// Inline values, merged last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object")]
    pub values: Option<serde_json::Value>,
    /// Render the chart's `crds/` too. Default true.
    #[serde(default = "yes", rename = "includeCRDs")]
    pub include_crds: bool,
    /// Leave out test hooks. Default true.
    #[serde(default = "yes")]
    pub skip_tests: bool,
}

impl Default for HelmSpec {
    fn default() -> Self {
        HelmSpec {
            repo_url: None,
            chart: None,
            version: None,
            chart_secret_ref: None,
            plain_http: false,
            values_from: Vec::new(),
            release_name: None,
            namespace: None,
            values_files: Vec::new(),
            values: None,
            include_crds: true,
            skip_tests: true,
        }
    }
}

/// Values for a chart from a key of a ConfigMap or a Secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValuesReference {
    pub kind: ValuesKind,
    pub name: String,
    /// The key holding a YAML values document. Default `values.yaml`.
    #[serde(default = "values_yaml")]
    pub values_key: String,
    /// A missing object or key is skipped instead of failing the render.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ValuesKind {
    ConfigMap,
    Secret,
}

fn values_yaml() -> String {
    "values.yaml".to_owned()
}

/// Any JSON object, kept as written (the apiserver prunes unknown fields otherwise).
fn any_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "nullable": true,
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// What the synchronizer last did and saw. Written only by the status writer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitSyncStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The revision (commit SHA) of the last sync attempt, successful or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_revision: Option<String>,
    /// The revision whose objects are applied now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_revision: Option<String>,
    /// For a chart, what its render read besides the revision: the chart pulled (reference,
    /// version, digest) and a digest of the values from ConfigMaps and Secrets. A change of
    /// either renders again, with no commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_inputs: Option<String>,
    /// Healthy, Progressing, Degraded, Suspended or Unknown: the worst of the applied objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// Every object the last applied revision wrote: what prune and self-heal work from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inventory: Vec<InventoryEntry>,
    /// Ready, Healthy and Stalled, with reasons a person can act on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The last revisions, newest first, at most [`HISTORY_LIMIT`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
}

/// One applied object, by identity.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct InventoryEntry {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// The version it was applied with, so it can be read back and deleted.
    pub version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    pub name: String,
}

/// One revision's outcome.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    pub revision: String,
    /// The commit subject, for people reading `kubectl get -o yaml`.
    #[serde(default)]
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The branch holding the proposed revert of this revision, when it failed and rollback is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_branch: Option<String>,
    /// The pull request proposing that revert (with `spec.forge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_pull_request: Option<PullRequestStatus>,
    /// The commit status last set on the forge for this revision: `pending`, `success` or
    /// `failure` (with `spec.forge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_status: Option<String>,
}

/// The shard of `sync` among `shards` (its `sluice.dev/shard` label, else its UID).
pub fn shard_of(sync: &GitSync, shards: u32) -> u32 {
    use kube::ResourceExt;
    let label = sync.labels().get(sluice_shared::shard::SHARD_LABEL);
    let uid = sync.metadata.uid.as_deref().unwrap_or_default();
    sluice_shared::shard::shard_of(uid, label.map(String::as_str), shards)
}

/// The CRD as YAML, as committed in `manifests/crds/`.
pub fn crd_yaml() -> String {
    use kube::CustomResourceExt;
    let crd = serde_json::to_value(GitSync::crd()).expect("a CRD serializes");
    format!(
        "# Generated by `deploy-synchronizer crd` from deploy-synchronizer/src/resource.rs: do not edit.\n{}",
        serde_saphyr::to_string(&crd).expect("a CRD serializes to YAML")
    )
}

fn yes() -> bool {
    true
}

fn default_interval() -> String {
    "1m".to_owned()
}

fn default_health_timeout() -> String {
    "5m".to_owned()
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt;

    use super::*;

    #[test]
    fn defaults_fill_a_minimal_spec() {
        let spec: GitSyncSpec = serde_json::from_value(serde_json::json!({
            "source": {"url": "https://git.example/config.git"}
        }))
        .unwrap();
        assert!(spec.prune && spec.self_heal && !spec.allow_empty && !spec.suspend);
        assert_eq!(spec.source.interval, "1m");
        assert_eq!(spec.health_timeout, "5m");
        assert_eq!(spec.render, RenderMode::Auto);
    }

    #[test]
    fn ref_is_one_of_branch_tag_commit() {
        let source: Source = serde_json::from_value(serde_json::json!({
            "url": "ssh://git@git.example/config.git", "ref": {"tag": "v1.2.0"}
        }))
        .unwrap();
        assert_eq!(source.reference, Some(GitRef::Tag("v1.2.0".into())));
    }

    #[test]
    fn committed_crd_is_the_generated_one() {
        let committed = include_str!("../../manifests/crds/gitsyncs.sluice.dev.yaml");
        assert!(
            committed == crd_yaml(),
            "manifests/crds/gitsyncs.sluice.dev.yaml is stale: run \
             `cargo run -q -p deploy-synchronizer -- crd > manifests/crds/gitsyncs.sluice.dev.yaml`"
        );
    }

    #[test]
    fn crd_has_the_printer_columns() {
        let crd = serde_json::to_value(GitSync::crd()).unwrap();
        let columns = &crd["spec"]["versions"][0]["additionalPrinterColumns"];
        let names: Vec<_> = columns
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].clone())
            .collect();
        assert_eq!(names, ["Revision", "Health", "Ready", "Status", "Age"]);
        assert_eq!(crd["metadata"]["name"], "gitsyncs.sluice.dev");
    }
}
