//! What the Config Updater's e2e tests (and its benchmark) share: the three CRDs installed, a
//! namespace of the test's own with the updater's controllers running in-process for it, the
//! image resources a story creates, config repositories seeded on the world's git server
//! ([`repo`]), a webhook receiver on an ephemeral port ([`webhook`]) and SSH signing keys checked
//! with the real git CLI ([`signing`]). `tests/update_support` re-exports all of it.

pub mod repo;
pub mod signing;
pub mod webhook;

pub use repo::*;

use std::time::Duration;

use config_updater::controller::{self, Options};
use config_updater::resource::{
    ImagePolicy, ImagePolicyStatus, ImageRepository, ImageRepositoryStatus, ImageUpdate,
    ImageUpdateStatus,
};
use config_updater::webhook::Delivered;
use git2::Oid;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::core::object::HasStatus;
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::mpsc;

pub use crate::Conditions;
use crate::in_process::InProcess;
use crate::{
    Seen, TestNamespace, World, install_crd_yaml, install_crypto_provider, unique_name, wait_until,
};

/// The image CRDs, as committed in manifests/crds/.
pub const CRDS: &[&str] = &[
    include_str!("../../../manifests/crds/imagerepositories.sluice.dev.yaml"),
    include_str!("../../../manifests/crds/imagepolicies.sluice.dev.yaml"),
    include_str!("../../../manifests/crds/imageupdates.sluice.dev.yaml"),
];

/// Where the stories keep the marked Deployment `web`.
pub const WEB_FILE: &str = "apps/web/deployment.yaml";

/// How long one step of a story may take.
pub const DEADLINE: Duration = Duration::from_secs(90);

/// Applies the three CRDs (as committed; server-side apply, so parallel tests agree) and waits
/// until they are Established.
pub async fn install_crds(client: &Client) {
    for yaml in CRDS {
        install_crd_yaml(client, yaml, DEADLINE).await;
    }
}

/// Pushes `<prefix>-…/web:<tag>` for each tag to the plain registry; returns the repository
/// path in the registry and the image name (`<registry>/<path>`).
pub async fn push_web(world: &World, prefix: &str, tags: &[&str]) -> (String, String) {
    let path = format!("{}/web", unique_name(prefix));
    let refs: Vec<String> = tags.iter().map(|t| format!("{path}:{t}")).collect();
    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
    world.push_image(&refs).await;
    let image = format!("{}/{path}", world.registry());
    (path, image)
}

/// A namespaced kind the stories create, patch and read conditions of (the three CRDs'
/// kinds, Secrets, …).
pub trait Object:
    Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType: Default>
    + Clone
    + std::fmt::Debug
    + Serialize
    + DeserializeOwned
{
}

impl<K> Object for K where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType: Default>
        + Clone
        + std::fmt::Debug
        + Serialize
        + DeserializeOwned
{
}

/// A namespace of the test's own, with the three controllers running for it once started.
pub struct Updater {
    pub world: &'static World,
    pub client: Client,
    pub ns: TestNamespace,
    /// What the controllers count into, once they run (register it first to read it).
    pub metrics: config_updater::controller::Metrics,
    controllers: Option<InProcess>,
    _work: tempfile::TempDir,
}

/// What [`Updater::web_loop`] set up.
pub struct WebLoop {
    /// The image's path on the plain registry, for `push_image(&[&format!("{path}:1.0.1")])`.
    pub path: String,
    /// The image as the config repository names it.
    pub image: String,
    /// The config repository's name on the world's git server.
    pub repo: String,
    /// Its seed commit.
    pub seed: String,
}

impl Updater {
    /// Installs the CRDs, creates the namespace `<prefix>-…` and starts the controllers.
    pub async fn start(prefix: &str) -> Updater {
        let mut u = Self::idle(prefix).await;
        u.run(None).await;
        u
    }

    /// Installs the CRDs and creates the namespace `<prefix>-…`; no controller runs until
    /// [`run`](Self::run).
    pub async fn idle(prefix: &str) -> Updater {
        install_crypto_provider();
        let world = World::get();
        let client = world.kube_client().await;
        install_crds(&client).await;
        let ns = TestNamespace::create(&client, prefix).await;
        Updater {
            world,
            client,
            ns,
            metrics: Default::default(),
            controllers: None,
            _work: tempfile::tempdir().unwrap(),
        }
    }

    /// Starts the controllers for the namespace, fed `events` by a webhook receiver if given,
    /// with exactly the rights of the updater's ServiceAccount in `manifests/` (see
    /// [`crate::installed`]); the story itself acts as the world's admin.
    pub async fn run(&mut self, events: Option<mpsc::Receiver<Delivered>>) {
        let client = self
            .world
            .service_account_client(crate::installed::UPDATER)
            .await;
        self.run_as(client, events);
    }

    /// Starts the controllers for the namespace as `client` (another identity's rights).
    pub fn run_as(&mut self, client: Client, events: Option<mpsc::Receiver<Delivered>>) {
        assert!(self.controllers.is_none(), "the controllers run already");
        let options = Options {
            namespace: Some(self.ns().to_owned()),
            work_dir: self._work.path().to_owned(),
            instance: Some(format!("e2e-{}", self.ns())),
            events,
            metrics: self.metrics.clone(),
            notify: true,
            ..Options::default()
        };
        self.controllers = Some(InProcess::spawn(|shutdown| {
            controller::run(client, options, shutdown)
        }));
    }

    pub fn ns(&self) -> &str {
        self.ns.name()
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        self.ns.api()
    }

    /// Creates an object of kind `K` from JSON (apiVersion and kind filled in).
    pub async fn create<K: Object>(&self, mut value: Value) -> K {
        value["apiVersion"] = K::api_version(&Default::default()).into();
        value["kind"] = K::kind(&Default::default()).into();
        let object: K = serde_json::from_value(value.clone()).unwrap_or_else(|e| {
            panic!("not a valid {}: {e}\n{value}", K::kind(&Default::default()))
        });
        self.api::<K>()
            .create(&PostParams::default(), &object)
            .await
            .unwrap_or_else(|e| panic!("creating {value}: {e}"))
    }

    /// Merge-patches the spec of `name`.
    pub async fn patch_spec<K: Object>(&self, name: &str, spec: Value) {
        self.api::<K>()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": spec })),
            )
            .await
            .unwrap_or_else(|e| panic!("patching {name}: {e}"));
    }

    /// Creates or replaces a Secret with `string_data`.
    pub async fn secret(&self, name: &str, type_: &str, string_data: Value) {
        let api = self.api::<Secret>();
        let _ = api.delete(name, &Default::default()).await;
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": name}, "type": type_, "stringData": string_data
        }))
        .unwrap();
        wait_until(
            &format!("the Secret {name} to be created"),
            DEADLINE,
            || async {
                api.create(&PostParams::default(), &secret)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            },
        )
        .await;
    }

    /// A basic-auth Secret for the world's git server over HTTP(S).
    pub async fn git_secret(&self, name: &str, password: &str) {
        let (user, _) = self.world.git_credentials();
        self.secret(
            name,
            "kubernetes.io/basic-auth",
            json!({"username": user, "password": password}),
        )
        .await;
    }

    /// A basic-auth Secret with the world's git credentials, the right ones.
    pub async fn world_git_secret(&self, name: &str) {
        let (_, password) = self.world.git_credentials();
        self.git_secret(name, password).await;
    }

    /// The marked Deployment `web` of `image:tag` for the policy `<ns>:web`.
    pub fn web(&self, image: &str, tag: &str) -> String {
        deployment("web", image, tag, self.ns(), "web")
    }

    /// Seeds a config repository `<prefix>-…` with a README and [`web`](Self::web) at
    /// [`WEB_FILE`]; returns its name and the seed commit.
    pub async fn seed_web(&self, prefix: &str, image: &str, tag: &str) -> (String, Oid) {
        let files = [
            (WEB_FILE, self.web(image, tag)),
            ("README.md", "The config repo.\n".to_owned()),
        ];
        seed(self.world, prefix, &files).await
    }

    /// The usual three: the ImageRepository `web` over `image` (scanned hourly: a newer tag
    /// comes by webhook or not at all), the ImagePolicy `web` on it, and the ImageUpdate
    /// `config` writing to the repository `repo` on the world's git server over HTTP.
    pub async fn create_web(&self, image: &str, repo: &str, update_interval: Option<&str>) {
        self.create_web_scanned(image, repo, "1h", update_interval)
            .await;
    }

    /// [`create_web`](Self::create_web) with the repository scanned every `scan`.
    pub async fn create_web_scanned(
        &self,
        image: &str,
        repo: &str,
        scan: &str,
        update_interval: Option<&str>,
    ) {
        self.create::<ImageRepository>(repository("web", image, scan))
            .await;
        self.create::<ImagePolicy>(semver_policy("web", "web"))
            .await;
        let url = self.world.git_http_url(repo);
        self.create::<ImageUpdate>(image_update("config", &url, update_interval))
            .await;
    }

    /// The whole loop for `web`, the updater not running yet: `1.0.0` pushed to a registry
    /// repository `<prefix>-…/web`, a config repository `<prefix>-…` seeded at it, the world's
    /// git Secret `git`, and the three objects, scanned and updated every second (a newer tag is
    /// found without a webhook).
    pub async fn web_loop(&self, prefix: &str) -> WebLoop {
        let (path, image) = push_web(self.world, prefix, &["1.0.0"]).await;
        let (repo, seed) = self.seed_web(prefix, &image, "1.0.0").await;
        self.world_git_secret("git").await;
        self.create_web_scanned(&image, &repo, "1s", Some("1s"))
            .await;
        WebLoop {
            path,
            image,
            repo,
            seed: seed.to_string(),
        }
    }

    /// The `Ready` condition of `name`, if any.
    pub async fn ready<K: Object>(&self, name: &str) -> Option<Condition> {
        let object = self.api::<K>().get(name).await.ok()?;
        let value = serde_json::to_value(object).ok()?;
        let conditions = value["status"]["conditions"].clone();
        let conditions: Vec<Condition> = serde_json::from_value(conditions).ok()?;
        conditions.into_iter().find(|c| c.type_ == "Ready")
    }

    /// Waits until the status of `name` (an ImageRepository, ImagePolicy or ImageUpdate)
    /// satisfies `until` (within [`DEADLINE`]); returns it. `what` names the wait in the
    /// timeout's panic, with the status last seen. `until` reads as the story says it:
    /// `|s| s.is("Ready=False GitSecret") && s.message("Ready").contains("encrypted")`
    /// ([`Conditions`]).
    pub async fn wait_status<K>(
        &self,
        name: &str,
        what: &str,
        until: impl Fn(&K::Status) -> bool,
    ) -> K::Status
    where
        K: Object + HasStatus,
        K::Status: Clone + Default + Seen,
    {
        crate::wait_status(&self.api::<K>(), name, what, DEADLINE, until).await
    }

    /// Waits until `name`'s `Ready` condition has `status` and `reason`; returns it.
    pub async fn wait_ready<K>(&self, name: &str, status: &str, reason: &str) -> Condition
    where
        K: Object + HasStatus,
        K::Status: Clone + Default + Seen + Conditions,
    {
        let ready = format!("Ready={status} {reason}");
        let what = format!("{} {name} {ready}", K::kind(&Default::default()));
        let seen = self.wait_status::<K>(name, &what, |s| s.is(&ready)).await;
        seen.condition_of("Ready")
            .cloned()
            .expect("the Ready condition just seen")
    }

    /// The tag of the ImagePolicy `name`'s `status.latestRef`.
    pub async fn policy_tag(&self, name: &str) -> Result<String, String> {
        let p = self
            .api::<ImagePolicy>()
            .get(name)
            .await
            .map_err(|e| e.to_string())?;
        p.status
            .as_ref()
            .and_then(|s| s.latest_ref.as_ref())
            .map(|r| r.tag.clone())
            .ok_or_else(|| format!("no latestRef yet: {:?}", p.status))
    }

    /// Waits until the ImagePolicy `name` has chosen a tag; returns that tag.
    pub async fn wait_policy_tag(&self, name: &str) -> String {
        let what = format!("ImagePolicy {name} status.latestRef");
        let seen = self
            .wait_status::<ImagePolicy>(name, &what, |s| s.latest_ref.is_some())
            .await;
        seen.latest_ref.expect("the latestRef just seen").tag
    }

    /// Waits until the ImageUpdate `name` has a `status.lastPushCommit`; returns it.
    pub async fn wait_last_push(&self, name: &str) -> String {
        let what = format!("ImageUpdate {name} status.lastPushCommit");
        let seen = self
            .wait_status::<ImageUpdate>(name, &what, |s| s.last_push_commit.is_some())
            .await;
        seen.last_push_commit.expect("the lastPushCommit just seen")
    }

    /// Waits until the ImageUpdate `name`'s `status.lastPushCommit` is `commit`.
    pub async fn wait_last_push_is(&self, name: &str, commit: Oid) {
        let what = format!("ImageUpdate {name} status.lastPushCommit {commit}");
        let commit = commit.to_string();
        self.wait_status::<ImageUpdate>(name, &what, |s| {
            s.last_push_commit.as_deref() == Some(commit.as_str())
        })
        .await;
    }

    /// The events about the object `name` with `reason`, as the API serves them.
    pub async fn events(&self, name: &str, reason: &str) -> Vec<Event> {
        self.try_events(name, reason).await.unwrap_or_default()
    }

    /// The events about `name` with `reason`, or why they cannot be listed.
    async fn try_events(&self, name: &str, reason: &str) -> Result<Vec<Event>, String> {
        let listed = self
            .api::<Event>()
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("cannot list events: {e}"))?;
        Ok(listed
            .items
            .into_iter()
            .filter(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                    && e.reason.as_deref() == Some(reason)
            })
            .collect())
    }

    /// Waits for an event about `name` with `reason`; returns its note.
    pub async fn wait_event(&self, name: &str, reason: &str) -> String {
        wait_until(
            &format!("an event {reason} about {name}"),
            DEADLINE,
            || async {
                let events = self.try_events(name, reason).await?;
                match events.first() {
                    Some(e) => Ok(e.note.clone().unwrap_or_default()),
                    None => Err("none yet".to_owned()),
                }
            },
        )
        .await
    }

    /// Stops the controllers and waits for them to end.
    pub async fn stop(mut self) {
        if let Some(controllers) = self.controllers.take() {
            controllers.stop().await;
        }
    }
}

/// The image resources' statuses: their conditions, and `Debug` as "last seen" in a wait.
macro_rules! image_status {
    ($($status:ty),*) => {$(
        impl Conditions for $status {
            fn conditions(&self) -> &[Condition] {
                &self.conditions
            }
        }

        impl Seen for $status {
            fn seen(&self) -> String {
                format!("{self:?}")
            }
        }
    )*};
}

image_status!(ImageRepositoryStatus, ImagePolicyStatus, ImageUpdateStatus);

/// An ImageRepository on the plain registry, polled every `interval`.
pub fn repository(name: &str, image: &str, interval: &str) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {"image": image, "insecure": true, "interval": interval}
    })
}

/// A semver ImagePolicy `>=1.0.0 <2.0.0` over the ImageRepository `repo`.
pub fn semver_policy(name: &str, repo: &str) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {"imageRepositoryRef": {"name": repo}, "policy": {"semver": {"range": ">=1.0.0 <2.0.0"}}}
    })
}

/// An ImageUpdate writing below `apps` to `main` of the repository at `url`, with the basic-auth
/// Secret `git`, checking every `interval` (the default without one).
pub fn image_update(name: &str, url: &str, interval: Option<&str>) -> Value {
    let mut update = json!({
        "metadata": {"name": name},
        "spec": {"git": {"url": url, "branch": "main", "secretRef": {"name": "git"}},
                 "paths": ["apps"]}
    });
    if let Some(interval) = interval {
        update["spec"]["interval"] = interval.into();
    }
    update
}
