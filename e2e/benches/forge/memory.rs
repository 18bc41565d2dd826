//! The memory of the processes a run involves (the daemons, Gitea), read from /proc every
//! 200 ms while the sections run: the largest VmRSS seen, and the last VmHWM (the kernel's peak
//! of the process's life) read before it stopped.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_e2e::World;
use sluice_e2e::bench::{Memory, mib};

/// The heading of the memory section.
pub const HEADING: &str = "## memory";

const EVERY: Duration = Duration::from_millis(200);

struct Watched {
    name: String,
    pid: String,
    /// The largest VmRSS read.
    peak_rss_kib: u64,
    /// The last reading of a live process.
    last: Memory,
}

/// The processes watched, sampled by a task of their own until dropped.
pub struct Peaks {
    watched: Arc<Mutex<Vec<Watched>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Peaks {
    pub fn start() -> Peaks {
        let watched: Arc<Mutex<Vec<Watched>>> = Arc::default();
        let sampled = watched.clone();
        let task = tokio::spawn(async move {
            loop {
                sample(&sampled);
                tokio::time::sleep(EVERY).await;
            }
        });
        Peaks { watched, task }
    }

    /// Samples process `pid` as `name` from now on (a name watched already gets the new pid).
    pub fn watch(&self, name: &str, pid: &str) {
        let mut watched = self.watched.lock().expect("the peaks");
        watched.retain(|w| w.name != name);
        watched.push(Watched {
            name: name.to_owned(),
            pid: pid.to_owned(),
            peak_rss_kib: 0,
            last: Memory::default(),
        });
        drop(watched);
        self.sample();
    }

    /// Reads every process now (call it before stopping one, so its VmHWM is kept).
    pub fn sample(&self) {
        sample(&self.watched);
    }

    /// `name`'s figures so far: its last reading and the largest VmRSS seen.
    pub fn of(&self, name: &str) -> String {
        self.sample();
        let watched = self.watched.lock().expect("the peaks");
        watched
            .iter()
            .find(|w| w.name == name)
            .map(line)
            .unwrap_or_else(|| format!("{name}: not watched"))
    }

    /// One line per process.
    pub fn report(&self) -> String {
        self.sample();
        let watched = self.watched.lock().expect("the peaks");
        let mut out = String::new();
        for w in watched.iter() {
            let _ = writeln!(out, "{}", line(w));
        }
        out
    }
}

impl Drop for Peaks {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn line(w: &Watched) -> String {
    format!(
        "{} (pid {}): VmRSS {} (anon {}, file {}) at the last reading, sampled peak VmRSS {}, VmHWM {}",
        w.name,
        w.pid,
        mib(w.last.rss_kib),
        mib(w.last.anon_kib),
        mib(w.last.file_kib),
        mib(w.peak_rss_kib),
        mib(w.last.hwm_kib)
    )
}

fn sample(watched: &Mutex<Vec<Watched>>) {
    let mut watched = watched.lock().expect("the peaks");
    for w in watched.iter_mut() {
        let now = Memory::of(&w.pid);
        // Gone (zeros): keep what was read while it ran.
        if now.rss_kib == 0 {
            continue;
        }
        w.peak_rss_kib = w.peak_rss_kib.max(now.rss_kib);
        w.last = now;
    }
}

/// Gitea's pid, as `e2e/env up` recorded it.
pub fn forge_pid(world: &World) -> String {
    let file = world.dir().join("pids/forge.pid");
    std::fs::read_to_string(&file)
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|e| panic!("the forge's pid file {}: {e}", file.display()))
}
