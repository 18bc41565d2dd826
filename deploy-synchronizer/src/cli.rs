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

    /// Show what a sync would change in the cluster: a unified diff per object
    #[command(long_about = "\
Show what a sync would change in the cluster, without writing anything.

With --path DIR, renders the local directory (plain YAML or kustomize, as a sync \
would); with GITSYNC, renders that GitSync's source at its ref (namespace from -n) \
and also shows the objects of its inventory that left the render as deletions, \
unless its prune is off. Every object is server-side dry-run as field manager \
\"sluice\" and compared with the live object, so server defaults do not show up. \
Prints a unified diff per changed object (created objects in full) on stdout, \
Secret values masked; logs go to stderr.

Exits 0 when nothing would change, 1 when something would, 2 on an error (render \
failure, unknown kind, dry-run refusal), as kubectl diff does.")]
    Diff(DiffArgs),

    /// Propose a rollback by hand, as a pull request on the GitSync's forge
    #[command(long_about = "\
Propose a rollback by hand, as a pull request on the GitSync's forge.

Like `argocd app rollback`, but through Git: the revert of the GitSync's applied \
revision (namespace from -n) is committed on a branch of its own \
(spec.rollback.branchPrefix, default sluice/rollback/) and proposed as a pull \
request into the branch it follows, labelled `rollback`, its body how the \
cluster is doing now. With --to REVISION, the commit puts back REVISION's tree, \
undoing every later commit. Nothing is written to the cluster: merging the pull \
request is the rollback. Needs spec.forge on the GitSync.

Prints the pull request's URL on stdout. Exits 0 when it is proposed (or was \
already), 2 on an error.")]
    Rollback(RollbackArgs),

    /// Print the CustomResourceDefinitions this daemon serves, as YAML
    #[command(long_about = "\
Print the CustomResourceDefinitions this daemon serves, as YAML.

The files in manifests/crds/ are this output; a unit test keeps them equal. With --alert, the
Alert CRD, which both daemons read (notifications).")]
    Crd {
        /// Print the Alert CRD instead of the GitSync CRD
        #[arg(long)]
        alert: bool,
    },

    /// Print the version and exit
    Version,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub serve: ServeArgs<8080>,

    #[command(flatten)]
    pub leader: sluice_shared::leader::LeaderArgs,

    /// Directory for git caches and per-revision checkouts
    #[arg(long, env = "SLUICE_CACHE_DIR", value_name = "DIR",
          default_value = deploy_synchronizer::controller::DEFAULT_CACHE_DIR)]
    pub cache_dir: std::path::PathBuf,

    /// Reconcile only the GitSyncs of this namespace (default: every namespace)
    #[arg(long, env = "SLUICE_WATCH_NAMESPACE", value_name = "NAMESPACE")]
    pub watch_namespace: Option<String>,

    /// Multi-tenancy: a GitSync without spec.serviceAccountName writes as this ServiceAccount of
    /// its own namespace, never as the synchronizer (default: as the synchronizer)
    #[arg(long, env = "SLUICE_DEFAULT_SERVICE_ACCOUNT", value_name = "NAME")]
    pub default_service_account: Option<String>,

    /// Multi-tenancy: refuse GitSyncs that name another namespace (targetNamespace,
    /// allowedNamespaces, dependsOn, helm.namespace), before anything is fetched
    #[arg(long, env = "SLUICE_NO_CROSS_NAMESPACE_REFS")]
    pub no_cross_namespace_refs: bool,

    /// How far each self-heal watch reaches: `cluster`, one watch per kind in every namespace
    /// (needs list and watch on the kind cluster-wide); `namespace`, one per kind and namespace
    /// that holds objects under self-heal (for RBAC granted by namespace; cluster-scoped kinds
    /// are still watched cluster-wide)
    #[arg(
        long,
        env = "SLUICE_HEAL_WATCH_SCOPE",
        value_name = "SCOPE",
        default_value = "cluster"
    )]
    pub heal_watch_scope: deploy_synchronizer::controller::WatchScope,

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

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["path", "git_sync"])))]
pub struct DiffArgs {
    /// The GitSync to diff (its namespace from -n)
    #[arg(value_name = "GITSYNC")]
    pub git_sync: Option<String>,

    /// Diff a local directory instead of a GitSync
    #[arg(long, value_name = "DIR", conflicts_with = "git_sync")]
    pub path: Option<std::path::PathBuf>,

    /// With --path: namespace for namespaced objects that name none (default: -n, else the
    /// kubeconfig's)
    #[arg(long, value_name = "NAMESPACE", requires = "path")]
    pub target_namespace: Option<String>,

    /// With GITSYNC: directory for the git cache and checkout
    #[arg(long, env = "SLUICE_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<std::path::PathBuf>,
}

#[derive(Args, Debug)]
pub struct RollbackArgs {
    /// The GitSync to roll back (its namespace from -n)
    #[arg(value_name = "GITSYNC")]
    pub git_sync: String,

    /// Go back to this revision (full or abbreviated commit id) instead of reverting the applied one
    #[arg(long, value_name = "REVISION")]
    pub to: Option<String>,

    /// Directory for the work clone (default: a temporary one)
    #[arg(long, env = "SLUICE_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<std::path::PathBuf>,
}

/// A command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Telemetry(#[from] TelemetryError),
    #[error(transparent)]
    Daemon(#[from] daemon::Error),
    #[error(transparent)]
    Client(#[from] sluice_shared::kubeconfig::ClientError),
    #[error(transparent)]
    Diff(#[from] deploy_synchronizer::diffcmd::Error),
    #[error(transparent)]
    Rollback(#[from] deploy_synchronizer::rollbackcmd::Error),
    #[error("cannot create a cache directory: {0}")]
    CacheDir(#[source] std::io::Error),
}

impl Cli {
    /// Runs the command; `Ok` holds the exit code (`diff` exits 1 when it found changes).
    pub async fn execute(self) -> Result<u8, Error> {
        telemetry::init(&self.log)?;
        sluice_shared::failpoint::arm();
        match self.command {
            Command::Run(args) => daemon::run(&self.kube, &args)
                .await
                .map(|()| 0)
                .map_err(Into::into),
            Command::Diff(args) => diff(&self.kube, &args).await,
            Command::Rollback(args) => rollback(&self.kube, &args).await,
            Command::Crd { alert } => {
                if alert {
                    print!("{}", sluice_shared::notify::crd_yaml());
                } else {
                    print!("{}", deploy_synchronizer::resource::crd_yaml());
                }
                Ok(0)
            }
            Command::Version => {
                println!("{NAME} {VERSION}");
                Ok(0)
            }
        }
    }
}

/// `diff`: prints the report on stdout and returns its exit code (0 or 1); errors exit 2.
async fn diff(
    kube: &sluice_shared::kubeconfig::KubeconfigArgs,
    args: &DiffArgs,
) -> Result<u8, Error> {
    use deploy_synchronizer::diffcmd::{self, Target};

    let config = kube.config().await?;
    let client = kube.client().await?;
    // Held until the diff is done: a GitSync's cache and checkout go away with it.
    let mut scratch = None;
    let target = match (&args.path, &args.git_sync) {
        (Some(dir), _) => Target::Path {
            dir: dir.clone(),
            target_namespace: args.target_namespace.clone(),
        },
        (None, Some(name)) => {
            let cache_dir = match &args.cache_dir {
                Some(dir) => dir.clone(),
                None => scratch
                    .insert(tempfile::tempdir().map_err(Error::CacheDir)?)
                    .path()
                    .to_owned(),
            };
            Target::GitSync {
                namespace: client.default_namespace().to_owned(),
                name: name.clone(),
                cache_dir,
            }
        }
        (None, None) => unreachable!("clap requires --path or GITSYNC"),
    };
    let outcome = diffcmd::run(&client, &config, &target).await;
    drop(scratch);
    let code = deploy_synchronizer::diff::exit_code(&outcome);
    let report = outcome?;
    print!("{}", report.render());
    tracing::info!("{}", report.summary());
    Ok(code)
}

/// `rollback`: proposes the rollback and prints its pull request's URL.
async fn rollback(
    kube: &sluice_shared::kubeconfig::KubeconfigArgs,
    args: &RollbackArgs,
) -> Result<u8, Error> {
    use deploy_synchronizer::rollbackcmd::{self, Request};

    let client = kube.client().await?;
    let scratch = match &args.cache_dir {
        Some(_) => None,
        None => Some(tempfile::tempdir().map_err(Error::CacheDir)?),
    };
    let cache_dir = match (&args.cache_dir, &scratch) {
        (Some(dir), _) => dir.clone(),
        (None, Some(temp)) => temp.path().to_owned(),
        (None, None) => unreachable!("a temporary directory without --cache-dir"),
    };
    let request = Request {
        namespace: client.default_namespace().to_owned(),
        name: args.git_sync.clone(),
        to: args.to.clone(),
        cache_dir,
    };
    let proposed = rollbackcmd::run(&client, &request).await?;
    tracing::info!(
        branch = %proposed.branch,
        number = proposed.pull_request.number,
        state = %proposed.pull_request.state,
        "rollback proposed"
    );
    println!("{}", proposed.pull_request.url);
    Ok(0)
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
