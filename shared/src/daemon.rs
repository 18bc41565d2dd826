//! What both daemons do around their controllers: install the signal handlers, read the webhook
//! secrets, build the metrics registry, then serve `/metrics`, `/healthz`, `/readyz` and the
//! webhook routes until a signal, and wait for the controllers to finish their work in flight.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use prometheus_client::registry::Registry;
use tokio::task::JoinHandle;
use tracing::info;

use crate::kubeconfig::ClientError;
use crate::leader::LeaderError;
use crate::serve::{self, Readiness, ServeError};
use crate::shutdown::Stop;
use crate::webhook::Secrets;

/// A daemon could not start, or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot install signal handlers")]
    Signals(#[source] std::io::Error),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error("--webhook-secret-file: {0}")]
    WebhookSecrets(String),
    #[error("the {what} stopped unexpectedly: {error}")]
    Controller { what: &'static str, error: String },
    #[error(transparent)]
    Leader(#[from] LeaderError),
}

/// A daemon between start-up and serving.
pub struct Daemon {
    /// Fires on SIGTERM or SIGINT.
    pub stop: Stop,
    /// The verified webhook providers' secrets.
    pub secrets: Secrets,
    /// Where the daemon's metrics register (prefix `sluice_`).
    pub registry: Registry,
    readiness: Readiness,
}

impl Daemon {
    /// Installs the signal handlers and reads the webhook secrets (`PROVIDER=PATH` flags, for
    /// the `providers` this daemon knows).
    pub fn start(
        name: &str,
        version: &str,
        secret_flags: &[String],
        providers: &[&str],
    ) -> Result<Self, DaemonError> {
        let stop = Stop::on_signals().map_err(DaemonError::Signals)?;
        info!(version, "starting {name}");
        let secrets =
            Secrets::from_flags(secret_flags, providers).map_err(DaemonError::WebhookSecrets)?;
        let providers: Vec<&str> = secrets.providers().collect();
        info!(providers = ?providers, "webhook receivers");
        Ok(Self {
            stop,
            secrets,
            registry: serve::registry(name, version),
            readiness: Readiness::default(),
        })
    }

    /// A future that completes on SIGTERM or SIGINT.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        self.stop.stopped()
    }

    /// Marks the daemon ready and serves the endpoint plus `webhooks` on `addr` until a signal,
    /// or until `controllers` end on their own (a Lease lost: see [`crate::leader`]); then waits
    /// for `controllers` (the `what` of errors) to finish their work in flight.
    pub async fn serve(
        self,
        addr: SocketAddr,
        webhooks: Router,
        controllers: JoinHandle<Result<(), LeaderError>>,
        what: &'static str,
    ) -> Result<(), DaemonError> {
        self.readiness.set(true);
        let router = serve::router(Arc::new(self.registry), self.readiness).merge(webhooks);
        let (ended_tx, mut ended) = tokio::sync::watch::channel(false);
        let controllers = tokio::spawn(async move {
            let result = controllers.await;
            let _ = ended_tx.send(true);
            result
        });
        let stop = self.stop.stopped();
        let until = async move {
            tokio::select! {
                _ = stop => {}
                _ = ended.wait_for(|ended| *ended) => {}
            }
        };
        serve::serve(addr, router, until).await?;
        let joined = controllers.await.map_err(|error| DaemonError::Controller {
            what,
            error: error.to_string(),
        })?;
        joined
            .map_err(|error| DaemonError::Controller {
                what,
                error: error.to_string(),
            })?
            .map_err(DaemonError::Leader)?;
        info!("stopped");
        Ok(())
    }
}
