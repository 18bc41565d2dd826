//! The synchronizer daemon.

use std::sync::Arc;

use sluice_shared::kubeconfig::{ClientError, KubeconfigArgs};
use sluice_shared::serve::{self, Readiness, ServeError};
use sluice_shared::shutdown::ShutdownSignal;
use tracing::info;

use crate::cli::{NAME, RunArgs, VERSION};

/// The daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot install signal handlers")]
    Signals(#[source] std::io::Error),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// Runs until SIGTERM or SIGINT, then shuts down gracefully.
pub async fn run(kube: &KubeconfigArgs, args: &RunArgs) -> Result<(), Error> {
    let shutdown = ShutdownSignal::install().map_err(Error::Signals)?;
    info!(version = VERSION, "starting {NAME}");

    // Nothing uses the client yet: connecting proves the cluster is reachable
    // before the daemon reports ready.
    kube.connect().await?;

    let registry = Arc::new(serve::registry(NAME, VERSION));
    let readiness = Readiness::default();
    readiness.set(true);
    let stopping = async move {
        let signal = shutdown.received().await;
        info!(signal, "shutting down");
    };
    serve::serve(
        args.serve.metrics_addr,
        serve::router(registry, readiness),
        stopping,
    )
    .await?;
    info!("stopped");
    Ok(())
}
