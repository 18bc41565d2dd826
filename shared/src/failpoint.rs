//! Fail points: named moments in the daemons at which a test makes the process die by SIGKILL (or
//! pause while it breaks something), to prove that a fault at exactly that moment loses nothing
//! (the fault stories in `e2e/tests/fault_*`).
//!
//! They are [fail-rs](https://docs.rs/fail) fail points, compiled in only with the `failpoints`
//! feature, which `e2e/test` builds the daemons with; in any other build [`point`] does
//! nothing. Armed from the environment at start-up, in fail-rs's syntax:
//!
//! ```text
//! FAILPOINTS='sync.applied=400*off->return'   # the 401st object applied: SIGKILL
//! FAILPOINTS='update.committed=1*return(3000)' # the first commit: a 3 s pause before the push
//! ```
//!
//! The points:
//! - `sync.applied`: the synchronizer applied one object (a real write, not a dry-run);
//! - `sync.pruned`: the synchronizer deleted one object of the inventory;
//! - `update.committed`: the updater made its commit in the work clone, before the push;
//! - `update.pushed`: the updater pushed, before it records anything in a status.

/// Arms the fail points `FAILPOINTS` names (a no-op without the `failpoints` feature), and logs
/// which, so a story can tell a binary built without them from one that never reached the point.
pub fn arm() {
    #[cfg(feature = "failpoints")]
    if let Ok(points) = std::env::var("FAILPOINTS") {
        // The scenario's guard would clear the points when dropped: they stay for the process.
        std::mem::forget(fail::FailScenario::setup());
        tracing::warn!(%points, "fail points armed (a test build)");
    }
}

/// A moment a test may stop the process at (see the module doc for the names). Armed with
/// `return`, the process kills itself here with SIGKILL (no destructor, no graceful shutdown, no
/// Lease released, as the OOM killer or a lost node would). Armed with `return(MS)`, it logs that
/// it is here and sleeps MS milliseconds: a story breaks something at exactly this moment (cuts
/// the git server between commit and push). Nothing without the feature.
#[inline(always)]
pub fn point(name: &'static str) {
    #[cfg(feature = "failpoints")]
    fail::eval(name, |arg| {
        match arg.and_then(|ms| ms.parse::<u64>().ok()) {
            Some(ms) => {
                tracing::warn!(point = name, ms, "fail point reached: pausing");
                std::thread::sleep(std::time::Duration::from_millis(ms));
            }
            None => {
                tracing::warn!(point = name, "fail point reached: SIGKILL");
                // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
                unsafe {
                    libc::kill(libc::getpid(), libc::SIGKILL);
                }
                std::process::abort()
            }
        }
    });
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}
