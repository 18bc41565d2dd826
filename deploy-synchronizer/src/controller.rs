//! The GitSync controller: a kube-runtime `Controller` over GitSync resources (all namespaces,
//! or one), fed by webhook pushes as well as watches, and its retry policy. [`run`] is what the
//! daemon starts, and what the e2e tests start in-process; what its reconciles share is in
//! [`crate::context`].

use std::future::Future;
use std::sync::Arc;

use futures::{StreamExt, stream};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

pub use crate::context::{DEFAULT_CACHE_DIR, MAX_BACKOFF, Metrics, Options, REPORTER, ResultLabel};
pub use crate::heal::WatchScope;

use crate::context::Context;
use crate::reconcile::{Error, reconcile};
use crate::resource::GitSync;
use crate::status::parse_duration;
use crate::webhook::{self, PushEvent};
use sluice_shared::sharding::ShardEvent;

/// The GitSyncs in `store` whose source `event` concerns, each marked in `ctx` to sync now.
fn pushed_syncs(
    store: &Store<GitSync>,
    ctx: &Context,
    event: &PushEvent,
) -> Vec<ObjectRef<GitSync>> {
    let matched: Vec<Arc<GitSync>> = store
        .state()
        .into_iter()
        .filter(|sync| {
            webhook::matches(
                &sync.spec.source.url,
                sync.spec.source.reference.as_ref(),
                event,
            )
        })
        .collect();
    // Sharded: a GitSync of a shard another replica works is handed to it, never dropped.
    let (mine, theirs): (Vec<_>, Vec<_>) = matched.into_iter().partition(|sync| {
        ctx.options.shards.as_ref().is_none_or(|gate| {
            gate.held()
                .contains(&crate::resource::shard_of(sync, gate.shards()))
        })
    });
    for sync in theirs {
        let api: Api<GitSync> =
            Api::namespaced(ctx.client.clone(), &sync.namespace().unwrap_or_default());
        tokio::spawn(sluice_shared::sharding::hand_over(api, sync.name_any()));
    }
    let refs: Vec<ObjectRef<GitSync>> = mine
        .iter()
        .map(|sync| ObjectRef::from_obj(sync.as_ref()))
        .collect();
    for r in &refs {
        ctx.push_received(&format!(
            "{}/{}",
            r.namespace.as_deref().unwrap_or_default(),
            r.name
        ));
    }
    tracing::info!(reference = %event.reference, revision = ?event.revision,
        syncs = ?refs.iter().map(ToString::to_string).collect::<Vec<_>>(), "push received");
    refs
}

/// A failed reconcile is retried with exponential backoff (1 s, 2 s, 4 s…), capped at the
/// sync's interval (and at five minutes).
pub fn error_policy(sync: Arc<GitSync>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = format!(
        "{}/{}",
        sync.namespace().unwrap_or_default(),
        sync.name_any()
    );
    let interval = parse_duration(&sync.spec.source.interval).unwrap_or(MAX_BACKOFF);
    let wait = ctx.backoff_of(&key, interval);
    tracing::warn!(sync = %key, error = %error, kind = error.metric_label(), retry_in = ?wait, "sync failed");
    Action::requeue(wait)
}

/// A shard came to this replica: its GitSyncs to reconcile now. One left it: self-heal and the
/// per-sync records forget its GitSyncs (their new holder heals them).
fn shard_changed(
    store: &Store<GitSync>,
    ctx: &Context,
    event: ShardEvent,
) -> Vec<ObjectRef<GitSync>> {
    let Some(gate) = &ctx.options.shards else {
        return Vec::new();
    };
    let (ShardEvent::Acquired(shard) | ShardEvent::Released(shard)) = event;
    let in_shard = store
        .state()
        .into_iter()
        .filter(|sync| crate::resource::shard_of(sync, gate.shards()) == shard);
    match event {
        ShardEvent::Acquired(_) => in_shard.map(|s| ObjectRef::from_obj(s.as_ref())).collect(),
        ShardEvent::Released(_) => {
            for sync in in_shard {
                let key = format!(
                    "{}/{}",
                    sync.namespace().unwrap_or_default(),
                    sync.name_any()
                );
                ctx.healer.forget(&key);
                ctx.forget(&key);
            }
            Vec::new()
        }
    }
}

/// Runs the controller until `shutdown` completes, then lets the reconciles in flight finish.
pub async fn run(
    client: Client,
    config: kube::Config,
    mut options: Options,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<GitSync> = match &options.namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    tracing::info!(
        namespace = options.namespace.as_deref().unwrap_or("*"),
        "watching GitSyncs"
    );
    let pushes = options.pushes.take();
    let shard_events = options.shard_events.take();
    let mut controller = Controller::new(api.clone(), watcher::Config::default());
    // `dependsOn`: a change of a GitSync (its status turning Healthy) re-runs its dependents.
    let store = controller.store();
    controller = controller.watches(api, watcher::Config::default(), move |changed| {
        let ns = changed.metadata.namespace.clone().unwrap_or_default();
        let name = changed.metadata.name.clone().unwrap_or_default();
        store
            .state()
            .into_iter()
            .filter(|s| crate::depends::depends_on(s, &ns, &name))
            .map(|s| ObjectRef::from_obj(s.as_ref()))
            .collect::<Vec<_>>()
    });
    let ctx = Arc::new(Context::new(
        client,
        config,
        options,
        metrics,
        controller.store(),
    ));
    if let Some(pushes) = pushes {
        let (store, push_ctx) = (controller.store(), ctx.clone());
        let triggers = stream::unfold(pushes, |mut rx| async move {
            rx.recv().await.map(|event| (event, rx))
        })
        // Before the first list the store is empty and a push matches nothing: the initial sync
        // of every GitSync fetches anyway. The store's readiness is not awaited here: kube's
        // `wait_until_ready` keeps one waker, so a second waiter (this stream, while the
        // controller's runner waits too) left one of them asleep for good, and every later push
        // queued behind it. A push during start-up showed it (e2e `sync_pull_request`).
        .flat_map(move |event| stream::iter(pushed_syncs(&store, &push_ctx, &event)));
        controller = controller.reconcile_on(triggers);
    }
    if let Some(events) = shard_events {
        let (store, shard_ctx) = (controller.store(), ctx.clone());
        let triggers = stream::unfold(events, |mut rx| async move {
            rx.recv().await.map(|event| (event, rx))
        })
        .flat_map(move |event| stream::iter(shard_changed(&store, &shard_ctx, event)));
        controller = controller.reconcile_on(triggers);
    }
    let healer = ctx.healer.clone();
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            sluice_shared::memory::release_free_heap();
            if let Err(error) = result {
                tracing::debug!(%error, "controller");
            }
        })
        .await;
    healer.shutdown();
    tracing::info!("GitSync controller stopped");
}
