//! The `Alert` resource: which events of which Sluice objects go to which chat or webhook, and
//! the pure decision of whether one event is for one Alert.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Sends the events of Sluice's objects in this namespace (GitSyncs, ImageUpdates,
/// ImagePolicies, ImageRepositories) to a chat or a webhook: a sync failed, health degraded, a
/// rollback proposed, a bump pushed, a pull request opened, a tag blocked. Each daemon sends the
/// events it publishes, in order, deduplicated (the same event about the same object within
/// 5 minutes is sent once), at most `ratePerMinute`, retried with backoff.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "sluice.dev",
    version = "v1alpha1",
    kind = "Alert",
    namespaced,
    category = "sluice",
    printcolumn = r#"{"name":"Provider","type":"string","jsonPath":".spec.provider.type"}"#,
    printcolumn = r#"{"name":"Severity","type":"string","jsonPath":".spec.eventSeverity"}"#,
    printcolumn = r#"{"name":"Suspended","type":"boolean","jsonPath":".spec.suspend"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct AlertSpec {
    /// Where the events go.
    pub provider: Provider,
    /// Whose events: objects of this namespace by kind and name (`*`, the default: any name).
    pub event_sources: Vec<EventSource>,
    /// `info`: every event; `error`: Warning events only. Default `info`.
    #[serde(default)]
    pub event_severity: Severity,
    /// Only events with one of these reasons (`HealthTimeout`, `RollbackProposed`,
    /// `PullRequestOpened`…). Empty: every reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// At most this many notifications a minute; the rest are dropped (each logged). Default 30.
    #[serde(default = "default_rate")]
    pub rate_per_minute: u32,
    /// Send nothing while true.
    #[serde(default)]
    pub suspend: bool,
}

fn default_rate() -> u32 {
    30
}

/// A chat or webhook to send to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Provider {
    #[serde(rename = "type")]
    pub type_: ProviderType,
    /// A Secret in this namespace: key `address`, the URL to POST to (a Slack, Teams or Discord
    /// webhook URL holds its token: it is never logged); for `generic`, key `hmacKey` signs each
    /// body: header `X-Sluice-Signature: sha256=<hex HMAC-SHA256 of the body>`.
    pub secret_ref: SecretName,
    /// Slack: the channel to post in (else the webhook's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

/// A Secret of the Alert's namespace, by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretName {
    pub name: String,
}

/// The kinds of provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderType {
    Slack,
    /// Microsoft Teams (an incoming webhook: a MessageCard).
    Msteams,
    Discord,
    /// A JSON body (Flux's notification shape), signed when the Secret has `hmacKey`.
    Generic,
}

/// Objects whose events an Alert sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EventSource {
    /// `GitSync`, `ImageUpdate`, `ImagePolicy` or `ImageRepository`.
    pub kind: String,
    /// A name, or `*` (the default) for every object of the kind.
    #[serde(default = "any_name")]
    pub name: String,
}

fn any_name() -> String {
    "*".to_owned()
}

/// How severe an event is: a Normal event is `info`, a Warning `error`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Info,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Error => "error",
        }
    }
}

/// One event about one object, as an Alert sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Notice {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub severity: Severity,
    pub reason: String,
    pub message: String,
    /// The daemon that published it.
    pub reporter: String,
}

/// Whether `notice` goes to the Alert `spec` of `namespace`.
pub fn wants(namespace: &str, spec: &AlertSpec, notice: &Notice) -> bool {
    !spec.suspend
        && notice.namespace == namespace
        && (spec.event_severity == Severity::Info || notice.severity == Severity::Error)
        && (spec.reasons.is_empty() || spec.reasons.contains(&notice.reason))
        && spec.event_sources.iter().any(|source| {
            source.kind == notice.kind && (source.name == "*" || source.name == notice.name)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(value: serde_json::Value) -> AlertSpec {
        serde_json::from_value(value).unwrap()
    }

    fn notice(kind: &str, name: &str, severity: Severity, reason: &str) -> Notice {
        Notice {
            kind: kind.into(),
            namespace: "shop".into(),
            name: name.into(),
            severity,
            reason: reason.into(),
            message: "m".into(),
            reporter: "deploy-synchronizer".into(),
        }
    }

    #[test]
    fn an_alert_takes_the_events_of_its_sources_at_its_severity() {
        let on_call = spec(serde_json::json!({
            "provider": {"type": "slack", "secretRef": {"name": "slack"}},
            "eventSources": [{"kind": "GitSync"}, {"kind": "ImageUpdate", "name": "web"}],
            "eventSeverity": "error",
        }));
        assert_eq!(on_call.rate_per_minute, 30);
        let timeout = notice("GitSync", "storefront", Severity::Error, "HealthTimeout");
        assert!(wants("shop", &on_call, &timeout));
        assert!(!wants("other", &on_call, &timeout), "another namespace");
        let synced = notice("GitSync", "storefront", Severity::Info, "Synced");
        assert!(!wants("shop", &on_call, &synced), "info below error");
        let bump = notice("ImageUpdate", "web", Severity::Error, "PushFailed");
        assert!(wants("shop", &on_call, &bump));
        let other = notice("ImageUpdate", "api", Severity::Error, "PushFailed");
        assert!(!wants("shop", &on_call, &other), "not a source");

        let mut chatty = on_call.clone();
        chatty.event_severity = Severity::Info;
        chatty.reasons = vec!["Synced".into()];
        assert!(wants("shop", &chatty, &synced));
        assert!(!wants("shop", &chatty, &timeout), "reason not listed");
        chatty.suspend = true;
        assert!(!wants("shop", &chatty, &synced));
    }
}
