//! What went wrong talking to a forge, said so that a person knows what to check: which API base,
//! which repository or pull request, and the forge's own words. Messages never hold the token:
//! it only ever travels in a header, and [`ForgeError::scrub`] removes it should a forge echo it.

use super::Provider;

/// How long the forge's own message may be in ours.
const MESSAGE_LIMIT: usize = 300;

/// A failed forge operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForgeError {
    /// An unusable git URL, provider, API URL or token, found before any request.
    #[error("forge configuration: {reason}")]
    Config { reason: String },
    /// 401: no token, or one the forge does not accept.
    #[error("the forge refused the token ({status}): {message}")]
    Auth { status: u16, message: String },
    /// 403: the token is accepted but may not do this.
    #[error("the forge denied the request (403): {message}")]
    Forbidden { message: String },
    /// 404: no such repository, pull request, branch or commit (or the token may not see it).
    #[error("{what} not found (404): {message}")]
    NotFound { what: String, message: String },
    /// The request conflicts with the current state (409; also 405, 406, 412 and 423: not
    /// mergeable, already merged, conflicting, locked).
    #[error("the forge refused in the current state: {message}")]
    Conflict { message: String },
    /// The forge rejected the request itself (400, 422 and other 4xx), e.g. a pull request for
    /// the branch exists already, or there is nothing to merge.
    #[error("the forge rejected the request: {message}")]
    Invalid { message: String },
    /// 5xx, or a rate limit (429, or GitHub's 403 "rate limit"): worth trying again later.
    #[error("the forge failed ({status}): {message}")]
    Server { status: u16, message: String },
    /// No answer: connection refused, DNS, TLS, timeout.
    #[error("the forge is unreachable: {message}")]
    Unreachable { message: String },
    /// An answer that is not what the API sends (not JSON, a redirect, missing fields).
    #[error("unexpected answer from the forge: {message}")]
    Protocol { message: String },
}

impl ForgeError {
    /// A CamelCase reason, for Kubernetes conditions and Events.
    pub fn reason(&self) -> &'static str {
        match self {
            ForgeError::Config { .. } => "ForgeConfig",
            ForgeError::Auth { .. } => "ForgeAuth",
            ForgeError::Forbidden { .. } => "ForgeForbidden",
            ForgeError::NotFound { .. } => "ForgeNotFound",
            ForgeError::Conflict { .. } => "ForgeConflict",
            ForgeError::Invalid { .. } => "ForgeInvalid",
            ForgeError::Server { .. } => "ForgeServer",
            ForgeError::Unreachable { .. } => "ForgeUnreachable",
            ForgeError::Protocol { .. } => "ForgeProtocol",
        }
    }

    /// A snake_case name of the kind of failure, for metric labels.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ForgeError::Config { .. } => "config",
            ForgeError::Auth { .. } => "auth",
            ForgeError::Forbidden { .. } => "forbidden",
            ForgeError::NotFound { .. } => "not_found",
            ForgeError::Conflict { .. } => "conflict",
            ForgeError::Invalid { .. } => "invalid",
            ForgeError::Server { .. } => "server",
            ForgeError::Unreachable { .. } => "unreachable",
            ForgeError::Protocol { .. } => "protocol",
        }
    }

    /// Whether the same request may succeed later without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ForgeError::Server { .. } | ForgeError::Unreachable { .. }
        )
    }

    /// The same error with `secret` replaced by `***` in every text.
    pub(super) fn scrub(mut self, secret: &str) -> ForgeError {
        if secret.is_empty() {
            return self;
        }
        let texts = match &mut self {
            ForgeError::Config { reason } => vec![reason],
            ForgeError::NotFound { what, message } => vec![what, message],
            ForgeError::Auth { message, .. }
            | ForgeError::Forbidden { message }
            | ForgeError::Conflict { message }
            | ForgeError::Invalid { message }
            | ForgeError::Server { message, .. }
            | ForgeError::Unreachable { message }
            | ForgeError::Protocol { message } => vec![message],
        };
        for text in texts {
            if text.contains(secret) {
                *text = text.replace(secret, "***");
            }
        }
        self
    }
}

/// Where a request went and what it was about, for messages.
pub(super) struct Context<'a> {
    pub provider: Provider,
    pub api: &'a str,
    pub repo: &'a str,
    /// What the request was about: "pull request #4 of team/config".
    pub what: &'a str,
    pub has_token: bool,
}

/// The error for an answer with a status that is not a success. `location`: the `Location`
/// header of a redirect.
pub(super) fn from_status(
    status: u16,
    body: &[u8],
    location: Option<&str>,
    cx: &Context,
) -> ForgeError {
    let said = forge_message(body);
    let quoted = if said.is_empty() {
        String::new()
    } else {
        format!(" ({said:?})")
    };
    let (api, what) = (cx.api, cx.what);
    let rate_limited =
        status == 429 || (status == 403 && said.to_ascii_lowercase().contains("rate limit"));
    match status {
        _ if rate_limited => ForgeError::Server {
            status,
            message: format!("{api} is rate limiting{quoted}; try again later"),
        },
        401 => ForgeError::Auth {
            status,
            message: format!("{api} answered 401 for {what}{quoted}; {}", auth_hint(cx)),
        },
        403 => ForgeError::Forbidden {
            message: format!(
                "{api} forbade it for {what}{quoted}; the token needs {}",
                token_needs(cx.provider)
            ),
        },
        404 => ForgeError::NotFound {
            what: what.to_string(),
            message: format!("at {api}{quoted}; {}", not_found_hint(cx)),
        },
        405 | 406 | 409 | 412 | 423 => ForgeError::Conflict {
            message: format!("{what} at {api} ({status}){quoted}"),
        },
        500..=599 => ForgeError::Server {
            status,
            message: format!("{api} failed on {what}{quoted}; try again later"),
        },
        300..=399 => ForgeError::Protocol {
            message: format!(
                "{api} redirected {what} ({status}) to {}; set the forge's apiUrl to the \
                 address the API answers at",
                location.unwrap_or("nowhere")
            ),
        },
        400..=499 => ForgeError::Invalid {
            message: format!("{what} at {api} ({status}){quoted}"),
        },
        _ => ForgeError::Protocol {
            message: format!("{api} answered {status} for {what}{quoted}"),
        },
    }
}

fn not_found_hint(cx: &Context) -> String {
    format!(
        "check the repository {} in the git URL, the branches or commit named, the forge's \
         provider ({}) and apiUrl, and that the token can see the repository (a private one \
         answers 404 to a token without access)",
        cx.repo, cx.provider
    )
}

fn auth_hint(cx: &Context) -> &'static str {
    if cx.has_token {
        "check the token in the Secret named by the forge's secretRef (key `token`): it may be \
         expired, revoked or issued by another forge"
    } else {
        "no token is configured: set the forge's secretRef to a Secret with the API token under \
         key `token`"
    }
}

/// What a token must be allowed, per provider.
fn token_needs(provider: Provider) -> &'static str {
    match provider {
        Provider::Gitea => {
            "write access to the repository (scopes write:repository and write:issue)"
        }
        Provider::GitHub => {
            "write access to pull requests, issues and commit statuses (classic scope `repo`, or \
             fine-grained Pull requests, Issues and Commit statuses: write)"
        }
        Provider::GitLab => "the `api` scope and at least the Developer role in the project",
    }
}

/// The error for a request that got no answer.
pub(super) fn unreachable(error: &reqwest::Error, api: &str) -> ForgeError {
    let chain = std::iter::successors(Some(error as &(dyn std::error::Error + 'static)), |e| {
        e.source()
    })
    .map(|e| e.to_string())
    .collect::<Vec<_>>()
    .join(": ");
    let hint = if chain.to_ascii_lowercase().contains("certificate") {
        "the server's TLS certificate is not trusted: give the forge's CA"
    } else if error.is_timeout() {
        "no answer in time: check the network path to the forge"
    } else {
        "check the forge's apiUrl, DNS and the network"
    };
    ForgeError::Unreachable {
        message: format!("{api}: {chain}; {hint}"),
    }
}

/// The forge's own explanation in an error body: `message` (Gitea, GitHub, GitLab; GitLab's may
/// be a list or a map of field errors), GitHub's `errors`, OAuth's `error_description`; plain
/// text as it is; nothing for HTML pages. Whitespace collapsed, at most 300 characters.
pub(super) fn forge_message(body: &[u8]) -> String {
    let text = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(json) => json_message(&json),
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.starts_with('<') {
                String::new()
            } else {
                text.to_string()
            }
        }
    };
    truncate(
        &text.split_whitespace().collect::<Vec<_>>().join(" "),
        MESSAGE_LIMIT,
    )
}

fn json_message(json: &serde_json::Value) -> String {
    let mut parts = Vec::new();
    if let Some(message) = json.get("message") {
        flatten(message, &mut parts);
    }
    for error in json
        .get("errors")
        .and_then(|e| e.as_array())
        .into_iter()
        .flatten()
    {
        match (error.get("message"), error.get("field"), error.get("code")) {
            (Some(message), _, _) => flatten(message, &mut parts),
            (None, Some(field), Some(code)) => parts.push(format!(
                "{}: {}",
                field.as_str().unwrap_or_default(),
                code.as_str().unwrap_or_default()
            )),
            _ => flatten(error, &mut parts),
        }
    }
    if parts.is_empty() {
        for key in ["error_description", "error"] {
            if let Some(text) = json.get(key).and_then(|v| v.as_str()) {
                parts.push(text.to_string());
                break;
            }
        }
    }
    parts.join("; ")
}

fn flatten(value: &serde_json::Value, parts: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) if !s.is_empty() => parts.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| flatten(v, parts)),
        serde_json::Value::Object(fields) => {
            for (field, v) in fields {
                let mut inner = Vec::new();
                flatten(v, &mut inner);
                parts.push(format!("{field}: {}", inner.join(", ")));
            }
        }
        serde_json::Value::Null | serde_json::Value::String(_) => {}
        other => parts.push(other.to_string()),
    }
}

/// At most `limit` characters of `text`, cut on a character boundary, `…` marking a cut.
pub(super) fn truncate(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let kept: String = text.chars().take(limit.saturating_sub(1)).collect();
    format!("{kept}…")
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
