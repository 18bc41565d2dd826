//! An etcd of a test's own, the world's binary on free loopback ports with a scratch data
//! directory: under an [`ExtraApiserver`](crate::apiserver::ExtraApiserver) it makes a cluster a
//! test may freeze (SIGSTOP) without touching the world's, which every other test and the
//! world's controllers use.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::World;
use crate::apiserver::{free_port, world_command};

/// A running etcd; killed when dropped.
pub struct TestEtcd {
    child: Child,
    client_port: u16,
    _dir: tempfile::TempDir,
}

impl TestEtcd {
    /// Starts it and waits until `/health` says so.
    pub async fn start(world: &World) -> TestEtcd {
        let (program, _) = world_command(world, "etcd").unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().expect("a data directory for etcd");
        let (client_port, peer_port) = (free_port(), free_port());
        let client = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).expect("etcd's log");
        let child = Command::new(&program)
            .args(["--name", "test", "--data-dir"])
            .arg(dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("test={peer}")])
            .args(["--unsafe-no-fsync", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("etcd's log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        let etcd = TestEtcd {
            child,
            client_port,
            _dir: dir,
        };
        etcd.wait_healthy(Duration::from_secs(30)).await;
        etcd
    }

    /// Its client URL, for `--etcd-servers`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// Freezes it (SIGSTOP): connections stay open, nothing answers, as a stalled disk or a
    /// paused VM would.
    pub fn pause(&self) {
        assert!(self.signal("-STOP"), "kill -STOP etcd");
    }

    /// Thaws it (SIGCONT).
    pub fn resume(&self) {
        assert!(self.signal("-CONT"), "kill -CONT etcd");
    }

    fn signal(&self, signal: &str) -> bool {
        Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .is_ok_and(|status| status.success())
    }

    async fn wait_healthy(&self, timeout: Duration) {
        let started = Instant::now();
        let url = format!("{}/health", self.url());
        loop {
            if let Ok(response) = reqwest::get(&url).await
                && response.status().is_success()
            {
                return;
            }
            assert!(
                started.elapsed() < timeout,
                "etcd not healthy after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for TestEtcd {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
