//! The release daemons as child processes ([`sluice_e2e::bench::Process`]), logging JSON to a
//! file, their pid for the memory sampler; stopped (SIGTERM, then SIGKILL) when dropped.
//!
//! - the config-updater on the world's registry notify address, taking the registries'
//!   distribution notifications;
//! - the deploy-synchronizer against the world's apiserver, taking Gitea's signed push
//!   webhooks on `/webhook/gitea` beside its metrics.

use std::path::Path;
use std::process::Command;

use sluice_e2e::World;
use sluice_e2e::bench::{Process, bench_file, free_addr, wait_healthz};

/// The secret Gitea signs its deliveries to the synchronizer with.
pub const HOOK_SECRET: &str = "bench-forge-hook-secret";

/// A daemon running, with the temporary directory of its work files and log.
pub struct Daemon {
    process: Process,
    pub addr: String,
    _work: tempfile::TempDir,
}

impl Daemon {
    /// `config-updater run` for `namespace` on `addr` (the notify address), with the
    /// registries' bearer token; the updater and the forge client log at debug.
    pub async fn updater(world: &World, binary: &Path, namespace: &str, addr: &str) -> Daemon {
        let work = tempfile::tempdir().expect("a work dir");
        let token = work.path().join("distribution-token");
        std::fs::write(&token, world.registry_notify_token()).expect("the token file");
        let mut command = Command::new(binary);
        command
            .args(["--log-format", "json", "--log-level"])
            .arg("info,config_updater=debug,sluice_shared=debug")
            .args([
                "run",
                "--watch-namespace",
                namespace,
                "--metrics-addr",
                addr,
            ])
            .arg("--work-dir")
            .arg(work.path().join("work"))
            .arg("--webhook-secret-file")
            .arg(format!("distribution={}", token.display()))
            .env("KUBECONFIG", world.kubeconfig());
        Daemon::start(command, work, addr, "config-updater").await
    }

    /// `deploy-synchronizer run` for `namespace`, its metrics and webhooks on a free port; the
    /// synchronizer and the forge client log at debug.
    pub async fn synchronizer(world: &World, binary: &Path, namespace: &str) -> Daemon {
        let work = tempfile::tempdir().expect("a work dir");
        let secret = work.path().join("gitea-secret");
        std::fs::write(&secret, HOOK_SECRET).expect("the webhook secret");
        let addr = free_addr();
        let mut command = Command::new(binary);
        command
            .args(["--log-format", "json", "--log-level"])
            .arg("info,deploy_synchronizer=debug,sluice_shared=debug")
            .args([
                "run",
                "--watch-namespace",
                namespace,
                "--metrics-addr",
                &addr,
            ])
            .arg("--cache-dir")
            .arg(work.path().join("cache"))
            .arg("--webhook-secret-file")
            .arg(format!("gitea={}", secret.display()))
            .env("KUBECONFIG", world.kubeconfig());
        Daemon::start(command, work, &addr, "deploy-synchronizer").await
    }

    async fn start(command: Command, work: tempfile::TempDir, addr: &str, name: &str) -> Daemon {
        let process = Process::spawn(command, &work.path().join(format!("{name}.log")));
        wait_healthz(addr, name).await;
        Daemon {
            process,
            addr: addr.to_owned(),
            _work: work,
        }
    }

    /// Where Gitea delivers push events (the synchronizer).
    pub fn hook_url(&self) -> String {
        format!("http://{}/webhook/gitea", self.addr)
    }

    pub fn pid(&self) -> String {
        self.process.pid()
    }

    pub fn log_text(&self) -> String {
        self.process.log_text()
    }

    /// Keeps the log beside the figures as `target/bench/forge-world-<name>.log`; one line
    /// saying where, with its warnings and errors counted.
    pub fn save_log(&self, name: &str) -> String {
        let text = self.log_text();
        let path = bench_file(&format!("forge-world-{name}.log"));
        let _ = std::fs::write(&path, &text);
        let warnings = text
            .lines()
            .filter(|l| l.contains("\"WARN\"") || l.contains("\"ERROR\""))
            .count();
        format!(
            "{name} log (JSON): {} ({} lines, {warnings} warnings or errors)\n",
            path.display(),
            text.lines().count()
        )
    }
}
