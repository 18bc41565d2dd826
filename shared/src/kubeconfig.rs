//! Reaching the cluster the way kubectl does, with kubectl's flags.
//!
//! The configuration comes from, in order:
//! 1. `--kubeconfig`, or else the `KUBECONFIG` variable (a `:`-separated list
//!    of files, merged);
//! 2. `~/.kube/config`, if it exists;
//! 3. the pod's service account, when running inside a cluster and no
//!    context, cluster or user was asked for.
//!
//! `--context`, `--cluster` and `--user` select from the kubeconfig, and
//! `--namespace` overrides the default namespace of whichever source is used.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};

use clap::Args;
use kube::config::{
    InClusterError, KubeConfigOptions, Kubeconfig, KubeconfigError as KubeconfigLoadError,
};
use kube::{Client, Config};

/// Cluster access flags, as kubectl spells them.
#[derive(Args, Clone, Debug, Default)]
#[command(next_help_heading = "Kubernetes connection")]
pub struct KubeconfigArgs {
    /// Path to the kubeconfig file; from the environment it may list several
    /// files separated by ':', merged like kubectl does
    #[arg(long, global = true, env = "KUBECONFIG", value_name = "PATH")]
    pub kubeconfig: Option<OsString>,

    /// Name of the kubeconfig context to use
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,

    /// Name of the kubeconfig cluster to use
    #[arg(long, global = true, value_name = "NAME")]
    pub cluster: Option<String>,

    /// Name of the kubeconfig user to use
    #[arg(long, global = true, value_name = "NAME")]
    pub user: Option<String>,

    /// Default namespace, overriding the context's or the service account's
    #[arg(short, long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
}

/// The cluster could not be reached with the given flags and environment.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read kubeconfig {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid kubeconfig {path}")]
    Invalid {
        path: PathBuf,
        #[source]
        source: KubeconfigLoadError,
    },
    #[error("cannot merge kubeconfig files")]
    Merge(#[source] KubeconfigLoadError),
    #[error("cannot use kubeconfig {source_description}")]
    Select {
        source_description: String,
        #[source]
        source: KubeconfigLoadError,
    },
    #[error("cannot use the in-cluster service account")]
    InCluster(#[source] InClusterError),
    #[error(
        "no Kubernetes configuration found: pass --kubeconfig, set KUBECONFIG, \
         create ~/.kube/config, or run inside a cluster"
    )]
    NotFound,
    #[error("cannot create a Kubernetes client")]
    Client(#[source] kube::Error),
    #[error("the Kubernetes API server did not answer")]
    ApiServer(#[source] kube::Error),
}

/// Where the client configuration comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Source {
    Files(Vec<PathBuf>),
    InCluster,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Files(paths) => {
                let paths: Vec<_> = paths.iter().map(|p| p.display().to_string()).collect();
                f.write_str(&paths.join(":"))
            }
            Source::InCluster => f.write_str("in-cluster service account"),
        }
    }
}

impl KubeconfigArgs {
    /// Builds a client like [`client`](Self::client) does and checks that the
    /// API server answers, logging its version.
    pub async fn connect(&self) -> Result<Client, ClientError> {
        let client = self.client().await?;
        let version = client
            .apiserver_version()
            .await
            .map_err(ClientError::ApiServer)?;
        tracing::info!(
            apiserver_version = %version.git_version,
            platform = %version.platform,
            namespace = client.default_namespace(),
            "connected to the Kubernetes API server"
        );
        Ok(client)
    }

    /// Builds a client from the flags and environment, like kubectl would.
    pub async fn client(&self) -> Result<Client, ClientError> {
        Client::try_from(self.config().await?).map_err(ClientError::Client)
    }

    /// Builds the client configuration from the flags and environment.
    pub async fn config(&self) -> Result<Config, ClientError> {
        let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
            && std::env::var_os("KUBERNETES_SERVICE_PORT").is_some();
        let home_config = std::env::home_dir()
            .map(|home| home.join(".kube").join("config"))
            .filter(|path| path.is_file());
        let source = choose_source(
            self.kubeconfig.as_deref(),
            home_config,
            in_cluster && !self.selects_from_kubeconfig(),
        )
        .ok_or(ClientError::NotFound)?;

        let mut config = match &source {
            Source::Files(paths) => {
                let kubeconfig = read_merged(paths)?;
                Config::from_custom_kubeconfig(kubeconfig, &self.options())
                    .await
                    .map_err(|error| ClientError::Select {
                        source_description: source.to_string(),
                        source: error,
                    })?
            }
            Source::InCluster => Config::incluster().map_err(ClientError::InCluster)?,
        };
        config.apply_debug_overrides();
        if let Some(namespace) = &self.namespace {
            config.default_namespace.clone_from(namespace);
        }
        tracing::debug!(
            %source,
            cluster = %config.cluster_url,
            namespace = %config.default_namespace,
            "loaded Kubernetes client configuration"
        );
        Ok(config)
    }

    fn selects_from_kubeconfig(&self) -> bool {
        self.context.is_some() || self.cluster.is_some() || self.user.is_some()
    }

    fn options(&self) -> KubeConfigOptions {
        KubeConfigOptions {
            context: self.context.clone(),
            cluster: self.cluster.clone(),
            user: self.user.clone(),
        }
    }
}

/// Picks the configuration source; `None` when there is none.
fn choose_source(
    kubeconfig: Option<&OsStr>,
    home_config: Option<PathBuf>,
    in_cluster: bool,
) -> Option<Source> {
    let listed: Vec<PathBuf> = kubeconfig
        .map(|value| {
            std::env::split_paths(value)
                .filter(|path| !path.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default();
    if !listed.is_empty() {
        Some(Source::Files(listed))
    } else if let Some(path) = home_config {
        Some(Source::Files(vec![path]))
    } else if in_cluster {
        Some(Source::InCluster)
    } else {
        None
    }
}

/// Reads kubeconfig files and merges them, the first file to set a value
/// winning.
fn read_merged(paths: &[PathBuf]) -> Result<Kubeconfig, ClientError> {
    paths
        .iter()
        .try_fold(Kubeconfig::default(), |merged, path| {
            merged.merge(read(path)?).map_err(ClientError::Merge)
        })
}

fn read(path: &Path) -> Result<Kubeconfig, ClientError> {
    Kubeconfig::read_from(path).map_err(|error| match error {
        KubeconfigLoadError::ReadConfig(source, _) => ClientError::Read {
            path: path.to_owned(),
            source,
        },
        other => ClientError::Invalid {
            path: path.to_owned(),
            source: other,
        },
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        kube: KubeconfigArgs,
    }

    const TWO_CONTEXTS: &str = "\
apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev
  cluster: {server: 'https://dev.example:6443'}
- name: prod
  cluster: {server: 'https://prod.example:6443'}
users:
- name: alice
  user: {token: secret}
contexts:
- name: dev
  context: {cluster: dev, user: alice, namespace: apps}
- name: prod
  context: {cluster: prod, user: alice}
";

    fn kubeconfig_file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    fn args(file: &tempfile::NamedTempFile, extra: &[&str]) -> KubeconfigArgs {
        let path = file.path().to_str().unwrap();
        let argv = ["test", "--kubeconfig", path]
            .into_iter()
            .chain(extra.iter().copied());
        Cli::try_parse_from(argv).unwrap().kube
    }

    #[test]
    fn explicit_files_win_over_everything() {
        let chosen = choose_source(Some(OsStr::new("/a:/b")), Some("/home".into()), true);
        assert_eq!(chosen, Some(Source::Files(vec!["/a".into(), "/b".into()])));
    }

    #[test]
    fn empty_kubeconfig_entries_are_ignored() {
        let chosen = choose_source(Some(OsStr::new(":")), None, true);
        assert_eq!(chosen, Some(Source::InCluster));
    }

    #[test]
    fn home_config_comes_before_in_cluster() {
        let chosen = choose_source(None, Some("/root/.kube/config".into()), true);
        assert_eq!(
            chosen,
            Some(Source::Files(vec!["/root/.kube/config".into()]))
        );
    }

    #[test]
    fn nothing_to_use() {
        assert_eq!(choose_source(None, None, false), None);
    }

    #[test]
    fn kubectl_flag_spellings() {
        let cli = Cli::try_parse_from([
            "test",
            "--context",
            "c",
            "--cluster",
            "k",
            "--user",
            "u",
            "-n",
            "ns",
        ])
        .unwrap();
        assert_eq!(cli.kube.context.as_deref(), Some("c"));
        assert_eq!(cli.kube.cluster.as_deref(), Some("k"));
        assert_eq!(cli.kube.user.as_deref(), Some("u"));
        assert_eq!(cli.kube.namespace.as_deref(), Some("ns"));
    }

    #[tokio::test]
    async fn current_context_is_the_default() {
        let file = kubeconfig_file(TWO_CONTEXTS);
        let config = args(&file, &[]).config().await.unwrap();
        assert_eq!(config.cluster_url, "https://dev.example:6443/");
        assert_eq!(config.default_namespace, "apps");
    }

    #[tokio::test]
    async fn context_and_namespace_flags_select() {
        let file = kubeconfig_file(TWO_CONTEXTS);
        let config = args(&file, &["--context", "prod", "-n", "web"])
            .config()
            .await
            .unwrap();
        assert_eq!(config.cluster_url, "https://prod.example:6443/");
        assert_eq!(config.default_namespace, "web");
    }

    #[tokio::test]
    async fn unknown_context_is_an_error() {
        let file = kubeconfig_file(TWO_CONTEXTS);
        let error = args(&file, &["--context", "staging"])
            .config()
            .await
            .unwrap_err();
        assert!(matches!(error, ClientError::Select { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn missing_file_names_the_path() {
        let cli = Cli::try_parse_from(["test", "--kubeconfig", "/nonexistent/kubeconfig"]).unwrap();
        let error = cli.kube.config().await.unwrap_err();
        assert!(matches!(error, ClientError::Read { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            "cannot read kubeconfig /nonexistent/kubeconfig"
        );
    }
}
