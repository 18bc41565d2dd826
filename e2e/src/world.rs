//! The running local world, as `e2e/env up` describes it in `$SLUICE_WORLD_DIR/env.sh`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::env_file;

/// The message every test fails with when there is no world to run against.
pub const NOT_UP: &str = "the local world is not up: run `e2e/env up`";

/// Directory of the world's helper commands (push-image, git-seed), also put on PATH by env.sh.
pub const WORLD_BIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/world/bin");

/// The variables that mark a shell where env.sh was sourced.
const SOURCED_MARKER: &str = "SLUICE_REGISTRY";

/// The environment of the running local world.
///
/// Loaded once per test binary from the process environment when env.sh was sourced into it,
/// else from `$SLUICE_WORLD_DIR/env.sh` (default `/tmp/sluice-world/env.sh`), so `cargo test`
/// works either way.
#[derive(Debug, Clone)]
pub struct World {
    dir: PathBuf,
    vars: BTreeMap<String, String>,
}

impl World {
    /// The world of this test binary. Panics with [`NOT_UP`] when there is none.
    pub fn get() -> &'static World {
        static WORLD: OnceLock<World> = OnceLock::new();
        WORLD.get_or_init(|| World::load().unwrap_or_else(|why| panic!("{NOT_UP} ({why})")))
    }

    /// Loads the world's environment; `Err` tells why there is none.
    pub fn load() -> Result<World, String> {
        crate::install_crypto_provider();
        let dir = PathBuf::from(
            std::env::var("SLUICE_WORLD_DIR").unwrap_or_else(|_| "/tmp/sluice-world".into()),
        );
        let env_sh = dir.join("env.sh");
        let file_vars = match std::fs::read_to_string(&env_sh) {
            Ok(text) => env_file::parse(&text),
            Err(_) => BTreeMap::new(),
        };
        let sourced = std::env::var_os(SOURCED_MARKER).is_some();
        if !sourced && file_vars.is_empty() {
            return Err(format!(
                "no {SOURCED_MARKER} in the environment and no {}",
                env_sh.display()
            ));
        }
        // Sourced: the process environment wins, env.sh fills what it lacks. Not sourced: only
        // env.sh counts (a KUBECONFIG of the developer's own must not leak into the tests).
        let mut vars = file_vars;
        if sourced {
            for key in vars.keys().cloned().collect::<Vec<_>>() {
                if let Ok(v) = std::env::var(&key) {
                    vars.insert(key, v);
                }
            }
            for (k, v) in std::env::vars() {
                if k.starts_with("SLUICE_") || k == "KUBECONFIG" {
                    vars.insert(k, v);
                }
            }
        }
        // The helpers are always reachable, whatever PATH env.sh published.
        let path = vars
            .get("PATH")
            .cloned()
            .or_else(|| std::env::var("PATH").ok())
            .unwrap_or_default();
        if !path.split(':').any(|p| p == WORLD_BIN) {
            vars.insert("PATH".into(), format!("{WORLD_BIN}:{path}"));
        }
        vars.entry("SLUICE_WORLD_DIR".into())
            .or_insert_with(|| dir.display().to_string());
        let world = World { dir, vars };
        if world.var("KUBECONFIG").is_none() {
            return Err("the world's environment has no KUBECONFIG".into());
        }
        Ok(world)
    }

    /// The world's state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// All variables of the world, to pass to the commands it provides.
    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }

    /// One variable, if the world published it.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// One variable the world must publish; panics naming it when it does not.
    pub fn require(&self, name: &str) -> &str {
        self.var(name).unwrap_or_else(|| {
            panic!(
                "the local world publishes no {name} (see {}/env.sh); is it up to date? run `e2e/env up`",
                self.dir.display()
            )
        })
    }

    fn require_path(&self, name: &str) -> PathBuf {
        PathBuf::from(self.require(name))
    }

    /// The admin kubeconfig of the world's kube-apiserver.
    pub fn kubeconfig(&self) -> PathBuf {
        self.require_path("KUBECONFIG")
    }

    /// The regex of container images whose pods crash-loop in the world.
    pub fn crash_pattern(&self) -> regex::Regex {
        let p = self
            .var("SLUICE_CRASH_PATTERN")
            .unwrap_or(r":([A-Za-z0-9_.-]*[A-Za-z_.-])?13[A-Za-z_.-]*(@sha256:[0-9a-f]+)?$");
        regex::Regex::new(p)
            .unwrap_or_else(|e| panic!("SLUICE_CRASH_PATTERN {p:?} is no regex: {e}"))
    }

    /// `host:port` of the plain-HTTP, anonymous registry.
    pub fn registry(&self) -> &str {
        self.require("SLUICE_REGISTRY")
    }

    /// `host:port` of the HTTPS registry with basic auth.
    pub fn registry_tls(&self) -> &str {
        self.require("SLUICE_REGISTRY_TLS")
    }

    /// User and password of the HTTPS registry.
    pub fn registry_credentials(&self) -> (&str, &str) {
        (
            self.require("SLUICE_REGISTRY_USER"),
            self.require("SLUICE_REGISTRY_PASSWORD"),
        )
    }

    /// The world's CA certificate file (PEM), signer of every TLS server of the world.
    pub fn ca_file(&self) -> PathBuf {
        match self.var("SLUICE_CA_FILE") {
            Some(p) => PathBuf::from(p),
            None => self.dir.join("pki/ca.crt"),
        }
    }

    /// The world's CA certificate, PEM.
    pub fn ca_pem(&self) -> Vec<u8> {
        let path = self.ca_file();
        std::fs::read(&path)
            .unwrap_or_else(|e| panic!("reading the world CA {}: {e}", path.display()))
    }

    /// The URL both registries POST their distribution notifications to.
    pub fn registry_notify_url(&self) -> &str {
        self.var("SLUICE_REGISTRY_NOTIFY_URL")
            .unwrap_or("http://127.0.0.1:19090/webhook/distribution")
    }

    /// The bearer token the registries send with their notifications.
    pub fn registry_notify_token(&self) -> &str {
        self.require("SLUICE_REGISTRY_NOTIFY_TOKEN")
    }

    /// User and password of the git servers over HTTP(S).
    pub fn git_credentials(&self) -> (&str, &str) {
        (
            self.require("SLUICE_GIT_USER"),
            self.require("SLUICE_GIT_PASSWORD"),
        )
    }

    /// The clone URL of repository `name` over plain HTTP (basic auth).
    pub fn git_http_url(&self, name: &str) -> String {
        format!(
            "{}/{name}.git",
            self.require("SLUICE_GIT_HTTP_URL").trim_end_matches('/')
        )
    }

    /// The clone URL of repository `name` over HTTPS (basic auth, the world CA).
    pub fn git_https_url(&self, name: &str) -> String {
        format!(
            "{}/{name}.git",
            self.require("SLUICE_GIT_HTTPS_URL").trim_end_matches('/')
        )
    }

    /// The clone URL of repository `name` over SSH.
    pub fn git_ssh_url(&self, name: &str) -> String {
        format!(
            "{}/{name}.git",
            self.require("SLUICE_GIT_SSH_URL").trim_end_matches('/')
        )
    }

    /// The private key the SSH git server accepts.
    pub fn git_ssh_key(&self) -> PathBuf {
        self.require_path("SLUICE_GIT_SSH_KEY")
    }

    /// The known_hosts file holding the SSH git server's host key.
    pub fn git_known_hosts(&self) -> PathBuf {
        self.require_path("SLUICE_GIT_KNOWN_HOSTS")
    }

    /// The directory of the bare repositories the git servers serve.
    pub fn git_root(&self) -> PathBuf {
        self.require_path("SLUICE_GIT_ROOT")
    }

    /// The bare repository `name` on disk.
    pub fn git_bare_repo(&self, name: &str) -> PathBuf {
        self.git_root().join(format!("{name}.git"))
    }
}
