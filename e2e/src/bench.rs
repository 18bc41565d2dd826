//! What the world benchmarks share: the release daemons (the build that ships), built by cargo,
//! started as child processes with their log in a file, their memory read from /proc, stopped
//! with SIGTERM (then SIGKILL) when dropped; and how figures are written (milliseconds,
//! quantiles, the figures file's header).
//!
//! The e2e tests run the debug binaries of their own build instead ([`crate::daemon`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

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

/// Where a benchmark keeps its figures and logs: `target/bench/<file>`.
pub fn bench_file(file: &str) -> PathBuf {
    let dir = target_dir().join("bench");
    let _ = std::fs::create_dir_all(&dir);
    dir.join(file)
}

/// `target/release/<package>` (the binary of the same name), built, or found up to date, by
/// cargo first.
pub fn build(package: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            package,
            "--bin",
            package,
        ])
        .current_dir(WORKSPACE)
        .status()
        .expect("running cargo build");
    assert!(
        status.success(),
        "cargo build --release -p {package} failed"
    );
    target_dir().join("release").join(package)
}

/// A free loopback address (bound, then released).
pub fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("an ephemeral port");
    listener.local_addr().expect("its address").to_string()
}

/// Whether nothing listens on `addr` now.
pub fn addr_is_free(addr: &str) -> bool {
    std::net::TcpListener::bind(addr).is_ok()
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
    /// `/proc/<pid>/status` of a process (`self` for this one); zeros once it is gone.
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

/// KiB as MiB with one decimal.
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// A release daemon running as a child process, stderr in `log`.
pub struct Process {
    child: Child,
    pub log: PathBuf,
    pub started: Instant,
}

impl Process {
    /// Spawns `command` with stdin and stdout closed and stderr (where the daemons log) in `log`.
    pub fn spawn(mut command: Command, log: &Path) -> Process {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("the log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {:?}: {e}", command.get_program()));
        Process {
            child,
            log: log.to_owned(),
            started: Instant::now(),
        }
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    pub fn memory(&self) -> Memory {
        Memory::of(&self.pid())
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // `kill` sends the signal (std's Child can only SIGKILL).
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

/// The runtime a bench drives the world from: two workers, as the machine has two cores.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// The first lines of a figures file: what was measured, and on what.
pub fn report_header(daemon: &str) -> String {
    format!(
        "# {daemon} world benchmark (release build, the local world on loopback)\n\
         # machine: {} cores, shared with other builds and tests while measuring\n\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    )
}

/// Milliseconds with one decimal.
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// The `q` quantile (0..=1) of sorted durations, nearest rank.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// `p50 … p90 … min … max … (n = …)` of unsorted durations.
pub fn summary(durations: &[Duration]) -> String {
    let mut sorted = durations.to_vec();
    sorted.sort();
    format!(
        "p50 {}, p90 {}, min {}, max {} (n = {})",
        ms(quantile(&sorted, 0.5)),
        ms(quantile(&sorted, 0.9)),
        ms(sorted.first().copied().unwrap_or_default()),
        ms(sorted.last().copied().unwrap_or_default()),
        sorted.len()
    )
}
