//! The updater daemon: the three image controllers beside the metrics, health and webhook
//! endpoint.

use std::sync::Arc;

use config_updater::controller::{self, Metrics, Options};
use config_updater::webhook::{self, PROVIDERS};
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
    #[error("the image controllers stopped unexpectedly: {0}")]
    Controller(String),
}

/// Runs until SIGTERM or SIGINT, then shuts down gracefully: the endpoint finishes its requests,
/// the controllers let their reconciles in flight finish.
pub async fn run(kube: &KubeconfigArgs, args: &RunArgs) -> Result<(), Error> {
    let stop = Stop::on_signals().map_err(Error::Signals)?;
    info!(version = VERSION, "starting {NAME}");
    let secrets =
        Secrets::from_flags(&args.webhook_secret_file, PROVIDERS).map_err(Error::WebhookSecrets)?;
    let providers: Vec<&str> = secrets.providers().collect();
    info!(providers = ?providers, "webhook receivers");

    let client = kube.connect().await?;

    let mut registry = serve::registry(NAME, VERSION);
    let metrics = Metrics::register(&mut registry);
    let registry = Arc::new(registry);
    let readiness = Readiness::default();

    let (events_tx, events_rx) = mpsc::channel(1024);
    let options = Options {
        namespace: args
            .watch_namespace
            .clone()
            .or_else(|| kube.namespace.clone()),
        work_dir: args.work_dir.clone(),
        instance: std::env::var("POD_NAME").ok(),
        events: Some(events_rx),
        metrics,
    };
    let controllers = tokio::spawn(controller::run(client, options, stop.stopped()));
    readiness.set(true);

    let router = serve::router(registry, readiness).merge(webhook::router(secrets, events_tx));
    serve::serve(args.serve.metrics_addr, router, stop.stopped()).await?;
    controllers
        .await
        .map_err(|error| Error::Controller(error.to_string()))?;
    info!("stopped");
    Ok(())
}
