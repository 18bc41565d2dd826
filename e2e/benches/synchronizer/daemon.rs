//! The release daemon as a child process: built, started against the bench's own apiserver
//! with a GitHub webhook secret, its memory and its metrics; stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sluice_e2e::apiserver::ExtraApiserver;
use sluice_e2e::{World, wait_until};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The secret the bench signs its push webhooks with.
pub const WEBHOOK_SECRET: &[u8] = b"bench-webhook-secret";

/// The cargo target directory of the workspace.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(WORKSPACE).join("target"))
}

/// `target/release/deploy-synchronizer`, built (or found up to date) by cargo first.
pub fn binary() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "deploy-synchronizer",
        ])
        .args(["--bin", "deploy-synchronizer"])
        .current_dir(WORKSPACE)
        .status()
        .expect("running cargo build");
    assert!(
        status.success(),
        "cargo build --release -p deploy-synchronizer failed"
    );
    target_dir().join("release/deploy-synchronizer")
}

/// A free loopback address (bound, then released).
fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("an ephemeral port");
    listener.local_addr().expect("its address").to_string()
}

/// What /proc says about a process's memory, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

/// KiB as MiB with one decimal.
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "VmRSS {}, VmHWM {}",
            mib(self.rss_kib),
            mib(self.hwm_kib)
        )
    }
}

/// `deploy-synchronizer run`, watching one namespace through the bench's apiserver.
pub struct Daemon {
    child: Child,
    pub addr: String,
    log: PathBuf,
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
        let work = tempfile::tempdir().expect("a work dir");
        // The world's admin kubeconfig, pointed at the bench's apiserver.
        let kubeconfig = std::fs::read_to_string(world.kubeconfig()).expect("the kubeconfig");
        let world_url = world.require("SLUICE_KUBE_APISERVER");
        assert!(
            kubeconfig.contains(world_url),
            "the kubeconfig names {world_url}"
        );
        let kubeconfig_path = work.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig_path,
            kubeconfig.replace(world_url, &apiserver.url()),
        )
        .expect("the daemon's kubeconfig");
        let secret = work.path().join("github-secret");
        std::fs::write(&secret, WEBHOOK_SECRET).expect("the webhook secret");
        let log = work.path().join("deploy-synchronizer.log");
        let addr = free_addr();
        let child = Command::new(binary)
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
            .env("KUBECONFIG", &kubeconfig_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("the log file"))
            .spawn()
            .expect("starting deploy-synchronizer");
        let daemon = Daemon {
            child,
            addr,
            log,
            _work: work,
        };
        wait_until(
            "deploy-synchronizer /healthz",
            Duration::from_secs(30),
            || async {
                match daemon.request("GET", "/healthz", &[], "").await {
                    Ok((200, _)) => Ok(()),
                    Ok((status, _)) => Err(format!("status {status}")),
                    Err(e) => Err(e),
                }
            },
        )
        .await;
        daemon
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// `/proc/<pid>/status`'s VmRSS and VmHWM.
    pub fn memory(&self) -> Memory {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Memory {
            rss_kib: field("VmRSS:"),
            hwm_kib: field("VmHWM:"),
        }
    }

    /// One HTTP/1.1 request to the daemon (`Connection: close`): status and body.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<(u16, String), String> {
        let addr = &self.addr;
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let mut request =
            format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .await
            .map_err(|e| format!("read: {e}"))?;
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("not an HTTP response: {response:?}"))?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((status, body))
    }

    /// The sum of the daemon's own metric `name` (every label set), from its `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        let Ok((200, text)) = self.request("GET", "/metrics", &[], "").await else {
            return f64::NAN;
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
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Keeps the daemon's log beside the figures; says where, and how many warnings it has.
    pub fn save_log(&self) -> String {
        let text = self.log_text();
        let path = target_dir().join("bench/deploy-synchronizer-world.log");
        let _ = std::fs::create_dir_all(path.parent().expect("a parent"));
        let _ = std::fs::write(&path, &text);
        let warnings = text
            .lines()
            .filter(|l| l.contains("\"WARN\"") || l.contains("\"ERROR\""))
            .count();
        format!(
            "daemon log (JSON, timestamps): {} ({} lines, {warnings} warnings or errors)\n",
            path.display(),
            text.lines().count()
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.pid()]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
