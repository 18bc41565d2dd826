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
    /// `POD_NAME`), logging to `log`.
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
            .envs(env.iter().copied())
            .env("KUBECONFIG", world.kubeconfig())
            .env("PATH", world.var("PATH").unwrap_or("/usr/bin:/bin"))
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

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
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
