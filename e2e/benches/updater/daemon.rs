//! The release daemon as a child process, started on an address; the image CRDs it serves.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, Client};
use sluice_e2e::bench::{Memory, Process};
use sluice_e2e::{World, apply_yaml, http, wait_until};

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

/// The release daemon, running; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Daemon {
    process: Process,
    _work: tempfile::TempDir,
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
        let mut cmd = Command::new(binary);
        cmd.args(["--log-format", "json", "--log-level", log_filter, "run"])
            .args(["--watch-namespace", namespace, "--metrics-addr", addr])
            .arg("--work-dir")
            .arg(work.path().join("work"))
            .env("KUBECONFIG", world.kubeconfig());
        if let Some(token) = token {
            let file = work.path().join("distribution-token");
            std::fs::write(&file, token).expect("the token file");
            cmd.arg("--webhook-secret-file")
                .arg(format!("distribution={}", file.display()));
        }
        let process = Process::spawn(cmd, &work.path().join("config-updater.log"));
        let daemon = Daemon {
            process,
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

    pub fn memory(&self) -> Memory {
        self.process.memory()
    }

    /// When it was started.
    pub fn started(&self) -> Instant {
        self.process.started
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        self.process.log_text()
    }
}
