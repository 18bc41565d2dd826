//! The daemons as an operator runs them: the built binaries (`target/<profile>/…`, beside the
//! test's `deps/`; `e2e/test` builds them before the tests), with the world's kubeconfig and
//! their logs captured to a file, stopped with SIGTERM.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::{Child, Command};

use crate::World;

/// The binary `name` of this build.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test runs from target/<profile>/deps")
        .join(name);
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build --bins` first (e2e/test does)",
        bin.display()
    );
    bin
}

/// A daemon binary running against the world, its stdout and stderr in one log file.
pub struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Starts `name` with `args`, logging to `log`.
    pub fn start(world: &World, name: &str, args: &[&str], log: &Path) -> Daemon {
        Self::start_with_env(world, name, args, &[], log)
    }

    /// Starts `name` with `args` and the environment variables `env` (as a pod's, say
    /// `POD_NAME`; a `KUBECONFIG` of another apiserver), logging to `log`.
    pub fn start_with_env(
        world: &World,
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
        log: &Path,
    ) -> Daemon {
        let file = std::fs::File::create(log).expect("the log file");
        let child = Command::new(binary(name))
            .args(args)
            .env("KUBECONFIG", world.kubeconfig())
            .env("PATH", world.var("PATH").unwrap_or("/usr/bin:/bin"))
            // After the defaults: a `KUBECONFIG` of the caller's wins.
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("the log file"))
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Daemon {
            child,
            log: log.to_owned(),
        }
    }

    /// `binary run ARGS` as the pod `name` runs it: JSON logs, metrics (and webhooks) on a free
    /// loopback port, a state directory of its own below `dir` (the synchronizer's cache, the
    /// updater's work clones: `dir/state-<name>`), `POD_NAME` and `env` in its environment, its
    /// log in `dir/<name>.log`. Returns it and the address it serves on.
    pub fn run_as_pod(
        world: &World,
        binary: &str,
        dir: &Path,
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> (Daemon, String) {
        let addr = format!("127.0.0.1:{}", crate::git_support::closed_port());
        let state = dir.join(format!("state-{name}"));
        let state = state.to_str().expect("a UTF-8 path");
        let mut all_env = vec![
            ("POD_NAME", name),
            ("SLUICE_LOG_FORMAT", "json"),
            ("SLUICE_METRICS_ADDR", addr.as_str()),
            // Each daemon reads its own of the two.
            ("SLUICE_CACHE_DIR", state),
            ("SLUICE_WORK_DIR", state),
        ];
        all_env.extend_from_slice(env);
        let mut all_args = vec!["run"];
        all_args.extend_from_slice(args);
        let log = dir.join(format!("{name}.log"));
        let daemon = Self::start_with_env(world, binary, &all_args, &all_env, &log);
        (daemon, addr)
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the process killed itself at fail point `point` (armed with `FAILPOINTS`, see
    /// `sluice_shared::failpoint`); returns its log. Panics if it is still running after
    /// `within`, exits any other way, or was built without fail points.
    pub async fn died_at(mut self, point: &str, within: std::time::Duration) -> String {
        use std::os::unix::process::ExitStatusExt;
        let status = tokio::time::timeout(within, self.child.wait()).await;
        let log = self.log();
        assert!(
            log.contains("fail points armed"),
            "the binary has no fail points: build it as e2e/test does (--features \
             deploy-synchronizer/failpoints,config-updater/failpoints); log:\n{log}"
        );
        let status = status
            .unwrap_or_else(|_| panic!("still running after {within:?}, {point} not reached"))
            .expect("waiting for the process");
        assert_eq!(
            status.signal(),
            Some(9),
            "expected death by SIGKILL at {point}, got {status}; log:\n{log}"
        );
        assert!(
            log.contains(point),
            "died, but its log does not name {point}"
        );
        log
    }

    /// SIGKILL, as a node that dies or the OOM killer: no shutdown, no Lease released.
    pub async fn kill(mut self) -> String {
        let _ = self.child.kill().await;
        self.log()
    }

    /// SIGTERM, then waits until it exited; returns the whole log.
    pub async fn stop(mut self) -> String {
        if let Some(pid) = self.child.id() {
            // `kill` sends the signal (tokio's Child can only SIGKILL).
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let _ = tokio::time::timeout(std::time::Duration::from_secs(20), self.child.wait()).await;
        let _ = self.child.kill().await;
        self.log()
    }
}
