//! Sluice as `manifests/` installs it, for stories that run a daemon with exactly the rights its
//! ServiceAccount is granted there: the manifests applied to the world once per test process
//! (`kubectl apply --server-side -k manifests/`), and a kube config that authenticates with a
//! token of the daemon's ServiceAccount (a TokenRequest, as a pod's projected token is), not the
//! world's admin credentials. A story that needs more than the manifests grant fails with the
//! API server's Forbidden, which is the point.

use std::path::PathBuf;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::PostParams;
use kube::config::AuthInfo;
use kube::{Api, Client};
use tokio::sync::OnceCell;

use crate::World;

/// The namespace the manifests install the daemons into.
pub const NAMESPACE: &str = "sluice-system";
/// The daemons' ServiceAccounts in [`NAMESPACE`].
pub const SYNCHRONIZER: &str = "deploy-synchronizer";
pub const UPDATER: &str = "config-updater";

/// How long a story's token lasts; a story is far shorter.
const TOKEN_SECONDS: i64 = 2 * 3600;

static INSTALLED: OnceCell<()> = OnceCell::const_new();

/// The repository's `manifests/`.
pub fn manifests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../manifests")
}

/// Runs the world's kubectl with `args`.
pub fn kubectl(world: &World, args: &[&str]) -> std::process::Output {
    std::process::Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", world.kubeconfig())
        .env("PATH", world.var("PATH").unwrap_or("/usr/bin:/bin"))
        .output()
        .expect("running the world's kubectl (is the world's env sourced?)")
}

/// Applies `manifests/` to the world (server-side; `--force-conflicts` because other stories
/// install the same CRDs with a field manager of their own). Returns kubectl's output.
pub fn apply_manifests(world: &World) -> std::process::Output {
    let dir = manifests_dir();
    let out = kubectl(
        world,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager",
            "sluice-install",
            "-k",
            dir.to_str().expect("a UTF-8 path"),
        ],
    );
    assert!(
        out.status.success(),
        "kubectl apply -k manifests/: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl World {
    /// The world's kube config, authenticated as ServiceAccount `account` of [`NAMESPACE`] with a
    /// fresh token, the manifests applied first (once per process).
    pub async fn service_account_config(&self, account: &str) -> kube::Config {
        INSTALLED
            .get_or_init(|| async {
                tokio::task::spawn_blocking(|| apply_manifests(World::get()))
                    .await
                    .expect("kubectl apply");
            })
            .await;
        self.service_account_config_in(NAMESPACE, account).await
    }

    /// The world's kube config, authenticated as ServiceAccount `account` of `namespace` (which
    /// must exist) with a fresh token.
    pub async fn service_account_config_in(&self, namespace: &str, account: &str) -> kube::Config {
        let accounts: Api<ServiceAccount> = Api::namespaced(self.kube_client().await, namespace);
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                expiration_seconds: Some(TOKEN_SECONDS),
                ..TokenRequestSpec::default()
            }),
            ..TokenRequest::default()
        };
        let issued = accounts
            .create_token_request(account, &PostParams::default(), &request)
            .await
            .unwrap_or_else(|e| panic!("a token of ServiceAccount {namespace}/{account}: {e}"));
        let token = issued
            .status
            .and_then(|status| status.token)
            .expect("a token in the token request's status");
        let mut config = crate::sync::kube_config(self).await;
        config.auth_info = AuthInfo {
            token: Some(token.into()),
            ..AuthInfo::default()
        };
        config
    }

    /// A client as ServiceAccount `account` (see [`World::service_account_config`]).
    pub async fn service_account_client(&self, account: &str) -> Client {
        let config = self.service_account_config(account).await;
        Client::try_from(config).unwrap_or_else(|e| panic!("a client as {account}: {e}"))
    }
}
