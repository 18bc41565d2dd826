//! The synchronizer daemon: the GitSync controller beside the metrics and health endpoint.

use std::sync::Arc;

use deploy_synchronizer::controller::{self, Metrics, Options};
use sluice_shared::kubeconfig::{ClientError, KubeconfigArgs};
use sluice_shared::serve::{self, Readiness, ServeError};
use sluice_shared::shutdown::ShutdownSignal;
use tokio::sync::watch;
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
    #[error("the GitSync controller stopped unexpectedly: {0}")]
    Controller(String),
}

/// Runs until SIGTERM or SIGINT, then shuts down gracefully: the endpoint finishes its requests,
/// the controller lets its reconciles in flight finish.
pub async fn run(kube: &KubeconfigArgs, args: &RunArgs) -> Result<(), Error> {
    let shutdown = ShutdownSignal::install().map_err(Error::Signals)?;
    info!(version = VERSION, "starting {NAME}");

    let client = kube.connect().await?;
    let config = kube.config().await?;

    let mut registry = serve::registry(NAME, VERSION);
    let metrics = Metrics::register(&mut registry);
    let registry = Arc::new(registry);
    let readiness = Readiness::default();

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let options = Options {
        namespace: args.watch_namespace.clone(),
        cache_dir: args.cache_dir.clone(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let controller = tokio::spawn(controller::run(
        client,
        config,
        options,
        metrics,
        stopped(stop_rx.clone()),
    ));
    readiness.set(true);

    tokio::spawn(async move {
        let signal = shutdown.received().await;
        info!(signal, "shutting down");
        let _ = stop_tx.send(true);
    });
    serve::serve(
        args.serve.metrics_addr,
        serve::router(registry, readiness),
        stopped(stop_rx),
    )
    .await?;
    controller
        .await
        .map_err(|error| Error::Controller(error.to_string()))?;
    info!("stopped");
    Ok(())
}
