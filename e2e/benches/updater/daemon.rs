//! The release daemon as a child process, started on an address.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use sluice_e2e::bench::{Memory, Process};
use sluice_e2e::{World, http, wait_until};

/// The release daemon, running; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Daemon {
    process: Process,
    _work: tempfile::TempDir,
}

impl Daemon {
    /// `config-updater run` watching `namespace`, serving metrics and webhooks on `addr`, with
    /// the distribution token when given. Logs (JSON) go to a file in a temporary work dir.
    pub async fn start(
        world: &World,
        binary: &Path,
        namespace: &str,
        addr: &str,
        token: Option<&str>,
        log_filter: &str,
    ) -> Daemon {
        let work = tempfile::tempdir().expect("a work dir");
        let mut cmd = Command::new(binary);
        cmd.args(["--log-format", "json", "--log-level", log_filter, "run"])
            .args(["--watch-namespace", namespace, "--metrics-addr", addr])
            .arg("--work-dir")
            .arg(work.path().join("work"))
            .env("KUBECONFIG", world.kubeconfig());
        if let Some(token) = token {
            let file = work.path().join("distribution-token");
            std::fs::write(&file, token).expect("the token file");
            cmd.arg("--webhook-secret-file")
                .arg(format!("distribution={}", file.display()));
        }
        let process = Process::spawn(cmd, &work.path().join("config-updater.log"));
        let daemon = Daemon {
            process,
            _work: work,
        };
        let health = "/healthz";
        wait_until(
            "config-updater /healthz",
            Duration::from_secs(30),
            || async {
                match http::request(addr, "GET", health, &[], b"").await {
                    Ok(r) if r.status == 200 => Ok(()),
                    Ok(r) => Err(format!("status {}", r.status)),
                    Err(e) => Err(e),
                }
            },
        )
        .await;
        daemon
    }

    pub fn memory(&self) -> Memory {
        self.process.memory()
    }

    /// When it was started.
    pub fn started(&self) -> Instant {
        self.process.started
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        self.process.log_text()
    }
}
