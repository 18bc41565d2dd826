//! The Config Updater's custom resources, Flux's shapes where users know them:
//! - `ImageRepository`: a registry repository to scan;
//! - `ImagePolicy`: which of its tags (or which digest) is the one to run;
//! - `ImageUpdate`: where in git to write the chosen tags, when, and how to commit.
//!
//! The CRDs in `manifests/crds/` are generated from these types (`config-updater crd`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use sluice_shared::forge::{ForgeSpec, PullRequestStatus};

use crate::policy::Policy;
use crate::scan::config::RegistryAccess;
use crate::schedule::Window;

/// A registry repository to scan for tags.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "sluice.dev",
    version = "v1alpha1",
    kind = "ImageRepository",
    namespaced,
    status = "ImageRepositoryStatus",
    shortname = "imgrepo",
    category = "sluice",
    printcolumn = r#"{"name":"Image","type":"string","jsonPath":".spec.image"}"#,
    printcolumn = r#"{"name":"Tags","type":"integer","jsonPath":".status.tagCount"}"#,
    printcolumn = r#"{"name":"Scanned","type":"date","jsonPath":".status.lastScanTime"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ImageRepositorySpec {
    #[serde(flatten)]
    pub access: RegistryAccess,
    /// Stop scanning until set back to false.
    #[serde(default)]
    pub suspend: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageRepositoryStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scan_time: Option<String>,
    /// How many tags the last complete scan saw (after exclusions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_count: Option<i64>,
    /// The newest few tags of the last scan, for people reading status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latest_tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Which tag (or digest) of a scanned repository to run.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "sluice.dev",
    version = "v1alpha1",
    kind = "ImagePolicy",
    namespaced,
    status = "ImagePolicyStatus",
    shortname = "imgpol",
    category = "sluice",
    printcolumn = r#"{"name":"Latest","type":"string","jsonPath":".status.latestRef.tag"}"#,
    printcolumn = r#"{"name":"Digest","type":"string","priority":1,"jsonPath":".status.latestRef.digest"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ImagePolicySpec {
    /// The `ImageRepository` (same namespace) whose tags this policy chooses from.
    pub image_repository_ref: LocalObjectReference,
    #[serde(flatten)]
    pub policy: Policy,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImagePolicyStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The image the policy chose last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_ref: Option<ImageRefStatus>,
    /// The one before it, so a bump can be traced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_previous_ref: Option<ImageRefStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scan_time: Option<String>,
    /// How many tags the choice was made among.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags_seen: Option<i64>,
    /// Tags never to choose again because a person rolled them back in git.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked_tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A chosen image: `name:tag`, with the digest when known or pinned.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageRefStatus {
    pub name: String,
    pub tag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// Where and how chosen images are written back to git.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "sluice.dev",
    version = "v1alpha1",
    kind = "ImageUpdate",
    namespaced,
    status = "ImageUpdateStatus",
    shortname = "imgupd",
    category = "sluice",
    printcolumn = r#"{"name":"Last commit","type":"string","jsonPath":".status.lastPushCommit"}"#,
    printcolumn = r#"{"name":"Pending","type":"integer","jsonPath":".status.pendingCount"}"#,
    printcolumn = r#"{"name":"Pull request","type":"string","priority":1,"jsonPath":".status.pullRequest.url"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ImageUpdateSpec {
    pub git: GitWriteBack,
    /// Files and directories (relative to the repository root) to look for image references in.
    /// Default: the whole repository.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Also update unmarked `image:` fields and kustomize `images:` entries that name a watched
    /// repository. Default false: only Flux setter markers are rewritten.
    #[serde(default)]
    pub update_unmarked: bool,
    /// Pushes happen only while this window is open; bumps wait in status meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// Gather the bumps that arrive within this delay into one commit (e.g. `30s`). Default `0s`.
    #[serde(default = "default_batch_delay")]
    pub batch_delay: String,
    /// How often the branch is read even when no policy chose anything new (e.g. `1m`): a
    /// person's revert of a bump is then noticed (its tag goes to the policy's `blockedTags`)
    /// and a value someone changed by hand is written again. Default `5m`.
    #[serde(default = "default_update_interval")]
    pub interval: String,
    /// Stop writing until set back to false.
    #[serde(default)]
    pub suspend: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitWriteBack {
    /// `https://…` or `ssh://…`.
    pub url: String,
    /// The branch to check out and update. Default `main`.
    #[serde(default = "default_branch")]
    pub branch: String,
    /// Push to this branch instead of `branch`, for a pull request. Never force-pushed: a new
    /// commit goes on `branch`'s head while `branch` contains the push branch (or it is missing),
    /// else on the push branch's own head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_branch: Option<String>,
    /// Secret with the git credentials (same keys as a GitSync source's Secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    #[serde(default)]
    pub commit: CommitTemplate,
    /// Propose the bumps as a pull request from `pushBranch` into `branch` (requires
    /// `pushBranch`). One open pull request per push branch: later bumps add commits to it and
    /// refresh its body. Closing it without merge rejects the versions it proposed: they go to
    /// the policies' `blockedTags` and are not proposed again until a newer version appears.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PullRequestTemplate>,
}

/// The pull request of a push branch: where the forge is, and how the pull request reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestTemplate {
    /// The forge (`provider`, `apiURL`, `secretRef` with key `token`); guessed from `git.url`
    /// when unset, with the token of `git.secretRef` (key `token`, else `password`).
    #[serde(flatten)]
    pub forge: ForgeSpec,
    /// The title; `{{changes}}` expands to `name old → new, …`, `{{count}}` to how many,
    /// `{{branch}}` to the base branch.
    #[serde(default = "default_pr_title")]
    pub title: String,
    /// The body, same placeholders (`{{changes}}`: one line per change); a table of every change
    /// (file, image, old → new, policy) always follows.
    #[serde(default = "default_pr_body")]
    pub body: String,
    /// Labels to put on the pull request (made on the forge when missing, where it needs that).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

fn default_pr_title() -> String {
    "Update images: {{changes}}".into()
}

fn default_pr_body() -> String {
    "Sluice found newer images allowed by their policies:\n\n{{changes}}".into()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommitTemplate {
    #[serde(default = "default_author_name")]
    pub author_name: String,
    #[serde(default = "default_author_email")]
    pub author_email: String,
    /// The message; `{{changes}}` expands to one line per change, `file: image old → new`.
    /// Machine-readable trailers naming every change are always appended.
    #[serde(default = "default_message")]
    pub message_template: String,
    /// A Secret holding an SSH private key (`identity`) to sign commits with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key_ref: Option<LocalObjectReference>,
}

impl Default for CommitTemplate {
    fn default() -> Self {
        CommitTemplate {
            author_name: default_author_name(),
            author_email: default_author_email(),
            message_template: default_message(),
            signing_key_ref: None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageUpdateStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_push_commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_push_time: Option<String>,
    /// Bumps waiting for the window to open or the batch delay to pass.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<PendingChange>,
    #[serde(default)]
    pub pending_count: i32,
    /// When the pending bumps will be pushed, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_push_time: Option<String>,
    /// The push branch's pull request, in pull-request mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PullRequestStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// One bump not yet pushed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingChange {
    /// `namespace/name` of the ImagePolicy.
    pub policy: String,
    pub file: String,
    pub old_image: String,
    pub new_image: String,
    pub since: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LocalObjectReference {
    pub name: String,
}

fn default_batch_delay() -> String {
    "0s".to_owned()
}

fn default_update_interval() -> String {
    "5m".to_owned()
}

fn default_branch() -> String {
    "main".to_owned()
}

fn default_author_name() -> String {
    "Sluice Config Updater".to_owned()
}

fn default_author_email() -> String {
    "config-updater@sluice.dev".to_owned()
}

fn default_message() -> String {
    "Update images\n\n{{changes}}".to_owned()
}

/// The three CRDs as YAML, as committed in `manifests/crds/`, by file name.
pub fn crds_yaml() -> Vec<(&'static str, String)> {
    [
        ("imagerepositories.sluice.dev.yaml", ImageRepository::crd()),
        ("imagepolicies.sluice.dev.yaml", ImagePolicy::crd()),
        ("imageupdates.sluice.dev.yaml", ImageUpdate::crd()),
    ]
    .into_iter()
    .map(|(file, crd)| {
        let value = serde_json::to_value(crd).expect("a CRD serializes");
        let yaml = serde_saphyr::to_string(&value).expect("a CRD serializes to YAML");
        (
            file,
            format!("# Generated by `config-updater crd` from config-updater/src/resource.rs: do not edit.\n{yaml}"),
        )
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_crds_are_the_generated_ones() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/crds");
        for (file, yaml) in crds_yaml() {
            let committed = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
            assert!(
                committed == yaml,
                "manifests/crds/{file} is stale: run `cargo run -q -p config-updater -- crd --write manifests/crds`"
            );
        }
    }

    #[test]
    fn a_flux_style_policy_reads() {
        let spec: ImagePolicySpec = serde_json::from_value(serde_json::json!({
            "imageRepositoryRef": {"name": "web"},
            "policy": {"semver": {"range": ">=1.0.0 <2.0.0"}},
            "filterTags": {"pattern": "^v(?P<v>.*)$", "extract": "$v"}
        }))
        .unwrap();
        assert_eq!(spec.image_repository_ref.name, "web");
        assert!(spec.policy.filter_tags.is_some());
    }

    #[test]
    fn write_back_defaults() {
        let spec: ImageUpdateSpec = serde_json::from_value(serde_json::json!({
            "git": {"url": "https://git.example/config.git"}
        }))
        .unwrap();
        assert_eq!(spec.git.branch, "main");
        assert_eq!(spec.batch_delay, "0s");
        assert_eq!(spec.interval, "5m");
        assert!(spec.git.commit.message_template.contains("{{changes}}"));
        assert!(!spec.update_unmarked);
    }
}
