//! What is POSTed for one notice, per provider: pure, so each shape is tested without a server.

use serde_json::{Value, json};

use super::alert::{Notice, ProviderType, Severity};

/// The header carrying a generic webhook body's signature.
pub const SIGNATURE_HEADER: &str = "X-Sluice-Signature";

/// One request to a provider.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub body: Vec<u8>,
    /// Besides `Content-Type: application/json`.
    pub headers: Vec<(&'static str, String)>,
}

/// `Kind namespace/name: Reason`, the line a person scans.
pub fn title(notice: &Notice) -> String {
    format!(
        "{} {}/{}: {}",
        notice.kind, notice.namespace, notice.name, notice.reason
    )
}

/// The body (and headers) of `notice` for a provider of `type_`; `hmac_key` signs a generic
/// body; `timestamp` is RFC 3339.
pub fn request(
    type_: ProviderType,
    channel: Option<&str>,
    hmac_key: Option<&[u8]>,
    notice: &Notice,
    timestamp: &str,
) -> Request {
    let error = notice.severity == Severity::Error;
    let body: Value = match type_ {
        ProviderType::Slack => {
            let mut body = json!({
                "username": "sluice",
                "text": title(notice),
                "attachments": [{
                    "color": if error { "danger" } else { "good" },
                    "title": title(notice),
                    "text": notice.message,
                    "footer": notice.reporter,
                    "ts": timestamp,
                }],
            });
            if let Some(channel) = channel {
                body["channel"] = channel.into();
            }
            body
        }
        ProviderType::Msteams => json!({
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": title(notice),
            "themeColor": if error { "d93025" } else { "1e8e3e" },
            "title": title(notice),
            "text": notice.message,
            "sections": [{"facts": [
                {"name": "severity", "value": notice.severity.as_str()},
                {"name": "reported by", "value": notice.reporter},
                {"name": "time", "value": timestamp},
            ]}],
        }),
        ProviderType::Discord => json!({
            "username": "sluice",
            "embeds": [{
                "title": title(notice),
                "description": notice.message,
                "color": if error { 0xd9_30_25 } else { 0x1e_8e_3e },
                "footer": {"text": notice.reporter},
                "timestamp": timestamp,
            }],
        }),
        ProviderType::Generic => json!({
            "involvedObject": {
                "kind": notice.kind,
                "namespace": notice.namespace,
                "name": notice.name,
            },
            "severity": notice.severity.as_str(),
            "reason": notice.reason,
            "message": notice.message,
            "reportingController": notice.reporter,
            "timestamp": timestamp,
        }),
    };
    let body = serde_json::to_vec(&body).unwrap_or_default();
    let mut headers = Vec::new();
    if let (ProviderType::Generic, Some(key)) = (type_, hmac_key) {
        headers.push((SIGNATURE_HEADER, sign(key, &body)));
    }
    Request { body, headers }
}

/// `sha256=<hex HMAC-SHA256 of body under key>`, as GitHub signs its webhooks (the same
/// function the webhook receivers' tests sign with).
pub fn sign(key: &[u8], body: &[u8]) -> String {
    crate::webhook::sign_hmac_sha256(key, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeout() -> Notice {
        Notice {
            kind: "GitSync".into(),
            namespace: "shop".into(),
            name: "storefront".into(),
            severity: Severity::Error,
            reason: "HealthTimeout".into(),
            message: "not healthy within 60s: Deployment shop/storefront: Degraded".into(),
            reporter: "deploy-synchronizer".into(),
        }
    }

    fn json_of(request: &Request) -> Value {
        serde_json::from_slice(&request.body).unwrap()
    }

    const AT: &str = "2026-12-04T10:00:00Z";

    #[test]
    fn each_provider_gets_its_own_shape() {
        let notice = timeout();
        let slack = request(ProviderType::Slack, Some("#deploys"), None, &notice, AT);
        let slack = json_of(&slack);
        assert_eq!(slack["channel"], "#deploys");
        assert_eq!(slack["attachments"][0]["color"], "danger");
        assert_eq!(slack["text"], "GitSync shop/storefront: HealthTimeout");

        let teams = json_of(&request(ProviderType::Msteams, None, None, &notice, AT));
        assert_eq!(teams["@type"], "MessageCard");
        assert_eq!(teams["text"], notice.message);

        let discord = json_of(&request(ProviderType::Discord, None, None, &notice, AT));
        assert_eq!(discord["embeds"][0]["description"], notice.message);
        assert_eq!(discord["embeds"][0]["color"], 0xd93025);

        let generic = request(ProviderType::Generic, None, None, &notice, AT);
        assert!(generic.headers.is_empty(), "unsigned without a key");
        let body = json_of(&generic);
        assert_eq!(body["involvedObject"]["name"], "storefront");
        assert_eq!(body["severity"], "error");
        assert_eq!(body["reason"], "HealthTimeout");
    }

    #[test]
    fn a_generic_body_is_signed_with_the_key() {
        let signed = request(ProviderType::Generic, None, Some(b"s3cret"), &timeout(), AT);
        let (name, value) = &signed.headers[0];
        assert_eq!(*name, SIGNATURE_HEADER);
        assert_eq!(*value, sign(b"s3cret", &signed.body));
        // The same signature the webhook receivers verify.
        let hex = value.trim_start_matches("sha256=");
        assert_eq!(hex.len(), 64);
        assert!(crate::webhook::verify_hmac_sha256(b"s3cret", &signed.body, value).is_ok());
        // Slack and the others are never given the key.
        let slack = request(ProviderType::Slack, None, Some(b"s3cret"), &timeout(), AT);
        assert!(slack.headers.is_empty());
    }
}
