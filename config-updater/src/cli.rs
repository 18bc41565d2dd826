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
on /healthz, readiness on /readyz and registry and forge pull-request webhooks \
on /webhook/PROVIDER. \
On SIGTERM or ctrl-c it stops accepting requests, finishes those in flight \
and exits 0.")]
    Run(RunArgs),

    /// Show what the next write-back would change: scan, choose, plan, print diffs
    #[command(long_about = "\
Show what the next write-back would change, without changing anything.

For every ImageUpdate of the namespace (-n NAMESPACE; default: every namespace) it scans \
the ImageRepositories its namespace's ImagePolicies name, chooses per policy \
(honouring status.blockedTags), clones the config repository into a temporary \
directory and plans the round: a unified diff per changed file, then the \
changes (file: image old → new) and the problems (file:line: message). \
Nothing is committed, pushed or written to any status.

Exit status: 0 nothing would change, 1 changes would be made, 2 an error. \
Only --once --dry-run is supported; `run` writes.")]
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

    #[command(flatten)]
    pub leader: sluice_shared::leader::LeaderArgs,

    /// Directory for the work clones of config repositories
    #[arg(long, env = "SLUICE_WORK_DIR", value_name = "DIR",
          default_value = config_updater::controller::DEFAULT_WORK_DIR)]
    pub work_dir: std::path::PathBuf,

    /// Reconcile only the image resources of this namespace (default: every namespace)
    #[arg(long, env = "SLUICE_WATCH_NAMESPACE", value_name = "NAMESPACE")]
    pub watch_namespace: Option<String>,

    /// Reconcile only the image resources with these labels (a Kubernetes label selector, such
    /// as `team=shop`): several updaters, each for its own part of a cluster
    #[arg(long, env = "SLUICE_WATCH_LABEL_SELECTOR", value_name = "SELECTOR")]
    pub watch_label_selector: Option<String>,

    /// Serve POST /webhook/PROVIDER, verified with the secret in PATH (repeatable; providers:
    /// distribution, dockerhub, harbor, quay, github, gitea, gitlab, generic)
    #[arg(
        long,
        env = "SLUICE_WEBHOOK_SECRET_FILES",
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
    #[error("{0}")]
    Usage(&'static str),
    #[error(transparent)]
    Client(#[from] sluice_shared::kubeconfig::ClientError),
    #[error(transparent)]
    DryRun(#[from] config_updater::dryrun::Error),
    #[error("cannot write {path}")]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// How a command ended when it did not fail: the process exit code.
pub enum Done {
    Success,
    /// `scan --once --dry-run`: 0 nothing would change, 1 changes would be made, 2 an error.
    Code(u8),
}

impl Cli {
    pub async fn execute(self) -> Result<Done, Error> {
        telemetry::init(&self.log)?;
        sluice_shared::failpoint::arm();
        match self.command {
            Command::Run(args) => {
                daemon::run(&self.kube, &args).await?;
                Ok(Done::Success)
            }
            Command::Scan(ScanArgs { once, dry_run }) => {
                if !once || !dry_run {
                    return Err(Error::Usage(
                        "use `run` to write; scan --once only supports --dry-run for now",
                    ));
                }
                let client = self.kube.connect().await?;
                // -n/--namespace (global) narrows it; without it, every namespace.
                let namespace = self.kube.namespace.as_deref();
                let report = config_updater::dryrun::run(client, namespace).await?;
                print!("{}", report.render());
                Ok(Done::Code(report.exit_code()))
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
                Ok(Done::Success)
            }
            Command::Version => {
                println!("{NAME} {VERSION}");
                Ok(Done::Success)
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
