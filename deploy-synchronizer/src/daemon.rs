//! The synchronizer daemon: the GitSync controller beside the metrics, health and webhook
//! endpoint (start-up and serving shared with the updater: [`sluice_shared::daemon`]).

use deploy_synchronizer::controller::{self, Metrics, Options};
use deploy_synchronizer::tenancy::Lockdown;
use deploy_synchronizer::webhook::{self, PROVIDERS};
use sluice_shared::daemon::Daemon;
use sluice_shared::kubeconfig::KubeconfigArgs;
use sluice_shared::leader::Leadership;
use sluice_shared::sharding;
use tokio::sync::mpsc;

pub use sluice_shared::daemon::DaemonError as Error;

use crate::cli::{NAME, RunArgs, VERSION};

/// The Lease whose holder, among the synchronizer's replicas, runs the controller.
const LEASE: &str = "sluice-deploy-synchronizer";

/// Runs until SIGTERM or SIGINT, then shuts down gracefully: the endpoint finishes its requests,
/// the controller lets its reconciles in flight finish. With `--leader-elect` the controller runs
/// only while this replica holds the Lease (see [`sluice_shared::leader`]).
pub async fn run(kube: &KubeconfigArgs, args: &RunArgs) -> Result<(), Error> {
    let mut daemon = Daemon::start(NAME, VERSION, &args.webhook_secret_file, PROVIDERS)?;
    let client = kube.connect().await?;
    let config = kube.config().await?;
    let metrics = Metrics::register(&mut daemon.registry);

    let (pushes_tx, pushes_rx) = mpsc::channel(256);
    let mut options = Options {
        namespace: args.watch_namespace.clone(),
        cache_dir: args.cache_dir.clone(),
        instance: std::env::var("POD_NAME").ok(),
        pushes: Some(pushes_rx),
        heal_scope: args.heal_watch_scope,
        lockdown: Lockdown {
            default_service_account: args.default_service_account.clone(),
            no_cross_namespace_refs: args.no_cross_namespace_refs,
        },
        ..Options::default()
    };
    let sharded = sharding::join(client.clone(), &args.leader, LEASE, daemon.stopped());
    let controller = if let Some(sharded) = sharded {
        // Sharded: every replica runs the controller, for the shards that fall to it.
        options.shards = Some(sharded.gate);
        options.shard_events = Some(sharded.events);
        let stopped = daemon.stopped();
        tokio::spawn(async move {
            controller::run(client, config, options, metrics, stopped).await;
            let _ = sharded.ring.await;
            Ok(())
        })
    } else {
        let leadership = Leadership::join(client.clone(), LEASE, &args.leader).await?;
        tokio::spawn(leadership.lead(daemon.stopped(), move |shutdown| {
            controller::run(client, config, options, metrics, shutdown)
        }))
    };
    let webhooks = webhook::router(std::mem::take(&mut daemon.secrets), pushes_tx);
    daemon
        .serve(
            args.serve.metrics_addr,
            webhooks,
            controller,
            "GitSync controller",
        )
        .await
}
