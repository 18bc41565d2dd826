//! Polling with a deadline, instead of sleeping and hoping.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `poll` until it returns `Ok`, and returns that value. `Err(why)` means "not yet",
/// with `why` telling what was seen. After `timeout` it panics with `what` and the last `why`.
///
/// ```no_run
/// # async fn example(api: kube::Api<k8s_openapi::api::apps::v1::Deployment>) {
/// use std::time::Duration;
/// let ready = sluice_e2e::wait_until("web to be available", Duration::from_secs(60), || async {
///     let d = api.get("web").await.map_err(|e| e.to_string())?;
///     let available = d.status.as_ref().and_then(|s| s.available_replicas) == Some(2);
///     if available { Ok(d) } else { Err(format!("not yet: {:?}", d.status)) }
/// })
/// .await;
/// # }
/// ```
pub async fn wait_until<T, E, F, Fut>(what: &str, timeout: Duration, mut poll: F) -> T
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let start = Instant::now();
    let mut interval = Duration::from_millis(100);
    loop {
        let last = match poll().await {
            Ok(v) => return v,
            Err(why) => why.to_string(),
        };
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            panic!("timed out after {elapsed:.1?} waiting for {what}; last seen: {last}");
        }
        tokio::time::sleep(interval.min(timeout - elapsed)).await;
        interval = (interval * 2).min(Duration::from_secs(1));
    }
}
