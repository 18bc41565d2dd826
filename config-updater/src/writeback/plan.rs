//! The pure planner: files and chosen images in, exact-byte edits, changes and problems out.

use std::collections::BTreeMap;

use sluice_shared::kustomize::is_kustomization_file;

use super::{Change, Chosen, FileEdit, Problem, ProblemKind, WritePlan};
use crate::edit::{
    Document, Edit, EditError, ImagePart, ImageRef, KustomizeImage, PolicyId, Reference,
    ScalarValue, SkipReason, Skipped,
};

/// Plans one round. `files` are `(path relative to the repository root, bytes)`; files that
/// are neither `*.yaml`/`*.yml` nor a kustomization file (see `is_config_file`) are ignored. `chosen`: the image each policy chose. With
/// `update_unmarked`, unmarked `image:` fields and kustomize `images:` entries naming the
/// repository of exactly one policy (`chosen[..].image.name()`, Docker Hub's `docker.io/` and
/// `library/` spellings being equal) are updated too, keeping the repository as written.
pub fn plan(
    files: &[(String, Vec<u8>)],
    chosen: &BTreeMap<PolicyId, Chosen>,
    update_unmarked: bool,
) -> WritePlan {
    plan_except(files, chosen, update_unmarked, &BTreeMap::new())
}

/// [`plan`], except that the images of the policies in `rolled_back` (policy → the version a
/// person rolled back, see [`super::reverted_changes`]) are not written: each value they would
/// change is reported as [`ProblemKind::RolledBack`] and left alone.
pub fn plan_except(
    files: &[(String, Vec<u8>)],
    chosen: &BTreeMap<PolicyId, Chosen>,
    update_unmarked: bool,
    rolled_back: &BTreeMap<PolicyId, String>,
) -> WritePlan {
    let mut out = WritePlan::default();
    let mut files: Vec<&(String, Vec<u8>)> =
        files.iter().filter(|(p, _)| is_config_file(p)).collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, bytes) in files {
        plan_file(
            path,
            bytes,
            (chosen, rolled_back),
            update_unmarked,
            &mut out,
        );
    }
    out.changes.sort();
    out
}

/// Whether the file at `path` is one a round reads and edits: YAML by its name (`*.yaml`,
/// `*.yml`, any case), or a kustomization file by any of the names kustomize accepts
/// ([`KUSTOMIZATION_FILES`](sluice_shared::kustomize::KUSTOMIZATION_FILES), `Kustomization`
/// having no extension). A kustomization is told by
/// its content (no `kind`, or `Kustomization`/`Component`), whatever its name.
pub(super) fn is_config_file(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml") || is_kustomization_file(path)
}

/// One planned edit with the change it makes.
struct Planned {
    edit: Edit,
    change: Change,
}

struct FilePlanner<'a> {
    file: &'a str,
    chosen: &'a BTreeMap<PolicyId, Chosen>,
    rolled_back: &'a BTreeMap<PolicyId, String>,
    planned: Vec<Planned>,
    problems: Vec<Problem>,
}

fn plan_file(
    path: &str,
    bytes: &[u8],
    (chosen, rolled_back): (&BTreeMap<PolicyId, Chosen>, &BTreeMap<PolicyId, String>),
    update_unmarked: bool,
    out: &mut WritePlan,
) {
    let doc = match Document::parse(bytes) {
        Ok(doc) => doc,
        Err(e) => {
            let (line, column) = match &e {
                EditError::Parse { line, column, .. } => (Some(*line), Some(*column)),
                _ => (None, None),
            };
            let message = match e {
                EditError::Parse { message, .. } => message,
                other => other.to_string(),
            };
            out.problems.push(Problem {
                file: path.to_string(),
                line,
                column,
                policy: None,
                kind: ProblemKind::Unparsable { message },
            });
            return;
        }
    };
    let mut p = FilePlanner {
        file: path,
        chosen,
        rolled_back,
        planned: Vec::new(),
        problems: Vec::new(),
    };
    for reference in doc.references() {
        match reference {
            Reference::Marked { marker, scalar } => p.marked(&marker.policy, marker.part, &scalar),
            Reference::Image(scalar) if update_unmarked => p.unmarked_image(&scalar),
            Reference::KustomizeImage(k) if update_unmarked => p.kustomize(&k),
            Reference::Skipped(s) => p.skipped(&s, update_unmarked),
            _ => {}
        }
    }
    // Apply; a value the editor refuses (needs quoting, …) is reported and dropped, the rest of
    // the file still goes ahead.
    let mut planned = p.planned;
    let mut problems = p.problems;
    while !planned.is_empty() {
        let edits: Vec<Edit> = planned.iter().map(|x| x.edit.clone()).collect();
        match doc.apply(&edits) {
            Ok(new_bytes) => {
                if new_bytes != bytes {
                    out.files.push(FileEdit {
                        path: path.to_string(),
                        new_bytes,
                    });
                    out.changes.extend(planned.into_iter().map(|x| x.change));
                }
                break;
            }
            Err(e) => {
                let line = error_line(&e);
                let before = planned.len();
                let mut policy = None;
                planned.retain(|x| {
                    let hit = Some(x.change.line) == line;
                    if hit {
                        policy = Some(x.change.policy.clone());
                    }
                    !hit
                });
                if planned.len() == before {
                    planned.clear(); // no line to blame: leave the whole file alone
                }
                problems.push(Problem {
                    file: path.to_string(),
                    line,
                    column: None,
                    policy,
                    kind: ProblemKind::NotEditable {
                        reason: e.to_string(),
                    },
                });
            }
        }
    }
    out.problems.extend(problems);
}

fn error_line(e: &EditError) -> Option<usize> {
    match e {
        EditError::Parse { line, .. }
        | EditError::NotAScalar { line, .. }
        | EditError::Stale { line, .. }
        | EditError::Overlap { line, .. }
        | EditError::Unsupported { line, .. }
        | EditError::NeedsQuoting { line, .. }
        | EditError::Verification { line, .. } => Some(*line),
    }
}

/// The version a field holds (see the trailer grammar): `tag[@digest]`, a digest, a tag, or
/// for a `:name` field the repository.
fn version(part: ImagePart, value: &str) -> String {
    match part {
        ImagePart::Whole => match ImageRef::parse(value) {
            Ok(r) => match (r.tag(), r.digest()) {
                (Some(t), Some(d)) => format!("{t}@{d}"),
                (Some(t), None) => t.to_string(),
                (None, Some(d)) => d.to_string(),
                (None, None) => String::new(),
            },
            Err(_) => value.to_string(),
        },
        _ => value.to_string(),
    }
}

/// A repository name with Docker Hub's implicit parts removed, to compare spellings.
fn normalized(name: &str) -> &str {
    let name = name
        .strip_prefix("docker.io/")
        .or_else(|| name.strip_prefix("index.docker.io/"))
        .unwrap_or(name);
    name.strip_prefix("library/").unwrap_or(name)
}

impl FilePlanner<'_> {
    fn problem(&mut self, scalar: &ScalarValue, policy: Option<&PolicyId>, kind: ProblemKind) {
        self.problems.push(Problem {
            file: self.file.to_string(),
            line: Some(scalar.line),
            column: Some(scalar.column),
            policy: policy.cloned(),
            kind,
        });
    }

    fn edit(&mut self, policy: &PolicyId, part: ImagePart, scalar: &ScalarValue, new: String) {
        if new == scalar.value {
            return;
        }
        if let Some(version) = self.rolled_back.get(policy) {
            let kind = ProblemKind::RolledBack {
                policy: policy.to_string(),
                version: version.clone(),
            };
            self.problem(scalar, Some(policy), kind);
            return;
        }
        let Some(chosen) = self.chosen.get(policy) else {
            return;
        };
        self.planned.push(Planned {
            change: Change {
                policy: policy.clone(),
                file: self.file.to_string(),
                line: scalar.line,
                image: chosen.image.name().to_string(),
                old: version(part, &scalar.value),
                new: version(part, &new),
            },
            edit: Edit::new(scalar, new),
        });
    }

    fn missing_part(&mut self, scalar: &ScalarValue, policy: &PolicyId, part: &str) {
        let image = self.chosen[policy].image.to_string();
        let kind = ProblemKind::MissingPart {
            policy: policy.to_string(),
            part: part.to_string(),
            image,
        };
        self.problem(scalar, Some(policy), kind);
    }

    fn marked(&mut self, policy: &PolicyId, part: ImagePart, scalar: &ScalarValue) {
        let Some(chosen) = self.chosen.get(policy) else {
            let kind = ProblemKind::UnknownPolicy {
                policy: policy.to_string(),
            };
            self.problem(scalar, Some(policy), kind);
            return;
        };
        match chosen.image.part(part) {
            Some(new) => self.edit(policy, part, scalar, new),
            None => self.missing_part(scalar, policy, &part.to_string()),
        }
    }

    /// The one policy watching `name`; several: reported, `None`.
    fn watcher(&mut self, name: &str, at: &ScalarValue) -> Option<PolicyId> {
        let matching: Vec<&PolicyId> = self
            .chosen
            .iter()
            .filter(|(_, c)| normalized(c.image.name()) == normalized(name))
            .map(|(p, _)| p)
            .collect();
        match matching.as_slice() {
            [] => None,
            [one] => Some((*one).clone()),
            many => {
                let policies = many
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                let kind = ProblemKind::Ambiguous {
                    image: name.to_string(),
                    policies,
                };
                self.problem(at, None, kind);
                None
            }
        }
    }

    fn unmarked_image(&mut self, scalar: &ScalarValue) {
        let Ok(current) = ImageRef::parse(&scalar.value) else {
            return;
        };
        let Some(policy) = self.watcher(current.name(), scalar) else {
            return;
        };
        let image = &self.chosen[&policy].image;
        match ImageRef::new(current.name(), image.tag(), image.digest()) {
            Ok(new) => self.edit(&policy, ImagePart::Whole, scalar, new.to_string()),
            Err(e) => {
                let kind = ProblemKind::NotEditable {
                    reason: e.to_string(),
                };
                self.problem(scalar, Some(&policy), kind);
            }
        }
    }

    fn kustomize(&mut self, k: &KustomizeImage) {
        let target = k.new_name.as_ref().unwrap_or(&k.name);
        let Some(policy) = self.watcher(&target.value, target) else {
            return;
        };
        let image = self.chosen[&policy].image.clone();
        let missing_key = |key: &str| ProblemKind::MissingKey {
            image: target.value.clone(),
            key: key.to_string(),
        };
        match (&k.digest, image.digest()) {
            // A digest overrides the tag: a stale one would keep the old image running.
            (Some(field), None) => {
                self.missing_part(field, &policy, "digest");
                return;
            }
            (Some(field), Some(digest)) => {
                self.edit(&policy, ImagePart::Digest, field, digest.to_string())
            }
            (None, Some(_)) => {
                let kind = missing_key("digest");
                self.problem(&k.name, Some(&policy), kind);
            }
            (None, None) => {}
        }
        match (&k.new_tag, image.tag()) {
            (Some(field), Some(tag)) => self.edit(&policy, ImagePart::Tag, field, tag.to_string()),
            (Some(field), None) => self.missing_part(field, &policy, "tag"),
            // A digest-only entry needs no tag.
            (None, Some(_)) if k.digest.is_some() => {}
            (None, _) => {
                let kind = missing_key("newTag");
                self.problem(&k.name, Some(&policy), kind);
            }
        }
    }

    fn skipped(&mut self, s: &Skipped, update_unmarked: bool) {
        let watched = update_unmarked
            && s.value.as_deref().is_some_and(|v| {
                ImageRef::parse(v).is_ok_and(|r| {
                    self.chosen
                        .values()
                        .any(|c| normalized(c.image.name()) == normalized(r.name()))
                })
            });
        let report =
            s.marker.is_some() || matches!(s.reason, SkipReason::MalformedMarker { .. }) || watched;
        if report {
            self.problems.push(Problem {
                file: self.file.to_string(),
                line: Some(s.line),
                column: Some(s.column),
                policy: s.marker.as_ref().map(|m| m.policy.clone()),
                kind: ProblemKind::NotEditable {
                    reason: s.reason.to_string(),
                },
            });
        }
    }
}
