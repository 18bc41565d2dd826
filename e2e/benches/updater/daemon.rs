//! The release daemon as a child process: building it, starting it on an address, its memory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, Client};
use sluice_e2e::{World, apply_yaml, wait_until};

use crate::http;

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

const CRDS: &[(&str, &str)] = &[
    (
        "imagerepositories.sluice.dev",
        include_str!("../../../manifests/crds/imagerepositories.sluice.dev.yaml"),
    ),
    (
        "imagepolicies.sluice.dev",
        include_str!("../../../manifests/crds/imagepolicies.sluice.dev.yaml"),
    ),
    (
        "imageupdates.sluice.dev",
        include_str!("../../../manifests/crds/imageupdates.sluice.dev.yaml"),
    ),
];

/// The cargo target directory of the workspace.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let workspace = Path::new(WORKSPACE);
            workspace
                .canonicalize()
                .unwrap_or_else(|_| workspace.to_owned())
                .join("target")
        })
}

/// `target/release/config-updater`, built (or found up to date) by cargo first.
pub fn binary() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "config-updater",
            "--bin",
            "config-updater",
        ])
        .current_dir(WORKSPACE)
        .status()
        .expect("running cargo build");
    assert!(
        status.success(),
        "cargo build --release -p config-updater failed"
    );
    target_dir().join("release/config-updater")
}

/// The image CRDs, applied and Established.
pub async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (name, yaml) in CRDS {
        apply_yaml(&api, yaml).await;
        wait_until(
            &format!("the CRD {name}"),
            Duration::from_secs(60),
            || async {
                let crd = api.get(name).await.map_err(|e| e.to_string())?;
                let established = crd
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                established
                    .then_some(())
                    .ok_or_else(|| "not Established yet".to_owned())
            },
        )
        .await;
    }
}

/// A free loopback port (bound, then released).
pub fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("an ephemeral port");
    listener.local_addr().expect("its address").to_string()
}

/// Whether nothing listens on `addr` now.
pub fn addr_is_free(addr: &str) -> bool {
    std::net::TcpListener::bind(addr).is_ok()
}

/// The release daemon, running; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Daemon {
    child: Child,
    pub log: PathBuf,
    pub started: Instant,
    _work: tempfile::TempDir,
}

/// What /proc says about a process's memory, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub rss_kib: u64,
    pub hwm_kib: u64,
    /// Of the RSS: heap, stacks and other anonymous pages.
    pub anon_kib: u64,
    /// Of the RSS: pages of mapped files, mostly the binary's code.
    pub file_kib: u64,
    pub threads: u64,
}

impl Memory {
    /// `/proc/<pid>/status` of a process (`self` for this one).
    pub fn of(pid: &str) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
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
            anon_kib: field("RssAnon:"),
            file_kib: field("RssFile:"),
            threads: field("Threads:"),
        }
    }
}

/// KiB as MiB with one decimal.
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
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
        let log = work.path().join("config-updater.log");
        let mut cmd = Command::new(binary);
        cmd.args(["--log-format", "json", "--log-level", log_filter, "run"])
            .args(["--watch-namespace", namespace, "--metrics-addr", addr])
            .arg("--work-dir")
            .arg(work.path().join("work"))
            .env("KUBECONFIG", world.kubeconfig())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("the log file"));
        if let Some(token) = token {
            let file = work.path().join("distribution-token");
            std::fs::write(&file, token).expect("the token file");
            cmd.arg("--webhook-secret-file")
                .arg(format!("distribution={}", file.display()));
        }
        let child = cmd.spawn().expect("starting config-updater");
        let daemon = Daemon {
            child,
            log,
            started: Instant::now(),
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

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    pub fn memory(&self) -> Memory {
        Memory::of(&self.pid())
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.pid()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
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
