//! The `config-updater` command line.

use clap::{Args, Parser, Subcommand};
use sluice_shared::kubeconfig::KubeconfigArgs;
use sluice_shared::serve::ServeArgs;
use sluice_shared::telemetry::{self, LogArgs, TelemetryError};

use crate::daemon;

pub const NAME: &str = env!("CARGO_PKG_NAME");
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Bumps image tags in the Sluice config repository when registries publish
/// new ones.
#[derive(Parser, Debug)]
#[command(
    name = NAME,
    version,
    propagate_version = true,
    long_about = "\
Bumps image tags in the Sluice config repository when registries publish new \
ones.

config-updater runs inside the cluster. It watches the container registries \
of the images named in the config git repository and, when a newer tag is \
published, commits the new tag to the repository; deploy-synchronizer then \
applies the change to the cluster.

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
    /// Run the updater daemon until SIGTERM or ctrl-c
    #[command(long_about = "\
Run the updater daemon until SIGTERM or ctrl-c.

Connects to the cluster, runs the ImageRepository, ImagePolicy and \
ImageUpdate controllers, and serves Prometheus metrics on /metrics, liveness \
on /healthz, readiness on /readyz and registry webhooks on /webhook/PROVIDER. \
On SIGTERM or ctrl-c it stops accepting requests, finishes those in flight \
and exits 0.")]
    Run(RunArgs),

    /// Check registries for newer image tags (not implemented yet)
    Scan(ScanArgs),

    /// Print the CustomResourceDefinitions this daemon serves, as YAML
    #[command(long_about = "\
Print the CustomResourceDefinitions this daemon serves (ImageRepository, \
ImagePolicy, ImageUpdate), as YAML, or write one file each into a directory.

The files in manifests/crds/ are this output; a unit test keeps them equal.")]
    Crd(CrdArgs),

    /// Print the version and exit
    Version,
}

#[derive(Args, Debug)]
struct CrdArgs {
    /// Write one file per CRD into this directory instead of printing
    #[arg(long, value_name = "DIR")]
    write: Option<std::path::PathBuf>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub serve: ServeArgs<8081>,

    /// Directory for the work clones of config repositories
    #[arg(long, env = "SLUICE_WORK_DIR", value_name = "DIR",
          default_value = config_updater::controller::DEFAULT_WORK_DIR)]
    pub work_dir: std::path::PathBuf,

    /// Reconcile only the image resources of this namespace (default: every namespace)
    #[arg(long, env = "SLUICE_WATCH_NAMESPACE", value_name = "NAMESPACE")]
    pub watch_namespace: Option<String>,

    /// Serve POST /webhook/PROVIDER, verified with the secret in PATH (repeatable; providers:
    /// distribution, dockerhub, harbor, quay, github, generic)
    #[arg(
        long,
        env = "SLUICE_WEBHOOK_SECRET_FILE",
        value_name = "PROVIDER=PATH",
        value_delimiter = ','
    )]
    pub webhook_secret_file: Vec<String>,
}

#[derive(Args, Debug)]
struct ScanArgs {
    /// Scan once and exit instead of scanning on a schedule
    #[arg(long)]
    once: bool,

    /// Report the tag bumps that would be committed, without committing
    #[arg(long)]
    dry_run: bool,
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
    #[error("cannot write {path}")]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Cli {
    pub async fn execute(self) -> Result<(), Error> {
        telemetry::init(&self.log)?;
        match self.command {
            Command::Run(args) => Ok(daemon::run(&self.kube, &args).await?),
            Command::Scan(ScanArgs { once, dry_run }) => {
                tracing::debug!(once, dry_run, "scan requested");
                Err(Error::NotImplemented("scan"))
            }
            Command::Crd(CrdArgs { write }) => {
                for (file, yaml) in config_updater::resource::crds_yaml() {
                    match &write {
                        Some(dir) => {
                            let path = dir.join(file);
                            std::fs::write(&path, yaml)
                                .map_err(|source| Error::Write { path, source })?;
                        }
                        None => print!("---\n{yaml}"),
                    }
                }
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
