//! The diagnosis a revert pull request carries. The person who reads it is on call and may have
//! no kubectl at hand, so the body says what they would otherwise go and look up: which objects
//! are unhealthy and why, what the containers of their failing pods are doing, the Warning events
//! around them, which commit failed (its `Sluice-Change` trailers name the image bump), and what
//! merging does.
//!
//! Pure: `reconcile::diagnose` gathers the facts; this module reads them off the API's JSON and
//! renders them as Markdown that Gitea and GitHub both display.
//!
//! - **No secrets.** A pod is read field by field — names, images, container states and their
//!   reasons, exit codes, restart counts — never its env, args, or a container's termination
//!   message (which the application writes, and may fill with anything). Event messages are
//!   shown, cut to [`EVENT_MESSAGE_CHARS`].
//! - **Bounded.** GitHub refuses a body over 65 536 characters; [`body`](fn@body) stays within
//!   [`BODY_LIMIT`](body::BODY_LIMIT) by showing fewer pods, events and trailers (each cut list
//!   says how many more there are), and cuts the text only as a last resort.
//!
//! The facts and how they are read are here; [`body`](mod@body) renders them.

mod body;

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use crate::health::Health;
use crate::object::ObjectRef;

pub use body::{body, title};

/// The most of one event's message a body shows.
pub const EVENT_MESSAGE_CHARS: usize = 300;
/// The trailer that names an image bump (the Config Updater's).
pub const CHANGE_TRAILER: &str = "Sluice-Change:";

/// Why a revision is being reverted, as gathered after it failed its health check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnosis {
    /// The failed revision (full id).
    pub revision: String,
    /// The branch the revert is proposed to.
    pub base: String,
    /// The health verdict that triggered the rollback.
    pub reason: String,
    /// The failed commit, when it could be read.
    pub commit: Option<CommitFacts>,
    /// The objects that are not healthy, worst first.
    pub objects: Vec<ObjectFacts>,
    /// The failing pods of the unhealthy workloads.
    pub pods: Vec<PodFacts>,
    /// Warning events of those objects, their ReplicaSets and their pods.
    pub events: Vec<EventFacts>,
    /// What could not be gathered, and why.
    pub notes: Vec<String>,
    /// What the proposal undoes: a failed revision (the default), or what a person asked for.
    pub undo: super::Undo,
}

/// The failed commit, as a person names it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitFacts {
    /// The full id.
    pub id: String,
    pub subject: String,
    /// The author's name (never the email).
    pub author: String,
    /// Its `Sluice-Change:` lines, verbatim.
    pub trailers: Vec<String>,
}

impl CommitFacts {
    /// The facts of commit `id` from its message: the subject as git summarizes it (the first
    /// paragraph on one line) and every `Sluice-Change:` line.
    pub fn from_message(id: &str, author: &str, message: &str) -> Self {
        let subject: Vec<&str> = message
            .lines()
            .map(str::trim)
            .skip_while(|line| line.is_empty())
            .take_while(|line| !line.is_empty())
            .collect();
        let trailers = message
            .lines()
            .map(|line| line.trim_end_matches('\r'))
            .filter(|line| line.starts_with(CHANGE_TRAILER))
            .map(str::to_owned)
            .collect();
        Self {
            id: id.to_owned(),
            subject: subject.join(" "),
            author: author.to_owned(),
            trailers,
        }
    }

    /// What each trailer bumped to, as an image reference: `127.0.0.1:5000/demo/web:1.1.0`.
    pub fn versions(&self) -> Vec<String> {
        let mut versions: Vec<String> = Vec::new();
        for trailer in &self.trailers {
            let field = |key: &str| {
                trailer
                    .split(' ')
                    .find_map(|token| token.strip_prefix(key)?.strip_prefix('='))
            };
            let Some(new) = field("new").filter(|new| !new.is_empty()) else {
                continue;
            };
            // A digest has a `:` (`sha256:…`), a tag never does.
            let version = match field("image") {
                Some(image) if new.starts_with("sha256:") => format!("{image}@{new}"),
                Some(image) => format!("{image}:{new}"),
                None => new.to_owned(),
            };
            if !versions.contains(&version) {
                versions.push(version);
            }
        }
        versions
    }
}

/// One object that is not healthy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectFacts {
    pub kind: String,
    /// Empty for a cluster-scoped object.
    pub namespace: String,
    pub name: String,
    /// `Degraded`, `Progressing`…
    pub health: String,
    pub message: String,
}

impl ObjectFacts {
    pub fn of(id: &ObjectRef, health: &Health) -> Self {
        Self {
            kind: id.kind.clone(),
            namespace: id.namespace.clone(),
            name: id.name.clone(),
            health: health.status.to_string(),
            message: health.message.clone(),
        }
    }
}

/// A failing pod of an unhealthy workload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodFacts {
    pub namespace: String,
    pub name: String,
    /// The workload it belongs to, e.g. `Deployment/web`.
    pub owner: String,
    /// `Running`, or with the pod's reason: `Failed (Evicted)`.
    pub phase: String,
    /// Init containers first.
    pub containers: Vec<ContainerFacts>,
}

/// One container of a failing pod. Nothing else of a container is ever read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerFacts {
    /// The container's name; `migrate (init)` for an init container.
    pub name: String,
    pub image: String,
    /// `waiting`, `running`, `running, not ready`, `terminated` or `not started`.
    pub state: String,
    /// Why it waits (`CrashLoopBackOff`) or how it terminated (`Error, exit code 1`).
    pub reason: Option<String>,
    /// How it last terminated: `Error, exit code 1`.
    pub last_termination: Option<String>,
    pub restarts: i64,
}

impl PodFacts {
    /// The facts of `pod` (as the API returns it), which belongs to `owner`.
    pub fn from_pod(pod: &Value, owner: &str) -> Self {
        let phase = text(pod, "/status/phase").unwrap_or("Unknown");
        let phase = match text(pod, "/status/reason") {
            Some(reason) => format!("{phase} ({reason})"),
            None => phase.to_owned(),
        };
        let mut containers = Vec::new();
        for (statuses, specs, init) in [
            (
                "/status/initContainerStatuses",
                "/spec/initContainers",
                true,
            ),
            ("/status/containerStatuses", "/spec/containers", false),
        ] {
            let statuses = list(pod, statuses);
            containers.extend(
                statuses
                    .iter()
                    .map(|s| ContainerFacts::from_status(s, init)),
            );
            // Containers the kubelet reports nothing of yet: their name and image only.
            let unreported = list(pod, specs).iter().filter(|spec| {
                let name = text(spec, "/name");
                !statuses.iter().any(|status| text(status, "/name") == name)
            });
            containers.extend(unreported.map(|spec| ContainerFacts {
                name: container_name(spec, init),
                image: text(spec, "/image").unwrap_or("?").to_owned(),
                state: "not started".to_owned(),
                ..ContainerFacts::default()
            }));
        }
        Self {
            namespace: text(pod, "/metadata/namespace").unwrap_or("").to_owned(),
            name: text(pod, "/metadata/name").unwrap_or("?").to_owned(),
            owner: owner.to_owned(),
            phase,
            containers,
        }
    }
}

impl ContainerFacts {
    /// The facts of one entry of a pod's `containerStatuses` (or `initContainerStatuses`).
    fn from_status(status: &Value, init: bool) -> Self {
        let (state, reason) = if let Some(waiting) = status.pointer("/state/waiting") {
            (
                "waiting".to_owned(),
                text(waiting, "/reason").map(str::to_owned),
            )
        } else if let Some(terminated) = status.pointer("/state/terminated") {
            ("terminated".to_owned(), Some(termination(terminated)))
        } else if status.pointer("/state/running").is_some() {
            let ready = status.get("ready").and_then(Value::as_bool) == Some(true);
            let state = if ready {
                "running"
            } else {
                "running, not ready"
            };
            (state.to_owned(), None)
        } else {
            ("unknown".to_owned(), None)
        };
        Self {
            name: container_name(status, init),
            image: text(status, "/image").unwrap_or("?").to_owned(),
            state,
            reason,
            last_termination: status.pointer("/lastState/terminated").map(termination),
            restarts: status
                .get("restartCount")
                .and_then(Value::as_i64)
                .unwrap_or(0),
        }
    }
}

fn container_name(container: &Value, init: bool) -> String {
    let name = text(container, "/name").unwrap_or("?");
    if init {
        format!("{name} (init)")
    } else {
        name.to_owned()
    }
}

/// `Error, exit code 1` from a container state's `terminated` (its message is never read).
fn termination(terminated: &Value) -> String {
    let code = terminated.get("exitCode").and_then(Value::as_i64);
    match (text(terminated, "/reason"), code) {
        (Some(reason), Some(code)) => format!("{reason}, exit code {code}"),
        (Some(reason), None) => reason.to_owned(),
        (None, Some(code)) => format!("exit code {code}"),
        (None, None) => "terminated".to_owned(),
    }
}

/// One Warning event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFacts {
    /// What it is about: `Pod/web-84b7f6c5d9-x2kq7`.
    pub object: String,
    pub reason: String,
    /// Cut to [`EVENT_MESSAGE_CHARS`].
    pub message: String,
    /// How many times it happened.
    pub count: i64,
    /// When it last happened (RFC 3339).
    pub last_seen: Option<String>,
}

impl EventFacts {
    /// The facts of a core/v1 Event (the `events.k8s.io` field names are read too).
    pub fn from_event(event: &Value) -> Self {
        let about = event
            .get("involvedObject")
            .or_else(|| event.get("regarding"))
            .unwrap_or(&Value::Null);
        let message = text(event, "/message").or_else(|| text(event, "/note"));
        let count = ["/count", "/deprecatedCount", "/series/count"]
            .iter()
            .filter_map(|path| event.pointer(path)?.as_i64())
            .max()
            .unwrap_or(1);
        let last_seen = [
            "/lastTimestamp",
            "/deprecatedLastTimestamp",
            "/series/lastObservedTime",
            "/eventTime",
            "/firstTimestamp",
            "/metadata/creationTimestamp",
        ]
        .iter()
        .find_map(|path| text(event, path).filter(|t| !t.is_empty()));
        Self {
            object: format!(
                "{}/{}",
                text(about, "/kind").unwrap_or("?"),
                text(about, "/name").unwrap_or("?")
            ),
            reason: text(event, "/reason").unwrap_or("").to_owned(),
            message: cut(message.unwrap_or("").trim(), EVENT_MESSAGE_CHARS),
            count,
            last_seen: last_seen.map(str::to_owned),
        }
    }

    /// When it last happened, for ordering; `None` sorts oldest.
    fn seen_at(&self) -> Option<Timestamp> {
        self.last_seen.as_deref()?.parse().ok()
    }
}

/// At most `chars` characters of `text`, the last an ellipsis when cut.
fn cut(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer)?.as_str()
}

fn list<'a>(value: &'a Value, pointer: &str) -> &'a [Value] {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
