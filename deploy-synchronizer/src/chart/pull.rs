//! A chart pulled from an OCI registry or an HTTP chart repository, with `helm pull`: Helm
//! resolves the version or range as it would for a person (tags for OCI, `index.yaml` for a
//! repository), speaks both protocols, and writes the archive `helm template` then renders.
//!
//! Credentials never go on a command line (any process of the pod could read it): for OCI they
//! are the registry login file, for a repository an entry of the repositories file named
//! [`REPOSITORY`], which `helm repo update` and `helm pull sluice/<chart>` read (both built by
//! [`crate::render::helm_home`]). Both live in the sync's scratch home, which is removed after
//! the render. A CA from the Secret goes to a file there too.
//!
//! The builders are pure and tested; [`pull`] runs them.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sluice_shared::digest::sha256_hex;
use sluice_shared::registry_auth::{Credentials, all_credentials_from_dockerconfigjson};

use crate::render::helm_home::{Login, repositories_file};
use crate::render::{HelmRun, REPOSITORY_CONFIG, RenderError, prepare_home, run_helm};

/// The name the chart repository gets in the scratch repositories file.
pub const REPOSITORY: &str = "sluice";

/// Where `spec.helm` says the chart is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChartRepository {
    /// `oci://host/path/<chart>`, and the registry's host (with port).
    Oci { reference: String, host: String },
    /// An HTTP(S) chart repository and the chart's name in it.
    Http {
        url: String,
        host: String,
        chart: String,
    },
}

impl ChartRepository {
    /// Reads `repoURL` and `chart`.
    pub fn parse(repo_url: &str, chart: &str) -> Result<Self, RenderError> {
        let spec = |reason: &str| RenderError::ChartSpec(reason.to_owned());
        let chart = chart.trim();
        if chart.is_empty() || chart.contains('/') || chart.contains(':') {
            return Err(spec(
                "chart must be the chart's name in repoURL, with no `/` or `:`",
            ));
        }
        let repo_url = repo_url.trim().trim_end_matches('/');
        let host_of = |rest: &str| rest.split('/').next().unwrap_or_default().to_owned();
        if let Some(rest) = repo_url.strip_prefix("oci://") {
            if rest.is_empty() {
                return Err(spec("repoURL oci:// needs a registry host"));
            }
            return Ok(Self::Oci {
                reference: format!("{repo_url}/{chart}"),
                host: host_of(rest),
            });
        }
        match repo_url
            .strip_prefix("https://")
            .or_else(|| repo_url.strip_prefix("http://"))
        {
            Some(rest) if !rest.is_empty() => Ok(Self::Http {
                url: repo_url.to_owned(),
                host: host_of(rest),
                chart: chart.to_owned(),
            }),
            _ => Err(spec(
                "repoURL must be oci://host/path (an OCI registry) or http(s)://… (a chart repository)",
            )),
        }
    }

    /// `oci://host/charts/shop`, or `https://charts.example.com shop`, for messages and status.
    pub fn describe(&self) -> String {
        match self {
            Self::Oci { reference, .. } => reference.clone(),
            Self::Http { url, chart, .. } => format!("{chart} from {url}"),
        }
    }

    /// The registry's or repository's host (with port).
    pub fn host(&self) -> &str {
        match self {
            Self::Oci { host, .. } | Self::Http { host, .. } => host,
        }
    }
}

/// What the chart Secret grants: logins by host (for `repoURL` and the chart's dependencies) and
/// a CA to trust.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChartAccess {
    pub logins: Vec<Login>,
    pub ca_pem: Option<Vec<u8>>,
}

impl ChartAccess {
    /// From the Secret's data: `username` and `password` (for the host of `repository` only: a
    /// dependency naming another host must not receive them), or `.dockerconfigjson` (each
    /// registry it names); `ca.crt`. The error says what is wrong, never a value.
    pub fn from_secret(
        data: &BTreeMap<String, Vec<u8>>,
        repository: Option<&ChartRepository>,
    ) -> Result<Self, String> {
        let text = |key: &str| {
            data.get(key)
                .map(|v| String::from_utf8(v.clone()).map_err(|_| format!("`{key}` is not UTF-8")))
                .transpose()
        };
        let logins = match (text("username")?, text("password")?) {
            (Some(username), Some(password)) if !username.is_empty() => {
                let Some(repository) = repository else {
                    return Err("`username` and `password` go to the host of repoURL only, and none is set; name the registries of the chart's dependencies in `.dockerconfigjson`".into());
                };
                vec![(
                    repository.host().to_owned(),
                    Credentials::Basic { username, password },
                )]
            }
            (Some(_), _) | (_, Some(_)) => {
                return Err("needs both `username` and `password`".into());
            }
            (None, None) => match data.get(".dockerconfigjson") {
                Some(json) => all_credentials_from_dockerconfigjson(json)?,
                None => Vec::new(),
            },
        };
        let ca_pem = data.get("ca.crt").cloned();
        if logins.is_empty() && ca_pem.is_none() {
            return Err(
                "has none of `username`+`password`, `.dockerconfigjson` or `ca.crt`".into(),
            );
        }
        Ok(Self { logins, ca_pem })
    }
}

/// The `helm` runs that pull the chart into `destination`, in order.
pub fn pull_commands(
    repository: &ChartRepository,
    version: Option<&str>,
    plain_http: bool,
    ca_file: Option<&Path>,
    destination: &Path,
) -> Vec<Vec<OsString>> {
    let mut pull: Vec<OsString> = vec!["pull".into()];
    let mut commands = Vec::new();
    match repository {
        ChartRepository::Oci { reference, .. } => {
            pull.push(reference.into());
            if plain_http {
                pull.push("--plain-http".into());
            }
            if let Some(file) = ca_file {
                pull.push("--ca-file".into());
                pull.push(file.as_os_str().to_owned());
            }
        }
        ChartRepository::Http { chart, .. } => {
            commands.push(vec!["repo".into(), "update".into(), REPOSITORY.into()]);
            pull.push(format!("{REPOSITORY}/{chart}").into());
        }
    }
    if let Some(version) = version.map(str::trim).filter(|v| !v.is_empty()) {
        pull.push("--version".into());
        pull.push(version.into());
    }
    pull.push("--destination".into());
    pull.push(destination.as_os_str().to_owned());
    commands.push(pull);
    commands
}

/// The version of a pulled archive from its file name (`shop-1.4.3.tgz` → `1.4.3`).
pub fn pulled_version(file_name: &str, chart: &str) -> Option<String> {
    file_name
        .strip_prefix(chart)?
        .strip_prefix('-')?
        .strip_suffix(".tgz")
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// A chart archive pulled into the scratch home.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PulledChart {
    pub archive: PathBuf,
    /// `oci://host/charts/shop`, or `shop from https://…`.
    pub chart: String,
    pub version: String,
    /// `sha256:` of the archive.
    pub digest: String,
}

/// Pulls the chart `repository` names, at `version` (or the newest), with `access`, using
/// `helm` at `program` with `home` as its scratch home.
pub async fn pull(
    program: &Path,
    home: &Path,
    repository: &ChartRepository,
    version: Option<&str>,
    plain_http: bool,
    access: &ChartAccess,
    timeout: Duration,
) -> Result<PulledChart, RenderError> {
    let io = |path: &str| {
        let path = path.to_owned();
        move |error| RenderError::Io { path, error }
    };
    let ca_file = prepare_home(home, &access.logins, access.ca_pem.as_deref())?;
    if let ChartRepository::Http { url, .. } = repository {
        let ca = ca_file.as_ref().map(|f| f.to_string_lossy().into_owned());
        let repositories = [(REPOSITORY.to_owned(), url.clone())];
        let file = repositories_file(&repositories, &access.logins, ca.as_deref());
        std::fs::write(home.join(REPOSITORY_CONFIG), file)
            .map_err(io("helm's repositories file"))?;
    }
    let destination = home.join("pulled");
    std::fs::create_dir_all(&destination).map_err(io("helm's pull directory"))?;
    let described = repository.describe();
    for args in pull_commands(
        repository,
        version,
        plain_http,
        ca_file.as_deref(),
        &destination,
    ) {
        run_helm(program, &args, home, home, timeout)
            .await
            .map_err(|failure| RenderError::ChartPull {
                chart: described.clone(),
                stderr: match failure {
                    HelmRun::Spawn(error) => format!("cannot run helm: {error}"),
                    HelmRun::TimedOut => {
                        format!("no answer within {}s; helm was killed", timeout.as_secs())
                    }
                    HelmRun::Failed(stderr) => stderr,
                },
            })?;
    }
    pulled(&destination, repository, described)
}

/// The one archive `helm pull` wrote, its version and digest.
fn pulled(
    destination: &Path,
    repository: &ChartRepository,
    chart: String,
) -> Result<PulledChart, RenderError> {
    let name = match repository {
        ChartRepository::Oci { reference, .. } => reference.rsplit('/').next().unwrap_or_default(),
        ChartRepository::Http { chart, .. } => chart.as_str(),
    };
    let missing = || RenderError::ChartPull {
        chart: chart.clone(),
        stderr: "helm pull wrote no chart archive".into(),
    };
    let entry = std::fs::read_dir(destination)
        .map_err(|error| RenderError::Io {
            path: "helm's pull directory".into(),
            error,
        })?
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().ends_with(".tgz"))
        .ok_or_else(missing)?;
    let file_name = entry.file_name().to_string_lossy().into_owned();
    let version = pulled_version(&file_name, name).ok_or_else(missing)?;
    let bytes = std::fs::read(entry.path()).map_err(|error| RenderError::Io {
        path: file_name.clone(),
        error,
    })?;
    Ok(PulledChart {
        archive: entry.path(),
        chart,
        version,
        digest: format!("sha256:{}", sha256_hex([bytes.as_slice()])),
    })
}

#[cfg(test)]
#[path = "pull_tests.rs"]
mod tests;
