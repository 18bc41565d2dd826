//! The release daemon as a child process: started against the bench's own apiserver with a
//! GitHub webhook secret, its memory and its metrics; stopped when dropped.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sluice_e2e::apiserver::ExtraApiserver;
use sluice_e2e::bench::{Memory, Process, bench_file, free_addr};
use sluice_e2e::{World, http, wait_until};

/// `binary`, or `binary` under the command in `SLUICE_BENCH_WRAPPER` (split at spaces), to
/// profile the daemon through a run: `SLUICE_BENCH_WRAPPER="valgrind --tool=massif
/// --massif-out-file=/tmp/massif.out"`. The figures of a wrapped run are the wrapper's, not the
/// daemon's own.
fn wrapped(binary: &Path) -> Command {
    let wrapper = std::env::var("SLUICE_BENCH_WRAPPER").unwrap_or_default();
    let mut words = wrapper.split_whitespace();
    match words.next() {
        None => Command::new(binary),
        Some(program) => {
            let mut command = Command::new(program);
            command.args(words).arg(binary);
            command
        }
    }
}

/// The secret the bench signs its push webhooks with.
pub const WEBHOOK_SECRET: &[u8] = b"bench-webhook-secret";

/// `deploy-synchronizer run`, watching one namespace through the bench's apiserver.
pub struct Daemon {
    process: Process,
    pub addr: String,
    _work: tempfile::TempDir,
}

impl Daemon {
    /// Starts the daemon for `namespace`, its metrics and webhooks on a free port, logs (JSON,
    /// the synchronizer at debug) in a file, and waits for `/healthz`.
    pub async fn start(
        world: &World,
        binary: &Path,
        apiserver: &ExtraApiserver,
        namespace: &str,
    ) -> Daemon {
        Self::start_with(world, binary, apiserver, namespace, &[], &[]).await
    }

    /// Like [`start`](Self::start), with `args` after `run` and `env` (a replica's `POD_NAME`).
    pub async fn start_with(
        world: &World,
        binary: &Path,
        apiserver: &ExtraApiserver,
        namespace: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let work = tempfile::tempdir().expect("a work dir");
        // The world's admin kubeconfig, pointed at the bench's apiserver.
        let kubeconfig_path = apiserver.kubeconfig_file(world, &work.path().join("kubeconfig"));
        let secret = work.path().join("github-secret");
        std::fs::write(&secret, WEBHOOK_SECRET).expect("the webhook secret");
        let addr = free_addr();
        let mut command = wrapped(binary);
        command
            .args(["--log-format", "json", "--log-level"])
            .arg("info,deploy_synchronizer=debug")
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
            .arg(format!("github={}", secret.display()))
            .args(args)
            .envs(env.iter().copied())
            .env("KUBECONFIG", &kubeconfig_path)
            // The world's PATH: `helm` for the chart section.
            .env("PATH", world.var("PATH").unwrap_or("/usr/bin:/bin"));
        let process = Process::spawn(command, &work.path().join("deploy-synchronizer.log"));
        let daemon = Daemon {
            process,
            addr,
            _work: work,
        };
        wait_until(
            "deploy-synchronizer /healthz",
            Duration::from_secs(30),
            || async {
                match http::request(&daemon.addr, "GET", "/healthz", &[], b"").await {
                    Ok(r) if r.status == 200 => Ok(()),
                    Ok(r) => Err(format!("status {}", r.status)),
                    Err(e) => Err(e),
                }
            },
        )
        .await;
        daemon
    }

    pub fn pid(&self) -> String {
        self.process.pid()
    }

    pub fn memory(&self) -> Memory {
        self.process.memory()
    }

    /// The sum of the daemon's own metric `name` (every label set), from its `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = match http::request(&self.addr, "GET", "/metrics", &[], b"").await {
            Ok(r) if r.status == 200 => r.text(),
            _ => return f64::NAN,
        };
        text.lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        self.process.log_text()
    }

    /// Keeps the daemon's log beside the figures; says where, and how many warnings it has.
    pub fn save_log(&self) -> String {
        let text = self.log_text();
        let path = bench_file("deploy-synchronizer-world.log");
        let _ = std::fs::write(&path, &text);
        let warnings = text
            .lines()
            .filter(|l| l.contains("\"WARN\"") || l.contains("\"ERROR\""))
            .count();
        format!(
            "## daemon log (JSON, timestamps): {} ({} lines, {warnings} warnings or errors)\n",
            path.display(),
            text.lines().count()
        )
    }
}
