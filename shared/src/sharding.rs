//! Sharding's shell: replicas find each other through membership Leases, each works the shards
//! [`crate::shard::share`] gives it, and holds each through a Lease of its own, so a shard is
//! never worked by two replicas at once, even while their member lists disagree.
//!
//! Every `--lease-duration / 3` a replica:
//! 1. renews its membership Lease (`<prefix>-member-<hash of identity>`, labelled
//!    `sluice.dev/members-of=<prefix>`) and lists the live members (renewed within the lease);
//! 2. takes the shards now its own whose Lease is free, expired or already its own (a write
//!    with the Lease's resourceVersion: of two replicas racing, one wins);
//! 3. renews the shard Leases it holds; one it cannot renew for half a lease is dropped;
//! 4. lets go of the shards no longer its own: no new reconcile starts on them, those in flight
//!    finish (together, bounded by half a lease), then each shard's Lease is released.
//!
//! A replica that dies leaves its Leases to expire: within a lease duration its shards are taken
//! by the others. One that is stopped releases them at once. Leases are written by hand here
//! (kube's `replace`, which carries the resourceVersion): kube-lease-manager holds one Lease per
//! task, and a replica here holds a changing set of them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::leader::LeaderArgs;
use crate::shard::{RECONCILE_REQUESTED_AT, share};

/// The label of membership Leases.
pub const MEMBERS_LABEL: &str = "sluice.dev/members-of";

/// Which shards this replica works now, and how many reconciles are in each: what a reconcile
/// asks before it starts.
pub struct ShardGate {
    shards: u32,
    state: Mutex<GateState>,
    drained: Notify,
}

#[derive(Default)]
struct GateState {
    held: BTreeSet<u32>,
    in_flight: HashMap<u32, usize>,
}

/// A reconcile inside a shard; leaves it when dropped.
pub struct ShardGuard {
    gate: Arc<ShardGate>,
    shard: u32,
}

impl Drop for ShardGuard {
    fn drop(&mut self) {
        let mut state = lock(&self.gate.state);
        if let Some(n) = state.in_flight.get_mut(&self.shard) {
            *n = n.saturating_sub(1);
        }
        drop(state);
        self.gate.drained.notify_waiters();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl std::fmt::Debug for ShardGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardGate")
            .field("shards", &self.shards)
            .field("held", &self.held())
            .finish()
    }
}

impl ShardGate {
    pub fn new(shards: u32) -> Arc<Self> {
        Arc::new(ShardGate {
            shards: shards.max(1),
            state: Mutex::new(GateState::default()),
            drained: Notify::new(),
        })
    }

    pub fn shards(&self) -> u32 {
        self.shards
    }

    /// Enters `shard` for one reconcile, if this replica works it now.
    pub fn enter(self: &Arc<Self>, shard: u32) -> Option<ShardGuard> {
        let mut state = lock(&self.state);
        if !state.held.contains(&shard) {
            return None;
        }
        *state.in_flight.entry(shard).or_default() += 1;
        Some(ShardGuard {
            gate: self.clone(),
            shard,
        })
    }

    /// The shards worked now.
    pub fn held(&self) -> BTreeSet<u32> {
        lock(&self.state).held.clone()
    }

    fn admit(&self, shard: u32) {
        let mut state = lock(&self.state);
        state.held.insert(shard);
        crate::leader::working().set(state.held.len() as i64);
    }

    /// Stops admitting reconciles to `shard` and waits (at most `limit`) for those in it.
    async fn drain(&self, shard: u32, limit: Duration) {
        {
            let mut state = lock(&self.state);
            state.held.remove(&shard);
            crate::leader::working().set(state.held.len() as i64);
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.drained.notified();
            if lock(&self.state)
                .in_flight
                .get(&shard)
                .copied()
                .unwrap_or(0)
                == 0
            {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                tracing::warn!(shard, "reconciles still running in a shard being let go");
                return;
            }
        }
    }
}

/// A replica among the others: its identity, its Leases' namespace and name prefix.
pub struct Member {
    pub client: Client,
    pub namespace: String,
    pub prefix: String,
    pub identity: String,
    pub lease: Duration,
}

/// Shard changes for the controller: `Acquired` to reconcile the shard's objects now,
/// `Released` to forget them (self-heal stops watching them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardEvent {
    Acquired(u32),
    Released(u32),
}

/// A replica in the ring: the gate its reconciles ask, the shard changes for its controllers,
/// and the task holding its Leases (it ends after the stop, every Lease released).
pub struct Sharded {
    pub gate: Arc<ShardGate>,
    pub events: mpsc::Receiver<ShardEvent>,
    pub ring: JoinHandle<()>,
}

/// Joins the ring of Leases named `prefix…` when `args.shards` is more than one (`None`: not
/// sharded, leader election or running alone decides).
pub fn join(
    client: Client,
    args: &LeaderArgs,
    prefix: &str,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Option<Sharded> {
    if args.shards <= 1 {
        return None;
    }
    let gate = ShardGate::new(args.shards);
    let (events_tx, events) = mpsc::channel(64);
    let member = Member {
        client,
        namespace: args.leader_election_namespace.clone(),
        prefix: prefix.to_owned(),
        identity: crate::leader::identity(),
        lease: args.lease_duration,
    };
    let ring = tokio::spawn(run(member, gate.clone(), events_tx, stop));
    Some(Sharded { gate, events, ring })
}

/// The last [`RECONCILE_REQUESTED_AT`] value acted on, per object: how a reconcile tells a new
/// request (a webhook handed over, a user's `kubectl annotate`) from one it acted on already.
#[derive(Debug, Default)]
pub struct Requests(Mutex<HashMap<String, String>>);

impl Requests {
    /// Whether `object`'s annotation holds a value not acted on yet under `key`; remembers it.
    pub fn is_new<K: kube::ResourceExt>(&self, key: &str, object: &K) -> bool {
        let Some(value) = object.annotations().get(RECONCILE_REQUESTED_AT) else {
            return false;
        };
        let mut seen = lock(&self.0);
        if seen.get(key) == Some(value) {
            return false;
        }
        seen.insert(key.to_owned(), value.clone());
        true
    }
}

/// Hands a webhook's work on `name` to the replica that works its shard: a new value of its
/// [`RECONCILE_REQUESTED_AT`] annotation, which that replica's controller sees and acts on at
/// once. Retried a bounded number of times (200, 400 ms apart); polling remains the fallback.
pub async fn hand_over<K>(api: Api<K>, name: String)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let now = Timestamp::now().to_string();
    let patch = serde_json::json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT: now}}});
    for attempt in 1..=3u32 {
        match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                tracing::info!(object = %name, "webhook handed to the replica of its shard");
                return;
            }
            Err(error) if attempt < 3 => {
                tracing::debug!(%error, attempt, "handing a webhook over");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
            Err(error) => {
                tracing::warn!(object = %name, %error, "could not hand a webhook over; the next poll finds it");
            }
        }
    }
}

/// Runs the membership and shard Leases until `stop`, then releases them all.
pub async fn run(
    member: Member,
    gate: Arc<ShardGate>,
    events: mpsc::Sender<ShardEvent>,
    stop: impl std::future::Future<Output = ()>,
) {
    let api: Api<Lease> = Api::namespaced(member.client.clone(), &member.namespace);
    let tick = member.lease / 3;
    let mut renewed: BTreeMap<u32, tokio::time::Instant> = BTreeMap::new();
    tracing::info!(identity = %member.identity, shards = gate.shards(), prefix = %member.prefix,
        "joined the shard ring");
    let mut stop = std::pin::pin!(stop);
    loop {
        let members = match member.renew_membership(&api).await {
            Ok(members) => members,
            Err(error) => {
                tracing::warn!(%error, "cannot renew membership; working no shard");
                Vec::new()
            }
        };
        let wanted = share(&member.identity, &members, gate.shards());
        for shard in 0..gate.shards() {
            let holding = gate.held().contains(&shard);
            if !wanted.contains(&shard) && !holding {
                continue;
            }
            match member.claim(&api, shard).await {
                Ok(true) => {
                    renewed.insert(shard, tokio::time::Instant::now());
                    if !holding {
                        gate.admit(shard);
                        let _ = events.send(ShardEvent::Acquired(shard)).await;
                        tracing::info!(shard, "shard acquired");
                    }
                }
                Ok(false) if holding => {
                    // Someone else holds it: stop at once.
                    gate.drain(shard, Duration::ZERO).await;
                    renewed.remove(&shard);
                    let _ = events.send(ShardEvent::Released(shard)).await;
                    tracing::warn!(shard, "shard lost to another replica");
                }
                Ok(false) => {}
                Err(error) if holding => {
                    let since = renewed.get(&shard).map(|t| t.elapsed()).unwrap_or_default();
                    tracing::warn!(shard, %error, "cannot renew a shard's Lease");
                    if since >= member.lease / 2 {
                        gate.drain(shard, Duration::ZERO).await;
                        renewed.remove(&shard);
                        let _ = events.send(ShardEvent::Released(shard)).await;
                    }
                }
                Err(error) => tracing::debug!(shard, %error, "cannot claim a shard"),
            }
        }
        // Let go last, the Leases renewed: a slow drain must not let this replica's other
        // Leases run out (under load they did, and shards went back and forth). The shards
        // leaving are drained together, each bounded by half a lease.
        let leaving: Vec<u32> = gate.held().difference(&wanted).copied().collect();
        futures::future::join_all(leaving.iter().map(|s| gate.drain(*s, member.lease / 2))).await;
        for shard in leaving {
            renewed.remove(&shard);
            member.release(&api, shard).await;
            let _ = events.send(ShardEvent::Released(shard)).await;
            tracing::info!(shard, "shard released");
        }
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(tick) => {}
        }
    }
    for shard in gate.held() {
        gate.drain(shard, member.lease / 2).await;
        member.release(&api, shard).await;
    }
    let _ = api
        .delete(&member.member_lease(), &Default::default())
        .await;
    tracing::info!("left the shard ring");
}

impl Member {
    fn member_lease(&self) -> String {
        let hash = crate::shard::shard_of(&self.identity, None, u32::MAX);
        format!("{}-member-{hash:08x}", self.prefix)
    }

    fn shard_lease(&self, shard: u32) -> String {
        format!("{}-shard-{shard}", self.prefix)
    }

    fn seconds(&self) -> i32 {
        i32::try_from(self.lease.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    fn spec(&self, now: Timestamp, acquired: Option<MicroTime>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.seconds()),
            renew_time: Some(MicroTime(now)),
            acquire_time: acquired.or(Some(MicroTime(now))),
            ..LeaseSpec::default()
        }
    }

    /// Renews this replica's membership; returns the live members' identities (sorted).
    async fn renew_membership(&self, api: &Api<Lease>) -> Result<Vec<String>, kube::Error> {
        let name = self.member_lease();
        let now = Timestamp::now();
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([(MEMBERS_LABEL.to_owned(), self.prefix.clone())].into()),
                ..ObjectMeta::default()
            },
            spec: Some(self.spec(now, None)),
        };
        match api.get_opt(&name).await? {
            Some(mut current) => {
                current.spec = lease.spec;
                api.replace(&name, &PostParams::default(), &current).await?;
            }
            None => {
                api.create(&PostParams::default(), &lease).await?;
            }
        }
        let selector = format!("{MEMBERS_LABEL}={}", self.prefix);
        let leases = api.list(&ListParams::default().labels(&selector)).await?;
        let mut members: Vec<String> = leases
            .items
            .into_iter()
            .filter_map(|lease| lease.spec)
            .filter(|spec| !expired(spec, now))
            .filter_map(|spec| spec.holder_identity)
            .collect();
        members.sort();
        members.dedup();
        Ok(members)
    }

    /// Takes or renews shard `shard`'s Lease: `true` when this replica holds it after.
    async fn claim(&self, api: &Api<Lease>, shard: u32) -> Result<bool, kube::Error> {
        let name = self.shard_lease(shard);
        let now = Timestamp::now();
        let Some(mut current) = api.get_opt(&name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(now, None)),
            };
            return match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = current.spec.clone().unwrap_or_default();
        let ours = spec.holder_identity.as_deref() == Some(self.identity.as_str());
        let free = spec.holder_identity.as_deref().is_none_or(str::is_empty) || expired(&spec, now);
        if !ours && !free {
            return Ok(false);
        }
        let acquired = if ours { spec.acquire_time } else { None };
        let mut next = self.spec(now, acquired);
        next.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + i32::from(!ours));
        current.spec = Some(next);
        // `replace` carries the resourceVersion read: of two replicas racing, one gets a 409.
        match api.replace(&name, &PostParams::default(), &current).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Releases shard `shard`'s Lease if this replica holds it.
    async fn release(&self, api: &Api<Lease>, shard: u32) {
        let name = self.shard_lease(shard);
        let Ok(Some(mut current)) = api.get_opt(&name).await else {
            return;
        };
        let mut spec = current.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        current.spec = Some(spec);
        if let Err(error) = api.replace(&name, &PostParams::default(), &current).await {
            tracing::warn!(shard, %error, "cannot release a shard's Lease; it expires on its own");
        }
    }
}

/// Whether a Lease's holder let it run out.
fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    let (Some(renewed), Some(seconds)) = (&spec.renew_time, spec.lease_duration_seconds) else {
        return true;
    };
    let until = renewed
        .0
        .checked_add(SignedDuration::from_secs(i64::from(seconds)));
    until.map_or(true, |until| until < now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_shard_is_entered_only_while_held_and_drained_before_it_goes() {
        let gate = ShardGate::new(4);
        assert!(gate.enter(1).is_none());
        gate.admit(1);
        let guard = gate.enter(1).expect("held");
        let drain = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.drain(1, Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(gate.enter(1).is_none(), "no new reconcile while draining");
        assert!(!drain.is_finished(), "waits for the one in flight");
        drop(guard);
        tokio::time::timeout(Duration::from_secs(1), drain)
            .await
            .expect("drained once it left")
            .unwrap();
    }

    #[test]
    fn a_reconcile_request_is_new_once_per_value() {
        let mut cm = k8s_openapi::api::core::v1::ConfigMap::default();
        let requests = Requests::default();
        assert!(!requests.is_new("a", &cm), "no annotation, no request");
        cm.metadata.annotations =
            Some([(RECONCILE_REQUESTED_AT.to_owned(), "t1".to_owned())].into());
        assert!(requests.is_new("a", &cm));
        assert!(!requests.is_new("a", &cm), "acted on already");
        assert!(requests.is_new("b", &cm), "per key");
        cm.metadata.annotations =
            Some([(RECONCILE_REQUESTED_AT.to_owned(), "t2".to_owned())].into());
        assert!(requests.is_new("a", &cm));
    }

    #[test]
    fn a_lease_unrenewed_past_its_duration_is_expired() {
        let now = Timestamp::now();
        let spec = |ago: i64| LeaseSpec {
            holder_identity: Some("a".into()),
            lease_duration_seconds: Some(10),
            renew_time: Some(MicroTime(now - SignedDuration::from_secs(ago))),
            ..LeaseSpec::default()
        };
        assert!(!expired(&spec(5), now));
        assert!(expired(&spec(11), now));
        assert!(expired(&LeaseSpec::default(), now));
    }
}
