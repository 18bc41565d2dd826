//! What a merge commit brought in. A pull request merged with a merge commit ("Merge pull
//! request #2 from sluice/images") says nothing of its changes in its own message: they are in
//! the commits of its other parents. Both daemons read those when they read a commit's changes
//! (its `Sluice-Change` trailers): the synchronizer to name the bump a failed revision made, the
//! updater to know which bump a revert of that merge undid.

use git2::{Commit, Repository, Sort};

/// The messages of the commits `commit` brought in as a merge — reachable from its other parents
/// and not from its first — newest first, at most `limit`. Empty for a commit with one parent.
pub fn merged_in_messages(
    repo: &Repository,
    commit: &Commit<'_>,
    limit: usize,
) -> Result<Vec<String>, git2::Error> {
    if commit.parent_count() < 2 {
        return Ok(Vec::new());
    }
    let mut walk = repo.revwalk()?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME)?;
    for parent in commit.parent_ids().skip(1) {
        walk.push(parent)?;
    }
    walk.hide(commit.parent_id(0)?)?;
    let mut messages = Vec::new();
    for id in walk.take(limit) {
        let merged = repo.find_commit(id?)?;
        messages.push(String::from_utf8_lossy(merged.message_bytes()).into_owned());
    }
    Ok(messages)
}

/// `commit`'s message, followed (for a merge) by the lines of the commits it brought in that
/// start with `prefix` (a trailer such as `Sluice-Change: `), once each: what the merge changed,
/// as if its own message said it.
pub fn message_with_merged(
    repo: &Repository,
    commit: &Commit<'_>,
    prefix: &str,
    limit: usize,
) -> String {
    let mut message = String::from_utf8_lossy(commit.message_bytes()).into_owned();
    let merged = merged_in_messages(repo, commit, limit).unwrap_or_default();
    let mut seen = std::collections::BTreeSet::new();
    let lines: Vec<&str> = merged
        .iter()
        .flat_map(|m| m.lines())
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| l.starts_with(prefix) && !message.contains(*l) && seen.insert(*l))
        .collect();
    if !lines.is_empty() {
        if !message.ends_with('\n') {
            message.push('\n');
        }
        message.push('\n');
        message.push_str(&lines.join("\n"));
        message.push('\n');
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use git2::Signature;

    #[test]
    fn a_merge_says_what_its_other_parents_brought_in() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let who = Signature::now("t", "t@t").unwrap();
        let tree = repo
            .find_tree(repo.treebuilder(None).unwrap().write().unwrap())
            .unwrap();
        let commit = |message: &str, parents: &[&Commit<'_>]| {
            let id = repo
                .commit(None, &who, &who, message, &tree, parents)
                .unwrap();
            repo.find_commit(id).unwrap()
        };
        let base = commit("seed", &[]);
        let main = commit("a fix on main", &[&base]);
        let bump = commit(
            "Update images\n\nSluice-Change: policy=shop/web file=a.yaml image=r/web old=1 new=2\n",
            &[&base],
        );
        let merge = commit("Merge pull request 'Update images' (#2)", &[&main, &bump]);
        assert_eq!(merged_in_messages(&repo, &merge, 10).unwrap().len(), 1);
        let message = message_with_merged(&repo, &merge, "Sluice-Change: ", 10);
        assert!(
            message.starts_with(
                "Merge pull request 'Update images' (#2)\n\nSluice-Change: policy=shop/web"
            ),
            "{message}"
        );
        // Not a merge: its own message, untouched.
        assert_eq!(
            message_with_merged(&repo, &bump, "Sluice-Change: ", 10),
            bump.message().unwrap()
        );
        assert!(merged_in_messages(&repo, &main, 10).unwrap().is_empty());
    }
}
