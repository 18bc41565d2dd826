//! Sharding of the image resources over replicas (`--shards N`, see [`sluice_shared::sharding`]).
//!
//! The updater shards **by namespace**, not by object: a namespace's repositories, policies and
//! updates work together. A policy chooses from its repository's last scan, which lives in the
//! memory of the replica that scanned it; an update gathers the chosen images of its namespace's
//! policies and writes blocked tags into them. So all of a namespace's image resources belong to
//! the shard its name hashes to, and one replica works them all.
//!
//! - [`gated`] wraps each controller's reconcile: an object of a shard this replica does not hold
//!   is left alone (the holder works it), and one in a held shard keeps the shard from being let
//!   go until its reconcile ends.
//! - [`follow`] turns the ring's shard changes into work: a shard acquired reconciles its objects
//!   at once; a shard released forgets what memory held of them.
//! - A webhook for an object of another replica's shard is handed to that replica
//!   ([`sluice_shared::sharding::hand_over`]); the reconcile sees the new
//!   `sluice.dev/reconcile-requested-at` value through [`Context::requested`].

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use sluice_shared::sharding::ShardEvent;
use tokio::sync::mpsc;

use super::{Context, Error, key_of};
use crate::resource::{ImagePolicy, ImageRepository, ImageUpdate};

/// The shard of an image resource among `shards`: its namespace's.
pub(crate) fn shard_of<K: ResourceExt>(object: &K, shards: u32) -> u32 {
    sluice_shared::shard::shard_of(&object.namespace().unwrap_or_default(), None, shards)
}

impl Context {
    /// Whether this replica works `object` now: always when not sharded.
    pub(crate) fn works<K: ResourceExt>(&self, object: &K) -> bool {
        self.shards
            .as_ref()
            .is_none_or(|gate| gate.held().contains(&shard_of(object, gate.shards())))
    }

    /// Whether `object`'s `sluice.dev/reconcile-requested-at` annotation holds a value not acted
    /// on yet (a webhook handed over by another replica); remembers it.
    pub(crate) fn requested<K>(&self, object: &K) -> bool
    where
        K: kube::Resource<DynamicType = ()>,
    {
        let key = format!("{} {}", K::kind(&()), key_of(object));
        self.requests.is_new(&key, object)
    }
}

/// `reconcile`, run only for the objects of the shards this replica holds (every object when
/// not sharded); the shard is held open until the reconcile ends.
pub(crate) fn gated<K, F, Fut>(
    reconcile: F,
) -> impl FnMut(Arc<K>, Arc<Context>) -> BoxFuture<'static, Result<Action, Error>>
where
    K: ResourceExt + Send + Sync + 'static,
    F: Fn(Arc<K>, Arc<Context>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    move |object, ctx| {
        let reconcile = reconcile.clone();
        Box::pin(async move {
            let _shard = match &ctx.shards {
                Some(gate) => match gate.enter(shard_of(object.as_ref(), gate.shards())) {
                    Some(guard) => Some(guard),
                    // Another replica's: a shard acquired later reconciles its objects.
                    None => return Ok(Action::await_change()),
                },
                None => None,
            };
            reconcile(object, ctx).await
        })
    }
}

/// The three controllers' views of their objects, and the channels that make them reconcile.
pub(crate) struct Controllers {
    pub repositories: (
        Store<ImageRepository>,
        mpsc::Sender<ObjectRef<ImageRepository>>,
    ),
    pub policies: (Store<ImagePolicy>, mpsc::Sender<ObjectRef<ImagePolicy>>),
    pub updates: (Store<ImageUpdate>, mpsc::Sender<ObjectRef<ImageUpdate>>),
}

/// Follows the ring's shard changes until it stops: the objects of a shard acquired are
/// reconciled at once; what memory held of the objects of a shard released is forgotten (their
/// new holder scans and decides afresh).
pub(crate) async fn follow(
    mut events: mpsc::Receiver<ShardEvent>,
    ctx: Arc<Context>,
    controllers: Controllers,
) {
    let Some(gate) = ctx.shards.clone() else {
        return;
    };
    while let Some(event) = events.recv().await {
        let (ShardEvent::Acquired(shard) | ShardEvent::Released(shard)) = event;
        let acquired = matches!(event, ShardEvent::Acquired(_));
        let in_shard = |ns: Option<String>| {
            sluice_shared::shard::shard_of(&ns.unwrap_or_default(), None, gate.shards()) == shard
        };
        let (store, tx) = &controllers.repositories;
        for repo in store
            .state()
            .into_iter()
            .filter(|r| in_shard(r.namespace()))
        {
            if acquired {
                let _ = tx.send(ObjectRef::from_obj(repo.as_ref())).await;
            } else {
                ctx.state.forget_repository(&key_of(repo.as_ref()));
            }
        }
        let (store, tx) = &controllers.policies;
        if acquired {
            for policy in store
                .state()
                .into_iter()
                .filter(|p| in_shard(p.namespace()))
            {
                let _ = tx.send(ObjectRef::from_obj(policy.as_ref())).await;
            }
        }
        let (store, tx) = &controllers.updates;
        for update in store
            .state()
            .into_iter()
            .filter(|u| in_shard(u.namespace()))
        {
            if acquired {
                let _ = tx.send(ObjectRef::from_obj(update.as_ref())).await;
            } else {
                ctx.state.forget_update(&key_of(update.as_ref()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repository(ns: &str, name: &str, shard_label: Option<&str>) -> ImageRepository {
        let labels = shard_label.map(|l| serde_json::json!({ "sluice.dev/shard": l }));
        serde_json::from_value(serde_json::json!({
            "apiVersion": "sluice.dev/v1alpha1", "kind": "ImageRepository",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"image": "registry.example/shop/web"},
        }))
        .unwrap()
    }

    #[test]
    fn a_namespace_decides_the_shard_whatever_the_name_and_labels() {
        for ns in ["shop", "team-a", "payments-live"] {
            let shard = shard_of(&repository(ns, "web", None), 6);
            assert!(shard < 6);
            assert_eq!(shard_of(&repository(ns, "api", None), 6), shard, "{ns}");
            let other = (shard + 1) % 6;
            let pinned = repository(ns, "worker", Some(&other.to_string()));
            assert_eq!(
                shard_of(&pinned, 6),
                shard,
                "{ns}: the label does not split a namespace"
            );
        }
        let spread: std::collections::BTreeSet<u32> = (0..60)
            .map(|i| shard_of(&repository(&format!("team-{i}"), "web", None), 6))
            .collect();
        assert_eq!(spread.len(), 6, "60 namespaces spread over every shard");
    }
}
