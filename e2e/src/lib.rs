//! End-to-end tests of Sluice against the real local world that `e2e/env up` starts: a
//! kube-apiserver with kwok nodes, two OCI registries that send notifications, and git servers
//! over HTTP, HTTPS and SSH.
//!
//! This crate holds what every test needs: [`World`] (the world's environment, loaded from the
//! process environment or from `$SLUICE_WORLD_DIR/env.sh`), a kube client and a namespace of its
//! own for each test ([`TestNamespace`]), unique names ([`unique_name`]), polling with a deadline
//! ([`wait_until`], and for a resource's status [`wait_status`]), the world's helper commands ([`World::push_image`], [`World::git_seed`]) and
//! git helpers ([`git_support`]), the synchronizer stories' setup ([`sync`]), the Config Updater
//! stories' setup ([`updater`]), either daemon's controllers in-process ([`in_process`]), the
//! daemon binaries run as an operator runs them ([`daemon`]), an apiserver of a test's own to
//! kill and restart ([`apiserver`]) and the writes it served ([`apimetrics`]), a bare HTTP client for webhooks ([`http`]) and, for the
//! world benchmarks, the release daemons and their figures ([`bench`]).
//! The tests themselves are in `tests/`, one user story per file.

pub mod apimetrics;
pub mod apiserver;
pub mod bench;
pub mod daemon;
pub mod env_file;
pub mod etcd;
pub mod forge;
pub mod git_support;
pub mod http;
pub mod in_process;
pub mod installed;
pub mod relay;
pub mod sync;
pub mod updater;

mod command;
mod kube_support;
mod wait;
mod world;

pub use command::{PushedChart, PushedImage};
pub use kube_support::{
    E2E_LABEL, HAND_EDIT, TestNamespace, apply_yaml, edit_by_hand, install_crd_yaml,
};
pub use wait::{Conditions, Seen, wait_status, wait_until};
pub use world::{NOT_UP, WORLD_BIN, World};

use std::sync::atomic::{AtomicU32, Ordering};

/// A temporary directory holding `files` (`(relative path, content)`), as a repository is seeded
/// from.
pub fn files_dir<T: AsRef<[u8]>>(files: &[(&str, T)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

/// Copies the directory tree `from` to `to` (created), as a test lays out a fixture in a
/// repository of its own.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The field manager Sluice applies with.
pub const FIELD_MANAGER: &str = "sluice";

/// A DNS-1123 name, unique across the tests of every test binary of one run:
/// `<prefix>-<pid><time><counter>`, lowercase, at most 63 characters.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32).rotate_left(7))
        .unwrap_or(0);
    let suffix = format!(
        "{:04x}{:06x}{n:x}",
        std::process::id() & 0xffff,
        nanos & 0xff_ffff
    );
    let prefix: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63 - 1 - suffix.len())
        .collect();
    let prefix = prefix.trim_matches('-');
    if prefix.is_empty() {
        format!("t{suffix}")
    } else {
        format!("{prefix}-{suffix}")
    }
}

/// Makes rustls' process-wide crypto provider explicit. The dependency graph enables both ring
/// (kube) and aws-lc-rs (reqwest, under oci-client), and rustls then refuses to pick one.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    log_if_asked();
}

/// With `SLUICE_E2E_LOG` set (a tracing filter such as `config_updater=debug`), the in-process
/// daemons log to stderr: what a story's daemon did when it failed. Off by default.
fn log_if_asked() {
    let Ok(filter) = std::env::var("SLUICE_E2E_LOG") else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init();
}
