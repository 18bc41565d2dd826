//! Commit messages and their trailers (grammar in the module doc of `writeback`), and the
//! changes that a person's `git revert` rolled back.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::Change;
use crate::edit::PolicyId;

const TRAILER: &str = "Sluice-Change: ";
/// How every change trailer line starts.
pub(crate) const TRAILER_PREFIX: &str = TRAILER;
const CHANGES: &str = "{{changes}}";

/// One change as a commit's trailer names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrailerChange {
    pub policy: PolicyId,
    pub file: String,
    pub image: String,
    pub old: String,
    pub new: String,
}

impl TrailerChange {
    /// The tag of `new`, when it has one (`1.4.3` of `1.4.3@sha256:…`; none for a digest).
    pub fn new_tag(&self) -> Option<&str> {
        tag_of(&self.new)
    }

    pub fn old_tag(&self) -> Option<&str> {
        tag_of(&self.old)
    }
}

fn tag_of(version: &str) -> Option<&str> {
    let tag = version.split_once('@').map_or(version, |(tag, _)| tag);
    (!tag.is_empty() && !tag.contains([':', '/'])).then_some(tag)
}

impl From<&Change> for TrailerChange {
    fn from(c: &Change) -> Self {
        TrailerChange {
            policy: c.policy.clone(),
            file: c.file.clone(),
            image: c.image.clone(),
            old: c.old.clone(),
            new: c.new.clone(),
        }
    }
}

impl fmt::Display for TrailerChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{TRAILER}policy={}/{} file={} image={} old={} new={}",
            self.policy.namespace,
            self.policy.name,
            encode(&self.file),
            encode(&self.image),
            encode(&self.old),
            encode(&self.new)
        )
    }
}

/// The commit message: `template` with `{{changes}}` replaced by one line per change,
/// `file: image old → new` (sorted, each distinct line once), then a blank line and one trailer
/// per distinct change.
pub fn commit_message(template: &str, changes: &[Change]) -> String {
    let lines: BTreeSet<String> = changes
        .iter()
        .map(|c| format!("{}: {} {} → {}", c.file, c.image, c.old, c.new))
        .collect();
    let lines: Vec<String> = lines.into_iter().collect();
    let body = template.replace(CHANGES, &lines.join("\n"));
    let trailers: BTreeSet<String> = changes
        .iter()
        .map(|c| TrailerChange::from(c).to_string())
        .collect();
    let mut message = body.trim_end().to_string();
    if message.is_empty() {
        message.push_str("Update images");
    }
    message.push_str("\n\n");
    for t in trailers {
        message.push_str(&t);
        message.push('\n');
    }
    message
}

/// Every well-formed `Sluice-Change:` line of `message`, in order.
pub fn parse_trailers(message: &str) -> Vec<TrailerChange> {
    message
        .lines()
        .filter_map(|line| parse_line(line.trim_end_matches('\r')))
        .collect()
}

fn parse_line(line: &str) -> Option<TrailerChange> {
    let rest = line.strip_prefix(TRAILER)?;
    let mut fields: BTreeMap<&str, String> = BTreeMap::new();
    for token in rest.split(' ').filter(|t| !t.is_empty()) {
        let (key, value) = token.split_once('=')?;
        fields.insert(key, decode(value)?);
    }
    let (namespace, name) = fields.get("policy")?.split_once('/')?;
    let policy = PolicyId {
        namespace: namespace.to_string(),
        name: name.to_string(),
    };
    Some(TrailerChange {
        policy,
        file: fields.remove("file")?,
        image: fields.remove("image")?,
        old: fields.remove("old")?,
        new: fields.remove("new")?,
    })
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"._-/~+@:,".contains(&b)
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if unreserved(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The changes that a person rolled back: `commits` are `(id, message)` pairs of the branch's
/// history (any order; full hex ids). A commit whose message starts with `Revert "` and says
/// `This reverts commit <id>` undoes that commit (an abbreviated id of 7 or more digits is
/// matched by prefix). When the undone commit carries `Sluice-Change:` trailers, those changes
/// are rolled back, unless the revert was itself reverted (a revert of a revert re-applies).
/// The result is sorted, each change once; the caller blocks each [`TrailerChange::new_tag`]
/// for its policy.
pub fn reverted_changes(commits: &[(String, String)]) -> Vec<TrailerChange> {
    // reverts[target] = the commits that revert it.
    let mut reverts: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (id, message) in commits {
        if let Some(target) = reverted_id(message) {
            let full = commits
                .iter()
                .map(|(c, _)| c.as_str())
                .find(|c| c.starts_with(target.as_str()));
            if let Some(full) = full {
                reverts.entry(full).or_default().push(id.as_str());
            }
        }
    }
    let mut out = BTreeSet::new();
    for (id, message) in commits {
        let trailers = parse_trailers(message);
        if !trailers.is_empty() && is_undone(id, &reverts, 0) {
            out.extend(trailers);
        }
    }
    out.into_iter().collect()
}

/// A commit is undone when some commit reverts it and that revert is not itself undone.
fn is_undone(id: &str, reverts: &BTreeMap<&str, Vec<&str>>, depth: usize) -> bool {
    if depth > 32 {
        return false;
    }
    reverts
        .get(id)
        .is_some_and(|rs| rs.iter().any(|r| !is_undone(r, reverts, depth + 1)))
}

/// The id in `This reverts commit <id>` of a message starting with `Revert "`.
fn reverted_id(message: &str) -> Option<String> {
    if !message.starts_with("Revert \"") {
        return None;
    }
    let (_, rest) = message.split_once("This reverts commit ")?;
    let id: String = rest
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (id.len() >= 7).then_some(id)
}

/// The policies whose chosen image is one a person rolled back (`reverted`, from
/// [`reverted_changes`]): the same tag, or the same digest, for that policy. Value: the
/// rolled-back version, for messages.
pub fn rolled_back(
    chosen: &BTreeMap<PolicyId, super::Chosen>,
    reverted: &[TrailerChange],
) -> BTreeMap<PolicyId, String> {
    let mut out = BTreeMap::new();
    for (policy, c) in chosen {
        let hit = reverted.iter().find(|t| {
            &t.policy == policy
                && (t.new_tag().is_some_and(|tag| Some(tag) == c.image.tag())
                    || c.image.digest().is_some_and(|d| t.new.ends_with(d)))
        });
        if let Some(t) = hit {
            out.insert(policy.clone(), t.new.clone());
        }
    }
    out
}
