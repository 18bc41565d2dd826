//! Leader election, so a daemon can run as several replicas of which one works: the holder of a
//! `coordination.k8s.io` Lease (one per daemon) runs the controllers; the others serve
//! `/healthz`, `/readyz` and `/metrics` and wait to take over.
//!
//! The Lease is held and renewed by `kube-lease-manager` (server-side apply on the Lease, so two
//! replicas can never both hold it). A replica that is stopped releases it, so a rolling update
//! hands over at once; one that is killed is replaced once its lease expires
//! (`--lease-duration`). A replica that loses the Lease (it could not renew in time, say the
//! API server was out of reach) stops its controllers and exits with an error, to be restarted
//! as a standby: it never works on after another replica may have started.
//!
//! Without `--leader-elect` a daemon is the only replica and works at once, as before.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Flags of leader election, the same for both daemons.
#[derive(clap::Args, Debug, Clone)]
pub struct LeaderArgs {
    /// Run as one of several replicas: only the holder of the daemon's Lease works, the others
    /// stand by to take over
    #[arg(long, env = "SLUICE_LEADER_ELECT")]
    pub leader_elect: bool,

    /// Namespace of the Lease (default: the pod's namespace, $POD_NAMESPACE, else sluice-system)
    #[arg(
        long,
        env = "POD_NAMESPACE",
        value_name = "NAMESPACE",
        default_value = "sluice-system"
    )]
    pub leader_election_namespace: String,

    /// How long a Lease lasts unrenewed: how soon a standby takes over from a replica that died
    /// (it is renewed a third of this before it runs out; released at once on a stop)
    #[arg(long, env = "SLUICE_LEASE_DURATION", value_name = "DURATION", default_value = "15s",
          value_parser = crate::duration::parse)]
    pub lease_duration: Duration,

    /// Spread the work over replicas: each GitSync belongs to one of N shards (its
    /// `sluice.dev/shard` label, else a hash of its UID), the updater's resources by namespace
    /// (a namespace's repositories, policies and updates work together); each shard is held
    /// through a Lease of its own, and every replica works the shards that fall to it
    /// (1: no sharding)
    #[arg(long, env = "SLUICE_SHARDS", value_name = "N", default_value_t = 1)]
    pub shards: u32,
}

/// What this replica works, exported as `sluice_working{component}`: 1 while it holds its
/// daemon's Lease (or runs alone), the number of shards it holds when sharded, 0 on a standby.
/// One per process: the daemon's registry exports it (`serve::registry`).
pub fn working() -> &'static prometheus_client::metrics::gauge::Gauge {
    static WORKING: std::sync::OnceLock<prometheus_client::metrics::gauge::Gauge> =
        std::sync::OnceLock::new();
    WORKING.get_or_init(Default::default)
}

/// Why leadership failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("cannot take part in the leader election on Lease {lease}: {error}")]
    Elect {
        lease: String,
        #[source]
        error: LeaseManagerError,
    },
    #[error("lost the Lease {lease} to another replica; stopped working (a restart stands by)")]
    Lost { lease: String },
}

/// This replica's part in the election.
pub enum Leadership {
    /// The only replica: it leads from the start and never loses.
    Single,
    /// One of several: `leading` says whether it holds the Lease; dropping it (every clone)
    /// makes `campaign` release the Lease and end.
    Elected {
        lease: String,
        leading: watch::Receiver<bool>,
        campaign: JoinHandle<()>,
    },
}

impl Leadership {
    /// Joins the election for Lease `lease` (made if missing) when `args` ask for it.
    pub async fn join(client: Client, lease: &str, args: &LeaderArgs) -> Result<Self, LeaderError> {
        if !args.leader_elect {
            return Ok(Leadership::Single);
        }
        let candidate = Candidate {
            client: client.clone(),
            lease: lease.to_owned(),
            namespace: args.leader_election_namespace.clone(),
            identity: identity(),
            seconds: args.lease_duration.as_secs().max(3),
        };
        let manager = candidate
            .manager()
            .await
            .map_err(|error| LeaderError::Elect {
                lease: lease.to_owned(),
                error,
            })?;
        tracing::info!(lease, namespace = %candidate.namespace, identity = %candidate.identity,
            lease_seconds = candidate.seconds, "joined the leader election");
        let (tx, leading) = watch::channel(false);
        let released = released(Api::namespaced(client, &candidate.namespace), lease);
        let campaign = tokio::spawn(campaign(candidate, manager, tx, released));
        Ok(Leadership::Elected {
            lease: lease.to_owned(),
            leading,
            campaign,
        })
    }
    /// Runs `work` while this replica leads: waits for the Lease (or `stop`), then runs `work`
    /// with a shutdown that fires on `stop` or when the Lease is lost. On a stop the Lease is
    /// released, so a standby takes over at once; a loss is an error (the process must exit).
    pub async fn lead<W, F>(
        self,
        stop: impl Future<Output = ()> + Send + Sync + 'static,
        work: W,
    ) -> Result<(), LeaderError>
    where
        W: FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send + Sync>>) -> F,
        F: Future<Output = ()>,
    {
        let Leadership::Elected {
            lease,
            mut leading,
            campaign,
        } = self
        else {
            working().set(1);
            work(Box::pin(stop)).await;
            working().set(0);
            return Ok(());
        };
        let mut stop = Box::pin(stop);
        // Some(held): the wait ended (held false: the campaign ended); None: stopped first.
        let waited = tokio::select! {
            held = leading.wait_for(|leads| *leads) => Some(held.is_ok()),
            _ = &mut stop => None,
        };
        match waited {
            None => {
                release(leading, campaign).await;
                return Ok(());
            }
            Some(false) => return Err(LeaderError::Lost { lease }),
            Some(true) => {}
        }
        tracing::info!(%lease, "leading: starting to work");
        working().set(1);
        let mut watch_loss = leading.clone();
        let lost = async move {
            let _ = watch_loss.wait_for(|leads| !*leads).await;
        };
        let (lost_tx, mut lost_rx) = watch::channel(false);
        let shutdown = async move {
            tokio::select! {
                _ = stop => {}
                _ = lost => { let _ = lost_tx.send(true); }
            }
        };
        work(Box::pin(shutdown)).await;
        working().set(0);
        if *lost_rx.borrow_and_update() || !*leading.borrow() {
            tracing::error!(%lease, "lost the Lease; stopped working");
            return Err(LeaderError::Lost { lease });
        }
        release(leading, campaign).await;
        tracing::info!(%lease, "released the Lease");
        Ok(())
    }
}

/// One replica in the election for one Lease.
struct Candidate {
    client: Client,
    lease: String,
    namespace: String,
    identity: String,
    seconds: u64,
}

impl Candidate {
    /// A manager of the Lease (made if missing), its state read from the API server now.
    async fn manager(&self) -> Result<LeaseManager, LeaseManagerError> {
        LeaseManagerBuilder::new(self.client.clone(), &self.lease)
            .with_namespace(&self.namespace)
            .with_identity(&self.identity)
            .with_duration(self.seconds)
            .with_grace((self.seconds / 3).max(1))
            .build()
            .await
    }
}

/// Holds or waits for the Lease until `tx` has no receiver left, then releases it. A standby
/// waits out the holder's lease, or less: when `released` says the holder let it go (a replica
/// stopping), it reads the Lease again (a new manager: the crate's own waits on what it read
/// last) and takes it at once, so a rolling update hands over in about a second.
async fn campaign(
    candidate: Candidate,
    mut manager: LeaseManager,
    tx: watch::Sender<bool>,
    mut released: watch::Receiver<()>,
) {
    let mut failures = 0u32;
    // A leader whose renewal fails has a third of the lease left (it renews that early): it
    // retries for half of that, then stops working, before any standby may start.
    let mut failing_since: Option<std::time::Instant> = None;
    let give_up = Duration::from_secs(candidate.seconds) / 6;
    loop {
        let leads = *tx.borrow();
        tokio::select! {
            biased;
            _ = tx.closed() => break,
            // A standby's `changed` only sleeps until the holder's lease would run out: dropping
            // it is safe.
            _ = released.changed(), if !leads => {
                match candidate.manager().await {
                    Ok(fresh) => manager = fresh,
                    Err(error) => tracing::warn!(%error, "the Lease could not be read"),
                }
            }
            changed = manager.changed() => match changed {
                Ok(now) => {
                    failures = 0;
                    failing_since = None;
                    let _ = tx.send(now);
                }
                Err(error) => {
                    failures += 1;
                    tracing::warn!(%error, "the Lease could not be read or renewed");
                    let since = *failing_since.get_or_insert_with(std::time::Instant::now);
                    let wait = if leads {
                        if since.elapsed() >= give_up {
                            let _ = tx.send(false);
                        }
                        Duration::from_millis(200)
                    } else {
                        Duration::from_millis(500 * 2u64.pow(failures.min(5)))
                    };
                    tokio::time::sleep(wait).await;
                }
            },
        }
    }
    if let Err(error) = manager.release().await {
        tracing::warn!(%error, "could not release the Lease; it expires on its own");
    }
}

/// Ticks whenever Lease `name` shows no holder (released). Ends with the receivers.
fn released(api: Api<Lease>, name: &str) -> watch::Receiver<()> {
    let (tx, rx) = watch::channel(());
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    tokio::spawn(async move {
        let events = watcher(api, config).default_backoff().applied_objects();
        let mut events = std::pin::pin!(events);
        loop {
            tokio::select! {
                _ = tx.closed() => break,
                event = events.next() => match event {
                    Some(Ok(lease)) => {
                        let holder = lease.spec.and_then(|spec| spec.holder_identity);
                        if holder.is_none_or(|h| h.is_empty()) {
                            let _ = tx.send(());
                        }
                    }
                    Some(Err(error)) => tracing::debug!(%error, "watching the Lease"),
                    None => break,
                },
            }
        }
    });
    rx
}

/// Releases the Lease: dropping the last receiver makes the campaign release it and end.
async fn release(leading: watch::Receiver<bool>, campaign: JoinHandle<()>) {
    drop(leading);
    if tokio::time::timeout(Duration::from_secs(5), campaign)
        .await
        .is_err()
    {
        tracing::warn!("releasing the Lease timed out; it expires on its own");
    }
}

/// Who this replica is in the Lease: the pod's name, else the host's, with the process id.
pub fn identity() -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "sluice".to_owned());
    format!("{host}_{}", std::process::id())
}
