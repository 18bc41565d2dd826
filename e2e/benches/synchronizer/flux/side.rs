//! Flux's side of the comparison: its part of the world (apiserver, receiver, processes), its
//! resources (GitRepository, Kustomization, Receiver) made and read through dynamic APIs, the
//! predicates on their status, and the polling loop that waits on them.

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use serde_json::{Value, json};
use sluice_e2e::apimetrics;
use sluice_e2e::bench::{Memory, mib};
use sluice_e2e::{TestNamespace, World};

use super::{FLUX_JOB, FLUX_RECEIVER};
use crate::daemon::WEBHOOK_SECRET;

/// Flux's part of the world, as `e2e/world/flux.sh up` published it.
pub struct Flux {
    /// A client of Flux's own apiserver: its metrics count Flux's requests alone.
    pub apiserver: Client,
    /// `host:port` of notification-controller's receiver.
    pub receiver: String,
    pids: Vec<(&'static str, String)>,
}

impl Flux {
    pub async fn find(world: &World) -> Result<Flux, String> {
        let not_up = "Flux's part of the world is not up: run `e2e/env up --with flux`";
        let url = world.var("SLUICE_FLUX_APISERVER").ok_or(not_up)?;
        let receiver = world.var("SLUICE_FLUX_RECEIVER_URL").ok_or(not_up)?;
        let mut pids = Vec::new();
        for name in FLUX_JOB
            .iter()
            .copied()
            .chain([FLUX_RECEIVER, "flux-kube-apiserver"])
        {
            let file = world.dir().join("pids").join(format!("{name}.pid"));
            let pid = std::fs::read_to_string(&file)
                .map_err(|e| format!("{not_up} ({}: {e})", file.display()))?
                .trim()
                .to_owned();
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return Err(format!("{name} (pid {pid}) is not running: {not_up}"));
            }
            pids.push((name, pid));
        }
        let kubeconfig = Kubeconfig::read_from(world.kubeconfig()).map_err(|e| e.to_string())?;
        let mut config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| e.to_string())?;
        config.cluster_url = url.parse().map_err(|e| format!("{url}: {e}"))?;
        let apiserver = Client::try_from(config).map_err(|e| e.to_string())?;
        apimetrics::metrics_text(&apiserver).await?;
        Ok(Flux {
            apiserver,
            receiver: receiver.trim_start_matches("http://").to_owned(),
            pids,
        })
    }

    fn memory(&self, name: &str) -> Memory {
        self.pids
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, pid)| Memory::of(pid))
            .unwrap_or_default()
    }

    /// source-controller's and kustomize-controller's VmRSS, summed, in KiB.
    pub fn job_rss(&self) -> u64 {
        FLUX_JOB.iter().map(|n| self.memory(n).rss_kib).sum()
    }

    pub fn describe_memory(&self) -> String {
        let mut parts: Vec<String> = FLUX_JOB
            .iter()
            .chain([&FLUX_RECEIVER])
            .map(|n| format!("{} {}", n.trim_start_matches("flux-"), self.memory(n)))
            .collect();
        parts.insert(
            0,
            format!("job (source + kustomize) VmRSS {}", mib(self.job_rss())),
        );
        parts.join("; ")
    }
}

fn flux_api(
    client: &Client,
    ns: &str,
    group: &str,
    kind: &str,
    plural: &str,
) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(group, "v1", kind);
    let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
    Api::namespaced_with(client.clone(), ns, &resource)
}

fn git_repositories(ns: &TestNamespace) -> Api<DynamicObject> {
    let group = "source.toolkit.fluxcd.io";
    flux_api(
        ns.client(),
        ns.name(),
        group,
        "GitRepository",
        "gitrepositories",
    )
}

pub fn kustomizations(ns: &TestNamespace) -> Api<DynamicObject> {
    let group = "kustomize.toolkit.fluxcd.io";
    flux_api(
        ns.client(),
        ns.name(),
        group,
        "Kustomization",
        "kustomizations",
    )
}

fn receivers(ns: &TestNamespace) -> Api<DynamicObject> {
    let group = "notification.toolkit.fluxcd.io";
    flux_api(ns.client(), ns.name(), group, "Receiver", "receivers")
}

/// Server-side applies `body` (a whole object) through `api`, as the bench.
async fn apply(api: &Api<DynamicObject>, body: Value) {
    let name = body["metadata"]["name"]
        .as_str()
        .expect("a name")
        .to_owned();
    api.patch(
        &name,
        &PatchParams::apply("bench").force(),
        &Patch::Apply(&body),
    )
    .await
    .unwrap_or_else(|e| panic!("applying {name}: {e}"));
}

/// A GitRepository and a Kustomization `name` over `repo`'s `path`, both at `interval`.
pub async fn create_flux_sync(
    world: &World,
    ns: &TestNamespace,
    name: &str,
    repo: &str,
    path: &str,
    interval: &str,
) {
    apply(
        &git_repositories(ns),
        json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": name},
            "spec": {"url": world.git_http_url(repo), "ref": {"branch": "main"},
                     "interval": interval, "secretRef": {"name": "git-credentials"}}
        }),
    )
    .await;
    apply(
        &kustomizations(ns),
        json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": name},
            "spec": {"interval": interval, "path": format!("./{path}"), "prune": true,
                     "targetNamespace": ns.name(),
                     "sourceRef": {"kind": "GitRepository", "name": name}}
        }),
    )
    .await;
}

/// Flux's revision string of a commit on main.
pub fn flux_revision(commit: &str) -> String {
    format!("main@sha1:{commit}")
}

fn ready(object: &DynamicObject) -> bool {
    object.data["status"]["conditions"]
        .as_array()
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

pub fn applied(object: &DynamicObject, revision: &str) -> bool {
    object.data["status"]["lastAppliedRevision"].as_str() == Some(revision) && ready(object)
}

pub fn inventory_len(object: &DynamicObject) -> usize {
    object.data["status"]["inventory"]["entries"]
        .as_array()
        .map_or(0, Vec::len)
}

pub fn flux_message(object: &DynamicObject) -> String {
    object.data["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .map(|c| format!("{}: {}", c["reason"], c["message"]))
        .unwrap_or_else(|| "no Ready condition yet".into())
        .chars()
        .take(400)
        .collect()
}

/// Polls `poll` every 100 ms until it says done, sampling `rss` (KiB) meanwhile; the instant it
/// was first seen done, and the highest RSS sampled.
pub async fn poll_until<F, Fut>(
    what: &str,
    within: Duration,
    rss: impl Fn() -> u64,
    mut poll: F,
) -> (Instant, u64)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, String>>,
{
    let start = Instant::now();
    let mut max = 0;
    let mut last = String::new();
    while start.elapsed() < within {
        max = max.max(rss());
        match poll().await {
            Ok(true) => return (Instant::now(), max.max(rss())),
            Ok(false) => {}
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: not within {within:?}; last seen: {last}");
}

/// The Secret `webhook-token` a Receiver checks pushes' signatures with: the bench's webhook
/// secret.
pub async fn create_webhook_token(ns: &TestNamespace) {
    let token: Secret = serde_json::from_value(json!({
        "metadata": {"name": "webhook-token"},
        "stringData": {"token": String::from_utf8_lossy(WEBHOOK_SECRET)}
    }))
    .expect("a Secret");
    ns.api::<Secret>()
        .create(&PostParams::default(), &token)
        .await
        .expect("the receiver's token");
}

/// A Receiver `name` of type `github` for push events, triggering the GitRepository `name`.
pub async fn create_receiver(ns: &TestNamespace, name: &str) {
    apply(
        &receivers(ns),
        json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Receiver",
            "metadata": {"name": name},
            "spec": {"type": "github", "events": ["push"], "secretRef": {"name": "webhook-token"},
                     "resources": [{"apiVersion": "source.toolkit.fluxcd.io/v1",
                                    "kind": "GitRepository", "name": name}]}
        }),
    )
    .await;
}

/// Waits until the Receiver `name` is ready with a webhook path, and returns that path.
pub async fn webhook_path(ns: &TestNamespace, name: &str) -> String {
    let rec = receivers(ns);
    poll_until(
        "the Receiver's webhook path",
        Duration::from_secs(60),
        || 0,
        || {
            let rec = rec.clone();
            async move {
                let r = rec.get(name).await.map_err(|e| e.to_string())?;
                if ready(&r) && r.data["status"]["webhookPath"].is_string() {
                    Ok(true)
                } else {
                    Err(flux_message(&r))
                }
            }
        },
    )
    .await;
    rec.get(name).await.expect("the Receiver").data["status"]["webhookPath"]
        .as_str()
        .expect("a webhook path")
        .to_owned()
}
