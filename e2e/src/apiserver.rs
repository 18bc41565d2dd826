//! A second kube-apiserver of a test's own, on another port, over the world's etcd: the normal
//! HA shape (two apiservers, one etcd), so a test can kill and restart *its* apiserver while
//! the world's, which every other test uses, stays up. Same binary, flags and certificates as the
//! world's (read from the running process), only the port differs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::World;

/// A kube-apiserver this process started; killed when dropped.
pub struct ExtraApiserver {
    program: PathBuf,
    args: Vec<String>,
    port: u16,
    log: PathBuf,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

/// The world's kube-apiserver command line (program and arguments), from its pid file.
pub fn world_apiserver_command(world: &World) -> Result<(PathBuf, Vec<String>), String> {
    world_command(world, "kube-apiserver")
}

/// The command line (program and arguments) of the world's daemon `name`, from its pid file.
pub fn world_command(world: &World, name: &str) -> Result<(PathBuf, Vec<String>), String> {
    let pid_file = world.dir().join(format!("pids/{name}.pid"));
    let pid = std::fs::read_to_string(&pid_file)
        .map_err(|e| format!("reading {}: {e}", pid_file.display()))?;
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", pid.trim()))
        .map_err(|e| format!("the world's {name} (pid {}) is gone: {e}", pid.trim()))?;
    let mut words = cmdline
        .split(|&b| b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned());
    let program = words
        .next()
        .ok_or_else(|| format!("the world's {name} has no command line"))?;
    Ok((PathBuf::from(program), words.collect()))
}

/// `args` with `--secure-port` set to `port` (either `--flag value` or `--flag=value`).
pub fn with_port(args: &[String], port: u16) -> Vec<String> {
    with_flag(args, "--secure-port", &port.to_string())
}

/// `args` with `flag` set to `value` (either `--flag value` or `--flag=value` replaced, else
/// added).
pub fn with_flag(args: &[String], flag: &str, value: &str) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len() + 2);
    let mut replaced = false;
    let mut skip_value = false;
    let with_equals = format!("{flag}=");
    for arg in args {
        if skip_value {
            skip_value = false;
            continue;
        }
        if arg == flag {
            skip_value = true;
        } else if !arg.starts_with(&with_equals) {
            out.push(arg.clone());
            continue;
        }
        out.push(format!("{flag}={value}"));
        replaced = true;
    }
    if !replaced {
        out.push(format!("{flag}={value}"));
    }
    out
}

/// A free TCP port on loopback (free when asked; nobody is told to keep it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl ExtraApiserver {
    /// Starts a kube-apiserver like the world's on `port` and waits until it is ready.
    pub async fn start(world: &World, port: u16) -> ExtraApiserver {
        Self::start_over(world, port, None).await
    }

    /// [`start`](Self::start), over the etcd at `etcd` (`http://127.0.0.1:…`) when given: a
    /// cluster of the test's own, empty but for what an apiserver makes itself.
    pub async fn start_over(world: &World, port: u16, etcd: Option<&str>) -> ExtraApiserver {
        let (program, args) = world_apiserver_command(world).unwrap_or_else(|e| panic!("{e}"));
        let mut args = with_port(&args, port);
        if let Some(etcd) = etcd {
            args = with_flag(&args, "--etcd-servers", etcd);
        }
        let dir = tempfile::tempdir().expect("a directory for the apiserver's log");
        let mut server = ExtraApiserver {
            program,
            args,
            port,
            log: dir.path().join("kube-apiserver.log"),
            child: None,
            _dir: dir,
        };
        server.spawn();
        server.wait_ready(world, Duration::from_secs(120)).await;
        server
    }

    /// The port it serves on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Its log (both runs, appended).
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The world's admin kube config, pointed at this apiserver.
    pub async fn kube_config(&self, world: &World) -> kube::Config {
        let kubeconfig = Kubeconfig::read_from(world.kubeconfig()).expect("the world's kubeconfig");
        let mut config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .expect("a config from the world's kubeconfig");
        config.cluster_url = self.url().parse().expect("the apiserver's URL");
        config
    }

    /// Writes the world's admin kubeconfig, pointed at this apiserver, to `path` (for a daemon
    /// started as a process); returns `path`.
    pub fn kubeconfig_file(&self, world: &World, path: &Path) -> PathBuf {
        let kubeconfig = std::fs::read_to_string(world.kubeconfig()).expect("the kubeconfig");
        let world_url = world.require("SLUICE_KUBE_APISERVER");
        assert!(
            kubeconfig.contains(world_url),
            "the kubeconfig names {world_url}"
        );
        std::fs::write(path, kubeconfig.replace(world_url, &self.url()))
            .expect("writing the kubeconfig");
        path.to_owned()
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the apiserver's log file");
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.program.display()));
        self.child = Some(child);
    }

    /// Kills it at once (SIGKILL, as a crash or an OOM kill would) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again after [`kill`](Self::kill) and waits until it is ready.
    pub async fn restart(&mut self, world: &World) {
        self.kill();
        self.spawn();
        self.wait_ready(world, Duration::from_secs(120)).await;
    }

    /// Waits until `/readyz` answers ok; panics with the log's tail after `timeout`.
    pub async fn wait_ready(&mut self, world: &World, timeout: Duration) {
        let config = self.kube_config(world).await;
        let client = kube::Client::try_from(config).expect("a client for the extra apiserver");
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(exit)) = child.try_wait()
            {
                panic!(
                    "the extra kube-apiserver on :{} exited ({exit}):\n{}",
                    self.port,
                    self.log_tail()
                );
            }
            let request = axum::http::Request::get("/readyz")
                .body(Vec::new())
                .unwrap();
            if let Ok(text) = client.request_text(request).await
                && text.trim() == "ok"
            {
                return;
            }
            if started.elapsed() > timeout {
                panic!(
                    "the extra kube-apiserver on :{} is not ready after {timeout:?}:\n{}",
                    self.port,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for ExtraApiserver {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_port_changes() {
        let args: Vec<String> = [
            "--etcd-servers",
            "http://x",
            "--secure-port",
            "16443",
            "--v=1",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            with_port(&args, 16444),
            ["--etcd-servers", "http://x", "--secure-port=16444", "--v=1"]
        );
        let args: Vec<String> = ["--secure-port=1", "--v=1"].map(String::from).to_vec();
        assert_eq!(with_port(&args, 2), ["--secure-port=2", "--v=1"]);
        assert_eq!(with_port(&[], 3), ["--secure-port=3"]);
    }
}
