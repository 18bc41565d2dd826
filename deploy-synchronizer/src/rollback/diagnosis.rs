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
//! - **Bounded.** GitHub refuses a body over 65 536 characters; [`body`] stays within
//!   [`BODY_LIMIT`] by showing fewer pods, events and trailers (each cut list says how many more
//!   there are), and cuts the text only as a last resort.

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use crate::health::Health;
use crate::object::ObjectRef;
use crate::status::short;

/// The most a body may hold, in bytes (so in characters too), below GitHub's 65 536.
pub const BODY_LIMIT: usize = 60_000;
/// The most of one event's message a body shows.
pub const EVENT_MESSAGE_CHARS: usize = 300;
/// How long a title may be.
const TITLE_CHARS: usize = 200;
/// The trailer that names an image bump (the Config Updater's).
const CHANGE_TRAILER: &str = "Sluice-Change:";

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

/// The pull request's title: `Revert "<subject>"`, at most [`TITLE_CHARS`] characters.
pub fn title(subject: &str) -> String {
    let subject = subject.lines().next().unwrap_or("").trim();
    let room = TITLE_CHARS - "Revert \"\"".len();
    format!("Revert \"{}\"", cut(subject, room))
}

/// How much of each list a rendering shows.
#[derive(Clone, Copy, Debug)]
struct Shown {
    objects: usize,
    pods: usize,
    events_per_object: usize,
    trailers: usize,
    notes: usize,
}

/// Each tried in turn until the body fits in [`BODY_LIMIT`].
const SHOWN: [Shown; 4] = [
    Shown {
        objects: 50,
        pods: usize::MAX,
        events_per_object: 10,
        trailers: usize::MAX,
        notes: 50,
    },
    Shown {
        objects: 30,
        pods: 20,
        events_per_object: 5,
        trailers: 50,
        notes: 20,
    },
    Shown {
        objects: 20,
        pods: 5,
        events_per_object: 2,
        trailers: 20,
        notes: 10,
    },
    Shown {
        objects: 10,
        pods: 0,
        events_per_object: 0,
        trailers: 5,
        notes: 5,
    },
];

/// The pull request's body: the diagnosis in Markdown, at most [`BODY_LIMIT`] bytes.
pub fn body(d: &Diagnosis) -> String {
    let mut text = String::new();
    for shown in SHOWN {
        text = render(d, shown);
        if text.len() <= BODY_LIMIT {
            return text;
        }
    }
    let note = "\n\n… (cut: the diagnosis is too long for a pull request)\n";
    let mut end = BODY_LIMIT - note.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(note);
    text
}

fn render(d: &Diagnosis, shown: Shown) -> String {
    let sections = [
        verdict(d),
        objects(&d.objects, shown),
        pods(&d.pods, shown),
        events(&d.events, shown),
        commit(d, shown),
        notes(&d.notes, shown),
    ];
    let mut text: String = sections.into_iter().filter(|s| !s.is_empty()).collect();
    text.push_str(
        "---\nProposed by Sluice's Deploy Synchronizer after the revision failed its health check.\n",
    );
    text
}

/// What failed, why, and what merging does.
fn verdict(d: &Diagnosis) -> String {
    let revision = code(short(&d.revision));
    let base = code(&d.base);
    let mut text = format!("## Revision {revision} did not become healthy\n\n");
    text.push_str(&format!(
        "Sluice applied {revision} from {base} and it failed its health check:\n\n"
    ));
    for line in cut(d.reason.trim(), 2000).lines().map(inline) {
        let gap = if line.is_empty() { "" } else { " " };
        text.push_str(&format!(">{gap}{line}\n"));
    }
    text.push_str(&format!(
        "\n**Merging this pull request reverts {revision} on {base}**; Sluice applies the revert \
         like any commit"
    ));
    let versions = d.commit.as_ref().map(CommitFacts::versions);
    match versions.as_deref() {
        Some([]) => text.push_str(
            ". The failed commit names no image bump (no `Sluice-Change` trailer), so the \
             Config Updater has nothing to block.",
        ),
        Some(versions) => {
            let versions: Vec<String> = versions.iter().map(|v| code(v)).collect();
            text.push_str(&format!(
                ", and the Config Updater will not propose {} again.",
                versions.join(", ")
            ));
        }
        None => text.push('.'),
    }
    text.push_str(&format!(
        " Closing it without merging leaves {revision} applied.\n\n"
    ));
    text
}

fn objects(objects: &[ObjectFacts], shown: Shown) -> String {
    if objects.is_empty() {
        return String::new();
    }
    let mut text = "### Unhealthy objects\n\n".to_owned();
    for o in objects.iter().take(shown.objects) {
        let name = qualified(&o.namespace, &o.name);
        text.push_str(&format!(
            "- **{} {}**: {}",
            inline(&o.kind),
            inline(&name),
            o.health
        ));
        if !o.message.is_empty() {
            text.push_str(&format!(" — {}", inline(&cut(&o.message, 1000))));
        }
        text.push('\n');
    }
    more(&mut text, objects.len(), shown.objects, "unhealthy objects");
    text.push('\n');
    text
}

fn pods(pods: &[PodFacts], shown: Shown) -> String {
    if pods.is_empty() {
        return String::new();
    }
    let mut text = "### Failing pods\n\n".to_owned();
    for pod in pods.iter().take(shown.pods) {
        text.push_str(&format!(
            "#### Pod {} — {}, of {}\n\n",
            inline(&qualified(&pod.namespace, &pod.name)),
            inline(&pod.phase),
            inline(&pod.owner)
        ));
        text.push_str("| Container | Image | State | Last termination | Restarts |\n");
        text.push_str("| --- | --- | --- | --- | --- |\n");
        for c in &pod.containers {
            let state = match &c.reason {
                Some(reason) => format!("{}: {reason}", c.state),
                None => c.state.clone(),
            };
            text.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                cell_code(&c.name),
                cell_code(&c.image),
                inline(&state),
                inline(c.last_termination.as_deref().unwrap_or("—")),
                c.restarts
            ));
        }
        text.push('\n');
    }
    if pods.len() > shown.pods {
        let left = pods.len() - shown.pods;
        text.push_str(&format!("… and {left} more failing pods\n\n"));
    }
    text
}

/// Grouped by object (the one with the newest event first), newest first within each.
fn events(events: &[EventFacts], shown: Shown) -> String {
    if events.is_empty() {
        return String::new();
    }
    let mut sorted: Vec<&EventFacts> = events.iter().collect();
    sorted.sort_by_key(|e| std::cmp::Reverse(e.seen_at()));
    let mut groups: Vec<(&str, Vec<&EventFacts>)> = Vec::new();
    for event in sorted {
        match groups
            .iter_mut()
            .find(|(object, _)| *object == event.object)
        {
            Some((_, group)) => group.push(event),
            None => groups.push((&event.object, vec![event])),
        }
    }
    let mut text = "### Warning events\n\n".to_owned();
    for (object, group) in groups.iter().take(shown.objects) {
        text.push_str(&format!("#### {}\n\n", inline(object)));
        for e in group.iter().take(shown.events_per_object) {
            let seen = e.last_seen.as_deref().map_or("—".to_owned(), code);
            text.push_str(&format!(
                "- {seen} **{}** ×{}: {}\n",
                inline(&e.reason),
                e.count,
                inline(&cut(&e.message, EVENT_MESSAGE_CHARS))
            ));
        }
        let what = format!("Warning events of {object}");
        more(
            &mut text,
            group.len(),
            shown.events_per_object,
            &inline(&what),
        );
        text.push('\n');
    }
    if groups.len() > shown.objects {
        let left = groups.len() - shown.objects;
        text.push_str(&format!(
            "… and {left} more objects with Warning events\n\n"
        ));
    }
    text
}

fn commit(d: &Diagnosis, shown: Shown) -> String {
    let mut text = "### The failed commit\n\n".to_owned();
    let Some(commit) = &d.commit else {
        text.push_str(&format!(
            "- Commit: {} (its message could not be read)\n\n",
            code(&d.revision)
        ));
        return text;
    };
    text.push_str(&format!(
        "- Commit: {} ({})\n- Subject: {}\n- Author: {}\n\n",
        code(short(&commit.id)),
        code(&commit.id),
        inline(&cut(&commit.subject, 500)),
        inline(&cut(&commit.author, 200))
    ));
    if !commit.trailers.is_empty() {
        let lines: Vec<&str> = commit
            .trailers
            .iter()
            .take(shown.trailers)
            .map(String::as_str)
            .collect();
        text.push_str(&fence(&lines.join("\n")));
        more(&mut text, commit.trailers.len(), shown.trailers, "trailers");
        text.push('\n');
    }
    text
}

fn notes(notes: &[String], shown: Shown) -> String {
    if notes.is_empty() {
        return String::new();
    }
    let mut text = "### Not gathered\n\n".to_owned();
    for note in notes.iter().take(shown.notes) {
        text.push_str(&format!("- {}\n", inline(&cut(note, 500))));
    }
    more(&mut text, notes.len(), shown.notes, "notes");
    text.push('\n');
    text
}

/// `… and N more <what>` when a list of `total` was cut to `shown`.
fn more(text: &mut String, total: usize, shown: usize, what: &str) {
    if total > shown {
        text.push_str(&format!("\n… and {} more {what}\n", total - shown));
    }
}

fn qualified(namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        name.to_owned()
    } else {
        format!("{namespace}/{name}")
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

/// Free text on one line, with nothing Markdown or HTML would read as markup.
fn inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        for c in word.chars() {
            if "\\`*_<>[]|#~!".contains(c) {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

/// A code span of `text` on one line, whatever backticks it holds.
fn code(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let ticks = "`".repeat(longest_run(&text, '`') + 1);
    if text.contains('`') {
        format!("{ticks} {text} {ticks}")
    } else {
        format!("{ticks}{text}{ticks}")
    }
}

/// A code span in a table cell: GitHub and Gitea split cells at a `|` even inside one.
fn cell_code(text: &str) -> String {
    code(text).replace('|', "\\|")
}

/// A fenced block of `text`, verbatim, whatever backticks it holds.
fn fence(text: &str) -> String {
    let ticks = "`".repeat(longest_run(text, '`').max(2) + 1);
    format!("{ticks}text\n{text}\n{ticks}\n")
}

fn longest_run(text: &str, c: char) -> usize {
    let (mut longest, mut run) = (0, 0);
    for ch in text.chars() {
        run = if ch == c { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
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
#[path = "diagnosis_tests.rs"]
mod tests;
