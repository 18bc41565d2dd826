//! Helm mode: `helm template` of a chart directory in the repository, as Argo CD renders charts
//! (the Helm SDK is Go; a re-implementation of its template engine in Rust would be worse). The
//! output is one YAML stream and goes through the same [`parse_documents`] as a plain directory,
//! so every mode obeys one set of rules; each document is attributed to the template that made
//! it (Helm's `# Source:` comment), so a message names `web/templates/deployment.yaml`.
//!
//! The chart is the target directory, or an archive pulled from a registry before (see
//! [`crate::chart`]). What is passed: the release name and namespace, the values files (relative
//! to the target directory, in order), the values from ConfigMaps and Secrets, then the inline
//! values (a file of their own, last, so they win as Helm's `-f` order says), `--include-crds`
//! and `--skip-tests` as asked, and the cluster's version and API versions (`--kube-version`,
//! `--api-versions`) so `Capabilities` checks render as they would in the cluster. Helm's own caches and config go to a scratch directory: it reads nothing of the
//! daemon's home. Dependencies the chart does not vendor in `charts/` are fetched first with
//! `helm dependency build`, with the logins of the chart Secret (see [`super::helm_home`]).

use std::ffi::{OsStr, OsString};
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;

use super::helm_home::{
    Login, dependency_repositories, missing_dependencies, registry_logins, repositories_file,
};
use super::kustomize::{find_executable, repo_relative, tail};
use super::{Manifest, RenderError, RenderErrors, RenderTarget, check_duplicates};

/// At most this much of helm's stderr goes into an error; its last lines say what failed.
const STDERR_LIMIT: usize = 4096;
/// How long `helm template` may run before it is killed.
pub const DEFAULT_HELM_TIMEOUT: Duration = Duration::from_secs(60);

/// What `helm template` is told, from `spec.helm` and the cluster.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HelmOptions {
    pub release: String,
    pub namespace: String,
    /// A chart archive pulled from a registry, rendered instead of the target directory.
    pub chart: Option<PathBuf>,
    /// Relative to the target directory, in order.
    pub values_files: Vec<String>,
    /// Values documents from ConfigMaps and Secrets, as files, merged after `values_files`.
    pub values_from: Vec<PathBuf>,
    /// Registry and repository logins, by host, for the chart's dependencies.
    pub logins: Vec<Login>,
    /// A CA to trust for them (PEM).
    pub ca_pem: Option<Vec<u8>>,
    /// Reach OCI registries over plain HTTP.
    pub plain_http: bool,
    /// Inline values, applied last.
    pub values: Option<Value>,
    pub include_crds: bool,
    pub skip_tests: bool,
    /// The cluster's version (`v1.36.3`), for `Capabilities.KubeVersion`.
    pub kube_version: Option<String>,
    /// Every `group/version` and `group/version/Kind` the cluster serves.
    pub api_versions: Vec<String>,
    pub timeout: Duration,
}

/// The arguments of `helm template` after the program name, for the target directory `dir`
/// (the chart, unless a pulled one is given) with the inline values in `values_file`.
pub fn template_args(
    options: &HelmOptions,
    dir: &Path,
    values_file: Option<&Path>,
) -> Result<Vec<OsString>, RenderError> {
    let mut args: Vec<OsString> = vec!["template".into(), options.release.clone().into()];
    args.push(
        options
            .chart
            .as_deref()
            .unwrap_or(dir)
            .as_os_str()
            .to_owned(),
    );
    args.push("--namespace".into());
    args.push(options.namespace.clone().into());
    if options.include_crds {
        args.push("--include-crds".into());
    }
    if options.skip_tests {
        args.push("--skip-tests".into());
    }
    for file in &options.values_files {
        let relative = inside(file)?;
        args.push("--values".into());
        args.push(dir.join(relative).into_os_string());
    }
    for file in &options.values_from {
        args.push("--values".into());
        args.push(file.as_os_str().to_owned());
    }
    if let Some(file) = values_file {
        args.push("--values".into());
        args.push(file.as_os_str().to_owned());
    }
    if let Some(version) = &options.kube_version {
        args.push("--kube-version".into());
        args.push(version.into());
    }
    for api in &options.api_versions {
        args.push("--api-versions".into());
        args.push(api.into());
    }
    Ok(args)
}

/// A values file path that stays inside the target directory (no absolute path, no `..`).
fn inside(file: &str) -> Result<&Path, RenderError> {
    let path = Path::new(file);
    let escapes = path
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
    if file.is_empty() || escapes {
        return Err(RenderError::HelmValuesFile {
            file: file.to_owned(),
            reason: "must be a path inside the source's path, without `..`".into(),
        });
    }
    Ok(path)
}

/// Splits helm's output into one stream per `# Source:` template, each labelled with that
/// template (`web/templates/deployment.yaml`), in order. Output without such comments is one
/// stream labelled `fallback`.
pub fn by_template(output: &str, fallback: &str) -> Vec<(String, String)> {
    let mut parts: Vec<(String, String)> = Vec::new();
    for document in output.split("\n---") {
        let source = document
            .lines()
            .find_map(|l| l.trim().strip_prefix("# Source: "))
            .map(str::to_owned)
            .unwrap_or_else(|| fallback.to_owned());
        match parts.last_mut() {
            Some((label, text)) if *label == source => {
                text.push_str("\n---");
                text.push_str(document);
            }
            _ => parts.push((source, document.to_owned())),
        }
    }
    parts
}

/// `helm` on `search_path` (`None`: the process's `PATH`).
pub(crate) fn helm_program(search_path: Option<&OsStr>) -> Result<PathBuf, RenderError> {
    let path = search_path
        .map(OsStr::to_owned)
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    find_executable("helm", &path).ok_or(RenderError::HelmNotFound)
}

/// Renders the chart at the target (or the pulled one) with `helm` from `search_path`.
pub async fn render_helm(
    target: &RenderTarget,
    options: &HelmOptions,
    search_path: Option<&OsStr>,
) -> Result<Vec<Manifest>, RenderErrors> {
    let program = helm_program(search_path)?;
    for file in &options.values_files {
        let relative = inside(file)?;
        if !target.dir.join(relative).is_file() {
            return Err(RenderError::HelmValuesFile {
                file: format!("{}/{file}", target.label),
                reason: "does not exist".into(),
            }
            .into());
        }
    }
    let scratch = tempfile::tempdir().map_err(|error| RenderError::Io {
        path: "a scratch directory for helm".into(),
        error,
    })?;
    let values_file = write_values(scratch.path(), options.values.as_ref())?;
    let ca_file = prepare_home(scratch.path(), &options.logins, options.ca_pem.as_deref())?;
    if options.chart.is_none() {
        build_dependencies(
            &program,
            target,
            scratch.path(),
            options,
            ca_file.as_deref(),
        )
        .await?;
    }
    let args = template_args(options, &target.dir, values_file.as_deref())?;
    let output = run(&program, &args, target, scratch.path(), options.timeout).await?;
    let text = String::from_utf8(output).map_err(|_| RenderError::NotUtf8 {
        file: format!("<helm template {}>", target.label),
        line: 1,
        column: 1,
    })?;
    let fallback = format!("<helm template {}>", target.label);
    let mut manifests = Vec::new();
    let mut errors = Vec::new();
    for (label, stream) in by_template(&text, &fallback) {
        match super::parse_documents(&label, stream.as_bytes()) {
            Ok(parsed) => manifests.extend(parsed),
            Err(e) => errors.extend(e.into_vec()),
        }
    }
    RenderErrors::check(errors)?;
    RenderErrors::check(check_duplicates(&manifests))?;
    Ok(manifests)
}

/// Writes `logins` and the CA into helm's scratch `home` (for a pull and for a render alike);
/// returns the CA file, if any.
pub(crate) fn prepare_home(
    home: &Path,
    logins: &[Login],
    ca_pem: Option<&[u8]>,
) -> Result<Option<PathBuf>, RenderError> {
    let io = |path: &str| {
        let path = path.to_owned();
        move |error| RenderError::Io { path, error }
    };
    std::fs::create_dir_all(home.join("config")).map_err(io("helm's scratch config"))?;
    if let Some(logins) = registry_logins(logins) {
        std::fs::write(home.join(REGISTRY_CONFIG), logins).map_err(io("helm's registry logins"))?;
    }
    match ca_pem {
        Some(pem) => {
            let file = home.join("config/ca.crt");
            std::fs::write(&file, pem).map_err(io("the chart Secret's CA"))?;
            Ok(Some(file))
        }
        None => Ok(None),
    }
}

/// Fetches the dependencies the chart at the target names and does not vendor in `charts/`
/// (`helm dependency build`, from `Chart.lock` when there is one), into the checkout.
async fn build_dependencies(
    program: &Path,
    target: &RenderTarget,
    home: &Path,
    options: &HelmOptions,
    ca_file: Option<&Path>,
) -> Result<(), RenderError> {
    let chart_yaml = target.dir.join("Chart.yaml");
    let Ok(text) = std::fs::read_to_string(&chart_yaml) else {
        return Ok(()); // helm template says what is wrong with it
    };
    let vendored: Vec<String> = std::fs::read_dir(target.dir.join("charts"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let Ok(missing) = missing_dependencies(&text, &vendored) else {
        return Ok(());
    };
    if missing.is_empty() {
        return Ok(());
    }
    let repositories = dependency_repositories(&missing);
    let ca = ca_file.map(|f| f.to_string_lossy().into_owned());
    std::fs::write(
        home.join(REPOSITORY_CONFIG),
        repositories_file(&repositories, &options.logins, ca.as_deref()),
    )
    .map_err(|error| RenderError::Io {
        path: "helm's repositories file".into(),
        error,
    })?;
    let mut args: Vec<OsString> = vec!["dependency".into(), "build".into()];
    args.push(target.dir.as_os_str().to_owned());
    if let Some(file) = ca_file {
        args.push("--ca-file".into());
        args.push(file.as_os_str().to_owned());
    }
    if options.plain_http {
        args.push("--plain-http".into());
    }
    let command = format!("helm dependency build {}", target.label);
    run_helm(program, &args, &target.root, home, options.timeout)
        .await
        .map(|_| ())
        .map_err(|failure| match failure {
            HelmRun::Spawn(error) => RenderError::HelmSpawn { command, error },
            HelmRun::TimedOut => RenderError::HelmTimedOut {
                command,
                timeout: options.timeout,
            },
            HelmRun::Failed(stderr) => RenderError::HelmFailed { command, stderr },
        })
}

/// The inline values as a file of their own (JSON is YAML), or none.
fn write_values(dir: &Path, values: Option<&Value>) -> Result<Option<PathBuf>, RenderError> {
    let Some(values) = values.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let file = dir.join("inline-values.yaml");
    std::fs::write(&file, values.to_string()).map_err(|error| RenderError::Io {
        path: "the inline values".into(),
        error,
    })?;
    Ok(Some(file))
}

/// Why a run of `helm` gave no output.
pub(crate) enum HelmRun {
    Spawn(std::io::Error),
    TimedOut,
    /// It exited unsuccessfully: the end of its stderr, paths relative to `cwd`.
    Failed(String),
}

/// Runs `helm` with `args` in `cwd`, with nothing of the daemon's environment: its home, caches,
/// config, registry logins and repositories all below `home` (a scratch directory). Killed after
/// `timeout`.
pub(crate) async fn run_helm(
    program: &Path,
    args: &[OsString],
    cwd: &Path,
    home: &Path,
    timeout: Duration,
) -> Result<Vec<u8>, HelmRun> {
    let child = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("HOME", home)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env("HELM_REGISTRY_CONFIG", home.join(REGISTRY_CONFIG))
        .env("HELM_REPOSITORY_CONFIG", home.join(REPOSITORY_CONFIG))
        .env("HELM_REPOSITORY_CACHE", home.join("cache/repository"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(HelmRun::Spawn)?;
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_elapsed) => return Err(HelmRun::TimedOut),
        Ok(Err(error)) => return Err(HelmRun::Spawn(error)),
        Ok(Ok(output)) => output,
    };
    if !output.status.success() {
        let stderr = repo_relative(String::from_utf8_lossy(&output.stderr).trim(), cwd);
        return Err(HelmRun::Failed(tail(&stderr, STDERR_LIMIT)));
    }
    Ok(output.stdout)
}

/// Where, below a scratch home, helm finds its registry logins (docker's `config.json` form).
pub(crate) const REGISTRY_CONFIG: &str = "config/registry.json";
/// Where, below a scratch home, helm finds its chart repositories.
pub(crate) const REPOSITORY_CONFIG: &str = "config/repositories.yaml";

async fn run(
    program: &Path,
    args: &[OsString],
    target: &RenderTarget,
    scratch: &Path,
    timeout: Duration,
) -> Result<Vec<u8>, RenderError> {
    let command = format!("helm template {}", target.label);
    run_helm(program, args, &target.root, scratch, timeout)
        .await
        .map_err(|failure| match failure {
            HelmRun::Spawn(error) => RenderError::HelmSpawn { command, error },
            HelmRun::TimedOut => RenderError::HelmTimedOut { command, timeout },
            HelmRun::Failed(stderr) => RenderError::HelmFailed { command, stderr },
        })
}

#[cfg(test)]
#[path = "helm_tests.rs"]
mod tests;
