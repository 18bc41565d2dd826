//! Every provider's push syncs at once, and only a verified one. One GitSync with a one-hour
//! interval (after its first sync only a push can bring a commit in), the receiver holding a
//! secret per provider. For GitLab (token header), Gitea (bare-hex signature header), the generic
//! HMAC-SHA256 receiver and GitHub in turn: a new commit is announced first without its
//! signature or token, then with a bad one — both 401, and the commit stays unapplied — then
//! properly, and it is applied within seconds.

mod sync_support;

use std::time::Duration;

use deploy_synchronizer::webhook::{self, PROVIDERS};
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::json;
use sluice_e2e::http::post;
use sluice_e2e::{TestNamespace, World, unique_name};
use sluice_shared::webhook::{Secrets, sign_hmac_sha256};
use sync_support::*;
use tokio::sync::mpsc;

fn config_map(version: &str) -> String {
    format!(
        "# What the storefront reads at start.\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shop-config\n  labels: {{app.kubernetes.io/name: shop}}\ndata:\n  release: \"{version}\"\n"
    )
}

/// What the signature or token header carries, for each way a delivery can be sent.
#[derive(Clone, Copy, Debug)]
enum Proof {
    Missing,
    Bad,
    Good,
}

/// One provider: its secret, how it signs, and its push payload.
struct Provider {
    name: &'static str,
    secret: &'static [u8],
}

impl Provider {
    /// The body and headers of a push of `after` to `main` of `url`, as this forge sends it.
    fn delivery(
        &self,
        url: &str,
        after: &str,
        proof: Proof,
    ) -> (String, Vec<(&'static str, String)>) {
        let before = "0000000000000000000000000000000000000001";
        let body = match self.name {
            "gitlab" => json!({
                "object_kind": "push", "event_name": "push",
                "before": before, "after": after, "ref": "refs/heads/main",
                "ref_protected": true, "checkout_sha": after, "user_username": "jsmith",
                "project_id": 15,
                "project": {"name": "config", "path_with_namespace": "platform/config",
                            "default_branch": "main", "web_url": "http://127.0.0.1:18080/platform/config",
                            "git_http_url": url, "git_ssh_url": "git@127.0.0.1:platform/config.git"},
                "commits": [{"id": after, "message": "shop: next release\n",
                             "added": [], "modified": ["apps/shop/configmap.yaml"], "removed": []}],
                "total_commits_count": 1,
                "repository": {"name": "config", "git_http_url": url}
            }),
            "gitea" => json!({
                "ref": "refs/heads/main", "before": before, "after": after,
                "compare_url": "", "total_commits": 1,
                "commits": [{"id": after, "message": "shop: next release\n"}],
                "repository": {"id": 7, "name": "config", "full_name": "ops/config",
                               "html_url": "http://127.0.0.1:3000/ops/config",
                               "ssh_url": "ssh://git@127.0.0.1:2222/ops/config.git",
                               "clone_url": url, "default_branch": "main"},
                "pusher": {"login": "ops"}, "sender": {"login": "ops"}
            }),
            "generic" => json!({"url": url, "ref": "main", "revision": after}),
            _ => json!({
                "ref": "refs/heads/main", "before": before, "after": after,
                "created": false, "deleted": false, "forced": false,
                "repository": {"name": "config", "full_name": "org/config", "clone_url": url},
                "pusher": {"name": "e2e"}
            }),
        }
        .to_string();
        let signed = match proof {
            Proof::Good => sign_hmac_sha256(self.secret, body.as_bytes()),
            _ => sign_hmac_sha256(b"a-guess-at-the-secret", body.as_bytes()),
        };
        let mut headers = vec![("Content-Type", "application/json".to_owned())];
        let proof_header = match self.name {
            "gitlab" => {
                headers.push(("X-Gitlab-Event", "Push Hook".to_owned()));
                let token = match proof {
                    Proof::Good => String::from_utf8(self.secret.to_vec()).unwrap(),
                    _ => "not-the-token".to_owned(),
                };
                ("X-Gitlab-Token", token)
            }
            "gitea" => {
                headers.push(("X-Gitea-Event", "push".to_owned()));
                // Gitea sends the bare hex digest, without `sha256=`.
                let hex = signed.trim_start_matches("sha256=").to_owned();
                ("X-Gitea-Signature", hex)
            }
            "generic" => ("X-Signature-256", signed),
            _ => {
                headers.push(("X-GitHub-Event", "push".to_owned()));
                ("X-Hub-Signature-256", signed)
            }
        };
        if !matches!(proof, Proof::Missing) {
            headers.push(proof_header);
        }
        (body, headers)
    }
}

const PROVIDER_SECRETS: [Provider; 4] = [
    Provider {
        name: "gitlab",
        secret: b"gitlab-token-3f9a",
    },
    Provider {
        name: "gitea",
        secret: b"gitea-secret-81c2",
    },
    Provider {
        name: "generic",
        secret: b"generic-secret-5d07",
    },
    Provider {
        name: "github",
        secret: b"github-secret-e6b4",
    },
];

async fn applied(ns: &TestNamespace) -> Option<String> {
    status(ns, "shop").await.ok()?.last_applied_revision
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_providers_verified_push_syncs_at_once_and_unverified_ones_do_nothing() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, "sync-hooks").await;

    let repo = unique_name("sync-hooks");
    let url = world.git_http_url(&repo);
    let v0 = tree(&[("apps/shop/configmap.yaml", &config_map("0"))]);
    let seed = world.git_seed(&repo, Some(v0.path())).await.unwrap();
    git_secret(&ns, world, "git").await;
    create_git_sync_spec(
        &ns,
        "shop",
        json!({
            "source": {"url": url, "ref": {"branch": "main"}, "path": "apps/shop",
                       // An hour: after the first sync nothing but a push fetches again.
                       "interval": "1h", "secretRef": {"name": "git"}},
            "targetNamespace": ns.name(),
            "healthTimeout": "1m"
        }),
    )
    .await;

    // The daemon's wiring, in-process: one secret file per provider, as --webhook-secret-file.
    let dir = tempfile::tempdir().unwrap();
    let mut flags = Vec::new();
    for provider in &PROVIDER_SECRETS {
        let path = dir.path().join(provider.name);
        std::fs::write(&path, provider.secret).unwrap();
        flags.push(format!("{}={}", provider.name, path.display()));
    }
    let secrets = Secrets::from_flags(&flags, PROVIDERS).expect("the secret flags");
    let (tx, rx) = mpsc::channel(16);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server =
        tokio::spawn(async move { axum::serve(listener, webhook::router(secrets, tx)).await });
    let synchronizer = Synchronizer::start_with_pushes(world, ns.name(), Some(rx)).await;
    wait_applied(&ns, "shop", &seed).await;

    let mut current = seed;
    for (n, provider) in PROVIDER_SECRETS.iter().enumerate() {
        let name = provider.name;
        let release = (n + 1).to_string();
        let files = tree(&[("apps/shop/configmap.yaml", &config_map(&release))]);
        let commit = commit_dir(
            world,
            &repo,
            files.path(),
            &format!("shop: release {release}"),
        )
        .await;
        let path = format!("/webhook/{name}");

        for proof in [Proof::Missing, Proof::Bad] {
            let (body, headers) = provider.delivery(&url, &commit, proof);
            let code = post(&addr, &path, &headers, &body).await;
            assert_eq!(
                code, 401,
                "{name}: a delivery with {proof:?} proof got {code}"
            );
        }
        // Proving absence needs a wait: 4 s is well beyond the ~1 s a verified push takes.
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(
            applied(&ns).await.as_deref(),
            Some(current.as_str()),
            "{name}: an unverified push synced"
        );

        let (body, headers) = provider.delivery(&url, &commit, Proof::Good);
        let started = std::time::Instant::now();
        assert_eq!(post(&addr, &path, &headers, &body).await, 202, "{name}");
        let what = format!("the commit {name} announced to be applied");
        wait_status_within(&ns, "shop", &what, Duration::from_secs(20), |s| {
            s.applied(&commit)
        })
        .await;
        println!(
            "{name}: verified push -> applied in {:?}",
            started.elapsed()
        );
        let cm = ns.api::<ConfigMap>().get("shop-config").await.unwrap();
        assert_eq!(cm.data.unwrap()["release"], release, "{name}");
        current = commit;
    }

    synchronizer.stop().await;
    server.abort();
}
