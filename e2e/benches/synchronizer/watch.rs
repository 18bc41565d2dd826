//! When an object reached a state, as a watch from a known `resourceVersion` sees it: started
//! before the action it times, so no event is missed and no polling interval is added.

use std::fmt::Debug;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{WatchEvent, WatchParams};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;

/// A state an object may reach.
pub type Step<K> = Box<dyn Fn(&K) -> bool + Send + Sync>;

/// Watches object `name` from `resource_version` and returns when each of `steps` first held,
/// in order (a step is looked for only after the previous one held). Gives up after `within`.
pub fn spawn<K>(
    api: Api<K>,
    name: &str,
    resource_version: String,
    steps: Vec<Step<K>>,
    within: Duration,
) -> JoinHandle<Result<Vec<Instant>, String>>
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + 'static,
{
    let name = name.to_owned();
    tokio::spawn(async move {
        let work = async {
            let params = WatchParams::default()
                .fields(&format!("metadata.name={name}"))
                .timeout(within.as_secs().clamp(1, 290) as u32);
            let mut stream = api
                .watch(&params, &resource_version)
                .await
                .map_err(|e| format!("watching {name}: {e}"))?
                .boxed();
            let mut seen = Vec::with_capacity(steps.len());
            while seen.len() < steps.len() {
                let event = stream
                    .next()
                    .await
                    .ok_or_else(|| format!("the watch of {name} ended after {seen:?} steps"))?
                    .map_err(|e| format!("watching {name}: {e}"))?;
                let at = Instant::now();
                match event {
                    WatchEvent::Added(object) | WatchEvent::Modified(object) => {
                        if steps[seen.len()](&object) {
                            seen.push(at);
                        }
                    }
                    WatchEvent::Error(e) => return Err(format!("watching {name}: {e:?}")),
                    WatchEvent::Deleted(_) | WatchEvent::Bookmark(_) => {}
                }
            }
            Ok(seen)
        };
        tokio::time::timeout(within, work)
            .await
            .map_err(|_| format!("{name}: not seen within {within:?}"))?
    })
}

/// Another field manager, `bench-drift`, sets `key` of the ConfigMap `name` to `value`: the drift
/// self-heal is to undo.
pub async fn drift(
    maps: &Api<k8s_openapi::api::core::v1::ConfigMap>,
    name: &str,
    key: &str,
    value: &str,
) {
    let params = kube::api::PatchParams {
        field_manager: Some("bench-drift".into()),
        ..Default::default()
    };
    let patch = serde_json::json!({"data": {key: value}});
    maps.patch(name, &params, &kube::api::Patch::Merge(patch))
        .await
        .expect("the drifting edit");
}
