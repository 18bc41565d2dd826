use super::policy;
use crate::writeback::{Change, TrailerChange, commit_message, parse_trailers, reverted_changes};

fn change(file: &str, line: usize, old: &str, new: &str) -> Change {
    Change {
        policy: policy("apps", "web"),
        file: file.into(),
        line,
        image: "127.0.0.1:5000/demo/web".into(),
        old: old.into(),
        new: new.into(),
    }
}

#[test]
fn the_template_lists_changes_then_the_trailers_follow() {
    let changes = [
        change("b/values.yaml", 3, "1.4.2", "1.4.3"),
        change("a/deployment.yaml", 12, "1.4.2", "1.4.3"),
        change("a/deployment.yaml", 30, "1.4.2", "1.4.3"),
    ];
    let message = commit_message("Update images\n\n{{changes}}\n", &changes);
    assert_eq!(
        message,
        "Update images

a/deployment.yaml: 127.0.0.1:5000/demo/web 1.4.2 → 1.4.3
b/values.yaml: 127.0.0.1:5000/demo/web 1.4.2 → 1.4.3

Sluice-Change: policy=apps/web file=a/deployment.yaml image=127.0.0.1:5000/demo/web old=1.4.2 new=1.4.3
Sluice-Change: policy=apps/web file=b/values.yaml image=127.0.0.1:5000/demo/web old=1.4.2 new=1.4.3
"
    );
}

#[test]
fn trailers_round_trip_even_with_awkward_paths() {
    let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let changes = [
        change("my apps/web=prod/déploiement.yaml", 1, "1.0", "1.1"),
        change("k/kustomization.yaml", 2, "", &format!("1.1@{digest}")),
        change("100%.yaml", 3, digest, digest),
    ];
    let message = commit_message("chore: bump", &changes);
    assert!(
        message.contains("file=my%20apps/web%3Dprod/d%C3%A9ploiement.yaml "),
        "{message}"
    );
    let mut want: Vec<TrailerChange> = changes.iter().map(TrailerChange::from).collect();
    want.sort();
    assert_eq!(parse_trailers(&message), want);
    assert_eq!(want[1].new_tag(), Some("1.1"));
    assert_eq!(want[0].new_tag(), None, "a digest has no tag");
}

#[test]
fn the_parser_ignores_unknown_keys_and_skips_malformed_lines() {
    let message = "x\n\nSluice-Change: policy=a/b file=f image=i old=1 new=2 extra=yes\r\n\
                   Sluice-Change: policy=a/b file=f image=i old=1\n\
                   Sluice-Change: policy=ab file=f image=i old=1 new=2\n\
                   Sluice-Change: policy=a/b file=%ZZ image=i old=1 new=2\n\
                   Signed-off-by: someone <s@x>\n";
    let got = parse_trailers(message);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].policy, policy("a", "b"));
    assert_eq!((got[0].old.as_str(), got[0].new.as_str()), ("1", "2"));
}

fn sluice_commit(new: &str) -> String {
    commit_message("Update images", &[change("web.yaml", 1, "1.0", new)])
}

fn revert(id: &str) -> String {
    format!("Revert \"Update images\"\n\nThis reverts commit {id}.\n")
}

const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const C: &str = "cccccccccccccccccccccccccccccccccccccccc";
const D: &str = "dddddddddddddddddddddddddddddddddddddddd";
const E: &str = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";

#[test]
fn a_human_revert_of_a_bump_blocks_its_tag() {
    let commits = vec![
        (A.to_string(), sluice_commit("1.1")),
        (B.to_string(), revert(A)),
        (C.to_string(), sluice_commit("1.2")),
        (D.to_string(), "fix the readme\n".to_string()),
    ];
    let got = reverted_changes(&commits);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].new_tag(), Some("1.1"));
    assert_eq!(got[0].policy, policy("apps", "web"));
}

#[test]
fn a_reverted_revert_reapplies_and_abbreviated_ids_match() {
    let commits = vec![
        (A.to_string(), sluice_commit("1.1")),
        (B.to_string(), revert(A)),
        (
            C.to_string(),
            format!("Revert \"Revert \"Update images\"\"\n\nThis reverts commit {B}.\n"),
        ),
        (D.to_string(), sluice_commit("1.2")),
        (E.to_string(), revert(&D[..10])),
    ];
    let got = reverted_changes(&commits);
    let tags: Vec<_> = got.iter().filter_map(|c| c.new_tag()).collect();
    assert_eq!(tags, vec!["1.2"]);
}

#[test]
fn reverts_of_other_commits_and_lookalikes_block_nothing() {
    let commits = vec![
        (A.to_string(), "add a service\n".to_string()),
        (B.to_string(), revert(A)),
        (C.to_string(), sluice_commit("1.1")),
        (
            D.to_string(),
            format!("Not a revert\n\nThis reverts commit {C}.\n"),
        ),
        (
            E.to_string(),
            format!("Revert \"x\"\n\nThis reverts commit {}.\n", &C[..5]),
        ),
    ];
    assert_eq!(reverted_changes(&commits), vec![]);
}

#[test]
fn a_rolled_back_tag_is_not_written_again_and_a_newer_one_is() {
    use super::{chosen, file};
    use crate::writeback::{ProblemKind, plan_except, rolled_back};

    let commits = vec![
        (A.to_string(), sluice_commit("1.1")),
        (B.to_string(), revert(A)),
    ];
    let reverted = reverted_changes(&commits);
    let values = "image: 127.0.0.1:5000/demo/web:1.0 # {\"$imagepolicy\": \"apps:web\"}\n";
    let files = [file("web.yaml", values)];

    let same = chosen(&[("apps/web", "127.0.0.1:5000/demo/web:1.1")]);
    let blocked = rolled_back(&same, &reverted);
    assert_eq!(blocked.len(), 1);
    let out = plan_except(&files, &same, false, &blocked);
    assert_eq!(out.files, vec![]);
    assert!(
        matches!(&out.problems[..], [p] if matches!(&p.kind, ProblemKind::RolledBack { version, .. } if version == "1.1")),
        "{:?}",
        out.problems
    );

    let newer = chosen(&[("apps/web", "127.0.0.1:5000/demo/web:1.2")]);
    let blocked = rolled_back(&newer, &reverted);
    assert!(blocked.is_empty());
    let out = plan_except(&files, &newer, false, &blocked);
    assert_eq!(out.files.len(), 1);
}
