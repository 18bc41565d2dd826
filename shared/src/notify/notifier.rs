//! The shell that sends: the Alerts as a reflector keeps them, a bounded queue fed by
//! [`Notifier::notify`] (never waits: an event is published whether or not a chat is slow), and
//! one worker that sends in order, so a rollout's events arrive as they happened. Per Alert: the
//! same notice within [`DEDUP_WINDOW`] is sent once, at most `ratePerMinute` are sent, and a
//! failed POST is retried a bounded number of times with backoff (a 429's `Retry-After` is
//! honoured up to [`MAX_RETRY_AFTER`]). The Secret is read at each send, so a rotated URL or key
//! takes effect at once; its values are never logged (only the URL's host is).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::mpsc;

use super::alert::{Alert, Notice, wants};
use super::message::{Request, request};

/// The same notice about the same object is sent once within this window.
pub const DEDUP_WINDOW: Duration = Duration::from_secs(300);
/// Attempts per notification, and the wait before the second (doubled after).
const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// Notices waiting to be sent; beyond it a notice is dropped (logged).
const QUEUE: usize = 1024;

/// Sends the events a daemon publishes to the Alerts that want them. Cheap to clone.
#[derive(Clone, Default)]
pub struct Notifier(Option<(mpsc::Sender<Notice>, Arc<str>)>);

impl Notifier {
    /// A notifier that sends nothing (commands and tests without Alerts).
    pub fn disabled() -> Self {
        Notifier(None)
    }

    /// Watches the Alerts of `namespace` (`None`: every namespace) and starts the sender for
    /// the daemon `reporter`. Call from within the runtime.
    pub fn start(client: Client, namespace: Option<&str>, reporter: &str) -> Self {
        let api: Api<Alert> = match namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let (store, writer) = reflector::store();
        let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()))
            .default_backoff()
            .applied_objects();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                if let Err(error) = event {
                    // No Alert CRD, or no right to list Alerts: nothing is sent, nothing fails.
                    tracing::debug!(%error, "watching Alerts");
                }
            }
        });
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(send_all(client, store, rx));
        Notifier(Some((tx, Arc::from(reporter))))
    }

    /// The daemon whose events this sends (`None`: disabled).
    pub fn reporter(&self) -> Option<&str> {
        self.0.as_ref().map(|(_, reporter)| &**reporter)
    }

    /// Queues `notice` for the Alerts that want it; never waits.
    pub fn notify(&self, notice: Notice) {
        let Some((tx, _)) = &self.0 else { return };
        if let Err(error) = tx.try_send(notice) {
            tracing::warn!(%error, "the notification queue is full; a notice is dropped");
        }
    }
}

/// What each Alert was sent lately: for deduplication and the rate limit.
#[derive(Default)]
struct Sent {
    recent: HashMap<(String, Notice), Instant>,
    per_minute: HashMap<String, VecDeque<Instant>>,
}

impl Sent {
    /// Whether `notice` may go to Alert `key` now (and records it if so): not sent within the
    /// window, and under `rate` this minute.
    fn admit(
        &mut self,
        key: &str,
        notice: &Notice,
        rate: u32,
        now: Instant,
    ) -> Result<(), &'static str> {
        self.recent
            .retain(|_, at| now.duration_since(*at) < DEDUP_WINDOW);
        if self.recent.contains_key(&(key.to_owned(), notice.clone())) {
            return Err("duplicate");
        }
        let times = self.per_minute.entry(key.to_owned()).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            times.pop_front();
        }
        if times.len() >= rate as usize {
            return Err("rate_limited");
        }
        times.push_back(now);
        self.recent.insert((key.to_owned(), notice.clone()), now);
        Ok(())
    }
}

async fn send_all(client: Client, alerts: Store<Alert>, mut rx: mpsc::Receiver<Notice>) {
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(http) => http,
        Err(error) => {
            tracing::error!(%error, "no HTTP client for notifications: none will be sent");
            return;
        }
    };
    let mut sent = Sent::default();
    while let Some(notice) = rx.recv().await {
        for alert in alerts.state() {
            let namespace = alert.namespace().unwrap_or_default();
            if !wants(&namespace, &alert.spec, &notice) {
                continue;
            }
            let key = format!("{namespace}/{}", alert.name_any());
            if let Err(why) = sent.admit(&key, &notice, alert.spec.rate_per_minute, Instant::now())
            {
                tracing::debug!(alert = %key, reason = %notice.reason, why, "notice not sent");
                continue;
            }
            send_one(&client, &http, &alert, &namespace, &key, &notice).await;
        }
    }
}

/// Sends `notice` to `alert`'s provider, retrying a bounded number of times; logs the outcome.
async fn send_one(
    client: &Client,
    http: &reqwest::Client,
    alert: &Alert,
    namespace: &str,
    key: &str,
    notice: &Notice,
) {
    let provider = &alert.spec.provider;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = match secrets.get(&provider.secret_ref.name).await {
        Ok(secret) => secret,
        Err(error) => {
            tracing::warn!(alert = %key, secret = %provider.secret_ref.name, %error,
                "cannot read the Alert's Secret; notice not sent");
            return;
        }
    };
    let data = secret.data.unwrap_or_default();
    let text = |k: &str| {
        data.get(k)
            .map(|v| String::from_utf8_lossy(&v.0).trim().to_owned())
    };
    let Some(address) = text("address").filter(|a| !a.is_empty()) else {
        tracing::warn!(alert = %key, secret = %provider.secret_ref.name,
            "the Alert's Secret has no `address`; notice not sent");
        return;
    };
    let host = reqwest::Url::parse(&address)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "an unparsable address".to_owned());
    let key_bytes = text("hmacKey");
    let timestamp = k8s_openapi::jiff::Timestamp::now().to_string();
    let Request { body, headers } = request(
        provider.type_,
        provider.channel.as_deref(),
        key_bytes.as_deref().map(str::as_bytes),
        notice,
        &timestamp,
    );
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        let mut post = http
            .post(&address)
            .header("Content-Type", "application/json")
            .body(body.clone());
        for (name, value) in &headers {
            post = post.header(*name, value);
        }
        let wait = match post.send().await {
            Ok(response) if response.status().is_success() => {
                tracing::info!(alert = %key, %host, reason = %notice.reason, "notification sent");
                return;
            }
            Ok(response) => {
                let status = response.status();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
                if !(status.is_server_error() || status.as_u16() == 429) {
                    tracing::warn!(alert = %key, %host, %status, "the provider refused a notification");
                    return;
                }
                retry_after.unwrap_or(backoff)
            }
            Err(error) => {
                tracing::debug!(alert = %key, %host, error = %error.without_url(), attempt,
                    "sending a notification failed");
                backoff
            }
        };
        if attempt < ATTEMPTS {
            tokio::time::sleep(wait).await;
            backoff *= 2;
        }
    }
    tracing::warn!(alert = %key, %host, reason = %notice.reason, attempts = ATTEMPTS,
        "a notification could not be sent");
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Notifier"
        } else {
            "Notifier(disabled)"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::alert::Severity;

    fn notice(reason: &str) -> Notice {
        Notice {
            kind: "GitSync".into(),
            namespace: "shop".into(),
            name: "storefront".into(),
            severity: Severity::Error,
            reason: reason.into(),
            message: "m".into(),
            reporter: "deploy-synchronizer".into(),
        }
    }

    #[test]
    fn the_same_notice_goes_once_within_the_window_and_at_most_the_rate() {
        let mut sent = Sent::default();
        let t0 = Instant::now();
        assert_eq!(
            sent.admit("shop/a", &notice("HealthTimeout"), 2, t0),
            Ok(())
        );
        assert_eq!(
            sent.admit("shop/a", &notice("HealthTimeout"), 2, t0),
            Err("duplicate")
        );
        // Another Alert takes it too.
        assert_eq!(
            sent.admit("shop/b", &notice("HealthTimeout"), 2, t0),
            Ok(())
        );
        assert_eq!(
            sent.admit("shop/a", &notice("RollbackProposed"), 2, t0),
            Ok(())
        );
        assert_eq!(
            sent.admit("shop/a", &notice("Synced"), 2, t0),
            Err("rate_limited")
        );
        let later = t0 + Duration::from_secs(61);
        assert_eq!(sent.admit("shop/a", &notice("Synced"), 2, later), Ok(()));
        let much_later = t0 + DEDUP_WINDOW + Duration::from_secs(1);
        assert_eq!(
            sent.admit("shop/a", &notice("HealthTimeout"), 2, much_later),
            Ok(())
        );
    }
}
