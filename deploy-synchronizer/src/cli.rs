//! The `deploy-synchronizer` command line.

use clap::{Args, Parser, Subcommand};
use sluice_shared::kubeconfig::KubeconfigArgs;
use sluice_shared::serve::ServeArgs;
use sluice_shared::telemetry::{self, LogArgs, TelemetryError};

use crate::daemon;

pub const NAME: &str = env!("CARGO_PKG_NAME");
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Applies the Sluice config repository to the cluster.
#[derive(Parser, Debug)]
#[command(
    name = NAME,
    version,
    propagate_version = true,
    long_about = "\
Applies the Sluice config repository to the cluster.

deploy-synchronizer runs inside the cluster and keeps it in step with the \
config git repository: it reads the manifests at the repository's head and \
applies them with server-side apply under the field manager \"sluice\", so \
the cluster converges on what the repository declares.

It reaches the cluster like kubectl does: --kubeconfig or KUBECONFIG, else \
~/.kube/config, else the pod's service account."
)]
pub struct Cli {
    #[command(flatten)]
    log: LogArgs,

    #[command(flatten)]
    kube: KubeconfigArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the synchronizer daemon until SIGTERM or ctrl-c
    #[command(long_about = "\
Run the synchronizer daemon until SIGTERM or ctrl-c.

Connects to the cluster, checks the API server answers, reconciles every \
GitSync (or those of --watch-namespace): fetches its source, renders it, \
validates it with a server-side dry-run, applies it, prunes what left it and \
reports status, health and events. Serves Prometheus metrics on /metrics, \
liveness on /healthz, readiness on /readyz and git push webhooks on \
/webhook/PROVIDER. On SIGTERM or ctrl-c it stops \
taking new work, lets the syncs in flight finish and exits 0.")]
    Run(RunArgs),

    /// Show what applying the config repository would change in the cluster
    /// (not implemented yet)
    Diff,

    /// Print the CustomResourceDefinitions this daemon serves, as YAML
    #[command(long_about = "\
Print the CustomResourceDefinitions this daemon serves, as YAML.

The files in manifests/crds/ are this output; a unit test keeps them equal.")]
    Crd,

    /// Print the version and exit
    Version,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub serve: ServeArgs<8080>,

    /// Directory for git caches and per-revision checkouts
    #[arg(long, env = "SLUICE_CACHE_DIR", value_name = "DIR",
          default_value = deploy_synchronizer::controller::DEFAULT_CACHE_DIR)]
    pub cache_dir: std::path::PathBuf,

    /// Reconcile only the GitSyncs of this namespace (default: every namespace)
    #[arg(long, env = "SLUICE_WATCH_NAMESPACE", value_name = "NAMESPACE")]
    pub watch_namespace: Option<String>,

    /// Serve POST /webhook/PROVIDER for git pushes, verified with the secret in PATH; a push
    /// syncs the GitSyncs of that repository and ref at once (repeatable; providers: github,
    /// gitlab, gitea, generic)
    #[arg(
        long,
        env = "SLUICE_WEBHOOK_SECRET_FILES",
        value_name = "PROVIDER=PATH",
        value_delimiter = ','
    )]
    pub webhook_secret_file: Vec<String>,
}

/// A command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Telemetry(#[from] TelemetryError),
    #[error(transparent)]
    Daemon(#[from] daemon::Error),
    #[error("`{NAME} {0}` is not implemented yet")]
    NotImplemented(&'static str),
}

impl Cli {
    pub async fn execute(self) -> Result<(), Error> {
        telemetry::init(&self.log)?;
        match self.command {
            Command::Run(args) => Ok(daemon::run(&self.kube, &args).await?),
            Command::Diff => Err(Error::NotImplemented("diff")),
            Command::Crd => {
                print!("{}", deploy_synchronizer::resource::crd_yaml());
                Ok(())
            }
            Command::Version => {
                println!("{NAME} {VERSION}");
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
