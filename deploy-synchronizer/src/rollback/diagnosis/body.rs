//! The Markdown of a revert pull request: its title, and its body rendered from a [`Diagnosis`]
//! within [`BODY_LIMIT`].

use super::{CommitFacts, Diagnosis, EVENT_MESSAGE_CHARS, EventFacts, ObjectFacts, PodFacts, cut};
use crate::rollback::Undo;
use crate::status::short;

/// The most a body may hold, in bytes (so in characters too), below GitHub's 65 536.
pub const BODY_LIMIT: usize = 60_000;
/// How long a title may be.
const TITLE_CHARS: usize = 200;

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
    text.push_str(match d.undo {
        Undo::Failed => {
            "---\nProposed by Sluice's Deploy Synchronizer after the revision failed its health check.\n"
        }
        Undo::Revert | Undo::BackTo => {
            "---\nProposed by Sluice's Deploy Synchronizer at a person's request \
             (`deploy-synchronizer rollback`).\n"
        }
    });
    text
}

/// What failed (or what a person asked for), why, and what merging does.
fn verdict(d: &Diagnosis) -> String {
    let revision = code(short(&d.revision));
    let base = code(&d.base);
    match d.undo {
        Undo::Failed => failed_verdict(d, &revision, &base),
        Undo::Revert => format!(
            "## Rollback of {revision}, asked for by hand\n\n\
             **Merging this pull request reverts {revision} on {base}**; Sluice applies the revert \
             like any commit. Closing it without merging leaves {revision} applied. How the \
             cluster is doing now follows.\n\n"
        ),
        Undo::BackTo => format!(
            "## Roll {base} back to {revision}, asked for by hand\n\n\
             **Merging this pull request puts back the tree of {revision} on {base}**, undoing \
             every later commit; Sluice applies it like any commit. Closing it without merging \
             changes nothing. How the cluster is doing now follows.\n\n"
        ),
    }
}

fn failed_verdict(d: &Diagnosis, revision: &str, base: &str) -> String {
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
