//! What the world benchmarks share: the release daemons (the build that ships), built by cargo,
//! started as child processes with their log in a file, their memory read from /proc, stopped
//! with SIGTERM (then SIGKILL) when dropped, their `/healthz` awaited and their JSON log read
//! back ([`log_lines`]); a new tag pushed as one manifest PUT ([`TagPusher`]); and how figures are
//! written (milliseconds, quantiles, the figures file's header, [`Figures`] keeping the sections
//! not run from the last run).
//!
//! The e2e tests run the debug binaries of their own build instead ([`crate::daemon`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};

use crate::{http, wait_until};

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

/// The CPU time a process has used (user + system), from `/proc/<pid>/stat`; zero once it is
/// gone.
pub fn cpu_time(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which may hold spaces), from the state on.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the state (field 3).
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
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

/// Waits (up to 30 s) until `GET /healthz` on `addr` answers 200; `what` names the daemon in
/// the timeout's panic.
pub async fn wait_healthz(addr: &str, what: &str) {
    wait_until(
        &format!("{what} /healthz on {addr}"),
        Duration::from_secs(30),
        || async {
            match http::request(addr, "GET", "/healthz", &[], b"").await {
                Ok(r) if r.status == 200 => Ok(()),
                Ok(r) => Err(format!("status {}", r.status)),
                Err(e) => Err(e),
            }
        },
    )
    .await;
}

/// One line of a daemon's JSON log (`--log-format json`): when, what, and its fields (the
/// whole JSON object, fields at the top level as the daemons log them).
#[derive(Debug, Clone)]
pub struct LogLine {
    pub at: DateTime<Utc>,
    pub message: String,
    pub fields: serde_json::Value,
}

impl LogLine {
    /// Field `name` as text (strings as they are, anything else as JSON), or "".
    pub fn field(&self, name: &str) -> String {
        match &self.fields[name] {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

/// The lines of a JSON log that parse (with a timestamp and a message), in order.
pub fn log_lines(log: &str) -> Vec<LogLine> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|fields| {
            Some(LogLine {
                at: fields["timestamp"].as_str()?.parse().ok()?,
                message: fields["message"].as_str()?.to_owned(),
                fields,
            })
        })
        .collect()
}

/// From `from` (this machine's clock, as taken with `SystemTime::now()`) to a log line's time;
/// zero when the line is earlier.
pub fn since(from: SystemTime, at: DateTime<Utc>) -> Duration {
    (at - DateTime::<Utc>::from(from))
        .to_std()
        .unwrap_or_default()
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Pushes new tags of a repository of the plain registry as one manifest PUT each: the manifest
/// of a tag pushed before, annotated with the new tag, so its blobs are already there. Nothing
/// else happens between the clock and the registry (and its notification).
pub struct TagPusher {
    registry: String,
    path: String,
    template: serde_json::Value,
}

impl TagPusher {
    /// Reads the manifest of `path:tag` (already pushed) from `registry` (`host:port`).
    pub async fn new(registry: &str, path: &str, tag: &str) -> TagPusher {
        let manifest_path = format!("/v2/{path}/manifests/{tag}");
        let template = http::request(
            registry,
            "GET",
            &manifest_path,
            &[("Accept", OCI_MANIFEST)],
            b"",
        )
        .await
        .unwrap_or_else(|e| panic!("GET {manifest_path}: {e}"));
        assert_eq!(template.status, 200, "GET {manifest_path}");
        TagPusher {
            registry: registry.to_owned(),
            path: path.to_owned(),
            template: serde_json::from_slice(&template.body).expect("a JSON manifest"),
        }
    }

    /// PUTs `tag`; returns how long the registry took to answer (201).
    pub async fn put(&self, tag: &str) -> Duration {
        let mut manifest = self.template.clone();
        manifest["annotations"] = serde_json::json!({"dev.sluice.bench.tag": tag});
        let body = serde_json::to_vec(&manifest).expect("JSON");
        let start = Instant::now();
        let put = http::request(
            &self.registry,
            "PUT",
            &format!("/v2/{}/manifests/{tag}", self.path),
            &[("Content-Type", OCI_MANIFEST)],
            &body,
        )
        .await
        .expect("the manifest PUT");
        let took = start.elapsed();
        assert_eq!(
            put.status,
            201,
            "PUT {tag}: {}",
            String::from_utf8_lossy(&put.body)
        );
        took
    }
}

/// The section starting with `heading` in an earlier figures file, up to the next `## `
/// heading; empty when it has none.
pub fn previous_section(previous: &str, heading: &str) -> String {
    let Some(start) = previous.find(heading) else {
        return String::new();
    };
    let rest = &previous[start..];
    let end = rest[heading.len()..]
        .find("\n## ")
        .map_or(rest.len(), |i| heading.len() + i + 1);
    rest[..end].to_owned()
}

/// A figures file being written: the header, then each section as this run measured it, or as
/// the last run wrote it when this run did not measure it.
pub struct Figures {
    path: PathBuf,
    previous: String,
    text: String,
}

impl Figures {
    /// `target/bench/<file>`, starting with [`report_header`] of `daemon`.
    pub fn new(file: &str, daemon: &str) -> Figures {
        let path = bench_file(file);
        Figures {
            previous: std::fs::read_to_string(&path).unwrap_or_default(),
            path,
            text: report_header(daemon),
        }
    }

    /// Adds (and prints) the section `heading`: `text` when this run measured it (it starts with
    /// `heading`), else the last run's.
    pub fn section(&mut self, heading: &str, text: Option<String>) {
        let text = text.unwrap_or_else(|| previous_section(&self.previous, heading));
        print!("{text}");
        self.text.push_str(&text);
    }

    /// Writes the file; returns its path.
    pub fn write(self) -> PathBuf {
        std::fs::write(&self.path, &self.text).expect("the figures file");
        self.path
    }
}
