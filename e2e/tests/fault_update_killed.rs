//! The Config Updater dies by SIGKILL at the two moments a bump is most fragile, at a fail point
//! (see `sluice_shared::failpoint`), each time restarted on the same work directory as a pod's
//! container is:
//! - between its commit and the push: the commit exists only in the work clone; the restart must
//!   neither lose the bump nor push the orphan alongside a second one;
//! - between the push and the status write: the bump is on main but no status says so; the
//!   restart must not commit it again.
//!
//! Each tag lands as exactly one commit on main; the git password is in no log.

mod update_support;

use std::path::Path;
use std::time::Duration;

use config_updater::resource::ImageUpdate;
use sluice_e2e::daemon::Daemon;
use sluice_e2e::wait_until;
use update_support::*;

/// The updater as a pod's container runs it, its work clones in `work` (kept across restarts),
/// with `failpoints` armed when given.
fn updater(u: &Updater, dir: &Path, name: &str, work: &Path, failpoints: &str) -> Daemon {
    let work = work.to_str().unwrap();
    let mut env = vec![("SLUICE_WORK_DIR", work)];
    if !failpoints.is_empty() {
        env.push(("FAILPOINTS", failpoints));
    }
    let args = ["--watch-namespace", u.ns()];
    Daemon::run_as_pod(u.world, "config-updater", dir, name, &args, &env).0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_updater_killed_around_its_push_lands_each_bump_exactly_once() {
    let u = Updater::idle("update-killed").await;
    let WebLoop {
        path, repo, seed, ..
    } = u.web_loop("killed").await;
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let mut logs = Vec::new();

    // Between commit and push.
    let first = updater(&u, dir.path(), "first", &work, "update.committed=return");
    assert_eq!(u.wait_policy_tag("web").await, "1.0.0");
    u.world.push_image(&[&format!("{path}:1.0.1")]).await;
    logs.push(
        first
            .died_at("update.committed", Duration::from_secs(120))
            .await,
    );
    assert_eq!(
        bumps_since(u.world, &repo, &seed).0,
        0,
        "nothing pushed before the kill"
    );

    // The restart pushes the bump, and dies before its status says so.
    let second = updater(&u, dir.path(), "second", &work, "update.pushed=return");
    logs.push(
        second
            .died_at("update.pushed", Duration::from_secs(120))
            .await,
    );
    let (count, line) = bumps_since(u.world, &repo, &seed);
    assert_eq!(count, 1, "one bump commit on main, not the orphan too");
    assert!(line.contains(":1.0.1 "), "{line}");

    // The next restart finds the bump on main and commits nothing more; the next tag is bumped
    // as usual, once.
    let third = updater(&u, dir.path(), "third", &work, "");
    wait_until(
        "the restart to report the repository up to date",
        Duration::from_secs(60),
        || async {
            match u.ready::<ImageUpdate>("config").await {
                Some(c) if c.status == "True" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(bumps_since(u.world, &repo, &seed).0, 1, "no duplicate bump");
    u.world.push_image(&[&format!("{path}:1.0.2")]).await;
    wait_until(
        "the bump to 1.0.2, once",
        Duration::from_secs(60),
        || async {
            match bumps_since(u.world, &repo, &seed) {
                (2, line) if line.contains(":1.0.2 ") => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    // The status names the pushed commit.
    u.wait_last_push_is("config", tip(u.world, &repo)).await;
    logs.push(third.stop().await);

    let (_, password) = u.world.git_credentials();
    for log in &logs {
        assert!(!log.contains(password), "the git password is in a log");
    }
}
