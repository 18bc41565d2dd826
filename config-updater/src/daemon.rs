//! The updater daemon: the three image controllers beside the metrics, health and webhook
//! endpoint (start-up and serving shared with the synchronizer: [`sluice_shared::daemon`]).

use config_updater::controller::{self, Metrics, Options};
use config_updater::webhook::{self, PROVIDERS};
use sluice_shared::daemon::Daemon;
use sluice_shared::kubeconfig::KubeconfigArgs;
use sluice_shared::leader::Leadership;
use sluice_shared::sharding;
use tokio::sync::mpsc;

pub use sluice_shared::daemon::DaemonError as Error;

use crate::cli::{NAME, RunArgs, VERSION};

/// The Lease whose holder, among the updater's replicas, runs the controllers.
const LEASE: &str = "sluice-config-updater";

/// Runs until SIGTERM or SIGINT, then shuts down gracefully: the endpoint finishes its requests,
/// the controllers let their reconciles in flight finish. With `--leader-elect` the controllers
/// run only while this replica holds the Lease (see [`sluice_shared::leader`]); with `--shards`
/// every replica runs them for the namespaces of its shards ([`sluice_shared::sharding`]).
pub async fn run(kube: &KubeconfigArgs, args: &RunArgs) -> Result<(), Error> {
    let mut daemon = Daemon::start(NAME, VERSION, &args.webhook_secret_file, PROVIDERS)?;
    let client = kube.connect().await?;
    let metrics = Metrics::register(&mut daemon.registry);

    let (events_tx, events_rx) = mpsc::channel(1024);
    let mut options = Options {
        namespace: args
            .watch_namespace
            .clone()
            .or_else(|| kube.namespace.clone()),
        work_dir: args.work_dir.clone(),
        instance: std::env::var("POD_NAME").ok(),
        events: Some(events_rx),
        metrics,
        notify: true,
        label_selector: args.watch_label_selector.clone(),
        ..Options::default()
    };
    let sharded = sharding::join(client.clone(), &args.leader, LEASE, daemon.stopped());
    let controllers = if let Some(sharded) = sharded {
        // Sharded: every replica runs the controllers, for the namespaces of its shards.
        options.shards = Some(sharded.gate);
        options.shard_events = Some(sharded.events);
        let stopped = daemon.stopped();
        tokio::spawn(async move {
            controller::run(client, options, stopped).await;
            let _ = sharded.ring.await;
            Ok(())
        })
    } else {
        let leadership = Leadership::join(client.clone(), LEASE, &args.leader).await?;
        tokio::spawn(leadership.lead(daemon.stopped(), move |shutdown| {
            controller::run(client, options, shutdown)
        }))
    };
    let webhooks = webhook::router(std::mem::take(&mut daemon.secrets), events_tx);
    daemon
        .serve(
            args.serve.metrics_addr,
            webhooks,
            controllers,
            "image controllers",
        )
        .await
}
