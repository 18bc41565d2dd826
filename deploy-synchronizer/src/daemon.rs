//! The synchronizer daemon: the GitSync controller beside the metrics, health and webhook
//! endpoint.

use std::sync::Arc;

use deploy_synchronizer::controller::{self, Metrics, Options};
use deploy_synchronizer::webhook::{self, PROVIDERS};
use sluice_shared::kubeconfig::{ClientError, KubeconfigArgs};
use sluice_shared::serve::{self, Readiness, ServeError};
use sluice_shared::shutdown::Stop;
use sluice_shared::webhook::Secrets;
use tokio::sync::mpsc;
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
    #[error("--webhook-secret-file: {0}")]
    WebhookSecrets(String),
    #[error("the GitSync controller stopped unexpectedly: {0}")]
    Controller(String),
}

/// Runs until SIGTERM or SIGINT, then shuts down gracefully: the endpoint finishes its requests,
/// the controller lets its reconciles in flight finish.
pub async fn run(kube: &KubeconfigArgs, args: &RunArgs) -> Result<(), Error> {
    let stop = Stop::on_signals().map_err(Error::Signals)?;
    info!(version = VERSION, "starting {NAME}");
    let secrets =
        Secrets::from_flags(&args.webhook_secret_file, PROVIDERS).map_err(Error::WebhookSecrets)?;
    let providers: Vec<&str> = secrets.providers().collect();
    info!(providers = ?providers, "webhook receivers");

    let client = kube.connect().await?;
    let config = kube.config().await?;

    let mut registry = serve::registry(NAME, VERSION);
    let metrics = Metrics::register(&mut registry);
    let registry = Arc::new(registry);
    let readiness = Readiness::default();

    let (pushes_tx, pushes_rx) = mpsc::channel(256);
    let options = Options {
        namespace: args.watch_namespace.clone(),
        cache_dir: args.cache_dir.clone(),
        instance: std::env::var("POD_NAME").ok(),
        pushes: Some(pushes_rx),
    };
    let controller = tokio::spawn(controller::run(
        client,
        config,
        options,
        metrics,
        stop.stopped(),
    ));
    readiness.set(true);

    serve::serve(
        args.serve.metrics_addr,
        serve::router(registry, readiness).merge(webhook::router(secrets, pushes_tx)),
        stop.stopped(),
    )
    .await?;
    controller
        .await
        .map_err(|error| Error::Controller(error.to_string()))?;
    info!("stopped");
    Ok(())
}
