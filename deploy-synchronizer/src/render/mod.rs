//! Rendering a source tree into Kubernetes objects: plain YAML directories, Kustomize and Helm
//! charts.
//!
//! [`render`] is the one entry point: it resolves the sub-path inside the checkout, picks the mode
//! (a `Chart.yaml` in the target directory means Helm, a kustomization file Kustomize, unless
//! told otherwise), and
//! returns every object with the place it came from. A render either succeeds whole or fails
//! whole: nothing of a half-rendered tree may be applied (a missing object would be pruned), so
//! the errors of all files are gathered and reported together.
//!
//! The parsing rules live in [`parse_documents`], pure and tested on bytes; the walker and the
//! Kustomize runner are thin I/O around it.

mod confine;
mod documents;
mod helm;
pub(crate) mod helm_home;
mod kustomize;
mod walk;

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use documents::parse_documents;
pub use helm::{DEFAULT_HELM_TIMEOUT, HelmOptions, render_helm};
pub(crate) use helm::{HelmRun, REPOSITORY_CONFIG, helm_program, prepare_home, run_helm};
pub use kustomize::render_kustomize;
pub use sluice_shared::kustomize::KUSTOMIZATION_FILES;
pub use walk::{RenderTarget, render_plain};

use crate::object::ObjectRef;

/// Files over this size are refused: a manifest that large is a mistake (a vendored binary, a
/// generated dump) and would cost the daemon its memory budget.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 4 * 1024 * 1024;
/// How long `kustomize build` may run before it is killed.
pub const DEFAULT_KUSTOMIZE_TIMEOUT: Duration = Duration::from_secs(60);

/// How to turn the target directory into objects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub enum RenderMode {
    /// Kustomize when the target directory has a kustomization file, plain YAML otherwise.
    #[default]
    Auto,
    /// Every YAML and JSON file under the directory, even next to a kustomization file.
    Plain,
    /// `kustomize build` of the directory.
    Kustomize,
    /// `helm template` of the chart in the directory.
    Helm,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RenderOptions {
    pub mode: RenderMode,
    /// Largest manifest file accepted, in bytes.
    pub max_file_size: u64,
    pub kustomize_timeout: Duration,
    /// Where to look for `kustomize`, `kubectl` and `helm`; `None` means the process's `PATH`.
    pub search_path: Option<OsString>,
    /// What `helm template` is told, for a chart.
    pub helm: HelmOptions,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            mode: RenderMode::Auto,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            kustomize_timeout: DEFAULT_KUSTOMIZE_TIMEOUT,
            search_path: None,
            helm: HelmOptions {
                timeout: DEFAULT_HELM_TIMEOUT,
                include_crds: true,
                skip_tests: true,
                ..HelmOptions::default()
            },
        }
    }
}

/// One rendered object and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    pub object_ref: ObjectRef,
    pub object: Value,
    pub source: Source,
}

/// Where a rendered object was written, so every message can point the user at the line to fix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// Path relative to the repository root with `/` separators; for Kustomize output, a label
    /// such as `<kustomize build apps/prod>`.
    pub file: String,
    /// 0-based index of the YAML document in the file; empty documents count.
    pub document: usize,
    /// 1-based line where the document's content starts.
    pub line: usize,
    /// Index in `items` when the object came from a `List`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<usize>,
}

impl Source {
    pub fn new(file: &str, document: usize, line: usize) -> Self {
        Self {
            file: file.to_owned(),
            document,
            line,
            item: None,
        }
    }
}

/// `apps/web.yaml:12`, or `list.yaml:3 (item 2)` for an item of a List.
impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if let Some(item) = self.item {
            write!(f, " (item {item})")?;
        }
        Ok(())
    }
}

/// Why a render failed. Every variant names the file (and the line where one applies) and says
/// what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{file}:{line}:{column}: invalid YAML: {message}")]
    InvalidYaml {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}:{line}:{column}: not UTF-8 text; save the file as UTF-8")]
    NotUtf8 {
        file: String,
        line: usize,
        column: usize,
    },
    #[error("{at}: a manifest must be a mapping, found {found}")]
    NotAnObject { at: Source, found: &'static str },
    #[error(
        "{at}: not a Kubernetes object, missing {missing} \
         (every manifest needs apiVersion, kind and metadata.name)"
    )]
    NotAKubernetesObject { at: Source, missing: String },
    #[error("{object} is defined twice, at {first} and at {second}; keep one of them")]
    DuplicateObject {
        object: Box<ObjectRef>,
        first: Box<Source>,
        second: Box<Source>,
    },
    #[error("{link}: symlink points outside the repository (to {}); refused", target.display())]
    SymlinkEscapes { link: String, target: PathBuf },
    #[error(
        "{file}: {field} names {reference:?}, which is outside the repository; a Kustomization \
         may read only the repository it is in"
    )]
    KustomizationEscapes {
        file: String,
        field: String,
        reference: String,
    },
    #[error("{link}: broken symlink, its target does not exist")]
    BrokenSymlink { link: String },
    #[error(
        "{file}: {size} bytes is over the {limit}-byte limit for a manifest file; \
         split the file or raise the limit"
    )]
    FileTooLarge { file: String, size: u64, limit: u64 },
    #[error("path {sub_path:?} does not exist in the repository")]
    SubPathNotFound { sub_path: String },
    #[error("path {sub_path:?} leads outside the repository; give a path inside it, without `..`")]
    SubPathEscapes { sub_path: String },
    #[error("path {sub_path:?} is not a directory; give the directory holding the manifests")]
    SubPathNotDirectory { sub_path: String },
    #[error("{path}: {error}")]
    Io {
        path: String,
        #[source]
        error: std::io::Error,
    },
    #[error("kustomize not found on PATH: install kustomize or kubectl")]
    KustomizeNotFound,
    #[error("`{command}` failed ({status}): {stderr}")]
    KustomizeFailed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("`{command}` did not finish within {}s and was killed", timeout.as_secs_f64())]
    KustomizeTimedOut { command: String, timeout: Duration },
    #[error("cannot run `{command}`: {error}")]
    KustomizeSpawn {
        command: String,
        #[source]
        error: std::io::Error,
    },
    #[error("helm not found on PATH: install helm to render charts")]
    HelmNotFound,
    #[error("values file {file} {reason}")]
    HelmValuesFile { file: String, reason: String },
    #[error("`{command}` failed: {stderr}")]
    HelmFailed { command: String, stderr: String },
    #[error("spec.helm: {0}")]
    ChartSpec(String),
    #[error("chart Secret {name}: {reason}")]
    ChartSecret { name: String, reason: String },
    #[error("cannot pull chart {chart}: {stderr}")]
    ChartPull { chart: String, stderr: String },
    #[error("values from {from}: {reason}")]
    ValuesFrom { from: String, reason: String },
    #[error("`{command}` did not finish within {}s and was killed", timeout.as_secs_f64())]
    HelmTimedOut { command: String, timeout: Duration },
    #[error("cannot run `{command}`: {error}")]
    HelmSpawn {
        command: String,
        #[source]
        error: std::io::Error,
    },
}

/// Every error of a failed render, in the order the files were read (never empty).
#[derive(Debug)]
pub struct RenderErrors(Vec<RenderError>);

impl RenderErrors {
    /// `Ok` when there is nothing to report.
    pub fn check(errors: Vec<RenderError>) -> Result<(), Self> {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Self(errors))
        }
    }

    pub fn errors(&self) -> &[RenderError] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<RenderError> {
        self.0
    }
}

impl From<RenderError> for RenderErrors {
    fn from(error: RenderError) -> Self {
        Self(vec![error])
    }
}

/// One error on one line; several as a count followed by one error per line.
impl fmt::Display for RenderErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [only] => write!(f, "render failed: {only}"),
            all => {
                write!(f, "render failed with {} errors:", all.len())?;
                all.iter().try_for_each(|error| write!(f, "\n  {error}"))
            }
        }
    }
}

impl std::error::Error for RenderErrors {}

/// Renders `sub_path` of the checkout at `root` into objects. `sub_path` is relative to `root`
/// (empty or `.` for the root itself) and may not leave it.
pub async fn render(
    root: &Path,
    sub_path: &Path,
    options: &RenderOptions,
) -> Result<Vec<Manifest>, RenderErrors> {
    let target = RenderTarget::resolve(root, sub_path)?;
    let mode = match options.mode {
        RenderMode::Auto if target.is_chart() || options.helm.chart.is_some() => RenderMode::Helm,
        RenderMode::Auto if target.kustomization_file().is_some() => RenderMode::Kustomize,
        mode => mode,
    };
    match mode {
        RenderMode::Kustomize => return render_kustomize(&target, options).await,
        RenderMode::Helm => {
            let path = options.search_path.as_deref();
            return render_helm(&target, &options.helm, path).await;
        }
        RenderMode::Auto | RenderMode::Plain => {}
    }
    // Reading a tree is blocking file I/O: keep it off the async workers.
    let max_file_size = options.max_file_size;
    let label = target.label.clone();
    match tokio::task::spawn_blocking(move || render_plain(&target, max_file_size)).await {
        Ok(rendered) => rendered,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => Err(RenderError::Io {
            path: label,
            error: std::io::Error::other(error),
        }
        .into()),
    }
}

/// Two manifests with the same identity: the render cannot say which one the user meant, so both
/// are named and the render fails.
pub fn check_duplicates(manifests: &[Manifest]) -> Vec<RenderError> {
    let mut first_seen: HashMap<&ObjectRef, &Source> = HashMap::new();
    let mut errors = Vec::new();
    for manifest in manifests {
        if let Some(first) = first_seen.insert(&manifest.object_ref, &manifest.source) {
            // Keep pointing at the first definition for any third copy.
            first_seen.insert(&manifest.object_ref, first);
            errors.push(RenderError::DuplicateObject {
                object: Box::new(manifest.object_ref.clone()),
                first: Box::new(first.clone()),
                second: Box::new(manifest.source.clone()),
            });
        }
    }
    errors
}
