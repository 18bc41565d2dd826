//! What the update_* user-story tests share: the three CRDs installed, a namespace of the
//! test's own with the Config Updater's controllers running in-process for it, config
//! repositories seeded on the world's git server, and looks at status, events and the
//! server's branch.

#![allow(dead_code)]

use std::time::Duration;

use config_updater::controller::{self, Options};
use git2::{Oid, Repository};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sluice_e2e::{
    TestNamespace, World, apply_yaml, install_crypto_provider, unique_name, wait_until,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const CRDS: &[(&str, &str)] = &[
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

/// How long one step of a story may take.
pub const DEADLINE: Duration = Duration::from_secs(90);

/// Applies the three CRDs (as committed) and waits until they are Established.
pub async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (name, yaml) in CRDS {
        apply_yaml(&api, yaml).await;
        wait_until(
            &format!("the CRD {name} to be Established"),
            DEADLINE,
            || async {
                let crd = api.get(name).await.map_err(|e| e.to_string())?;
                let established = crd
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                if established {
                    Ok(())
                } else {
                    Err("not Established yet".to_owned())
                }
            },
        )
        .await;
        // A CRD just updated (a new field) is served with its new schema a moment later.
    }
}

/// A namespace of the test's own with the three controllers running for it.
pub struct Updater {
    pub world: &'static World,
    pub client: Client,
    pub ns: TestNamespace,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    _work: tempfile::TempDir,
}

impl Updater {
    /// Installs the CRDs, creates the namespace `<prefix>-…` and starts the controllers.
    pub async fn start(prefix: &str) -> Updater {
        install_crypto_provider();
        let world = World::get();
        let client = world.kube_client().await;
        install_crds(&client).await;
        let ns = TestNamespace::create(&client, prefix).await;
        let work = tempfile::tempdir().unwrap();
        let options = Options {
            namespace: Some(ns.name().to_owned()),
            work_dir: work.path().to_owned(),
            instance: Some(format!("e2e-{}", ns.name())),
            ..Options::default()
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(controller::run(client.clone(), options, async move {
            let _ = stopped.await;
        }));
        Updater {
            world,
            client,
            ns,
            stop: Some(stop),
            task: Some(task),
            _work: work,
        }
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
    pub async fn create<K>(&self, mut value: Value) -> K
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + Serialize
            + DeserializeOwned,
        <K as Resource>::DynamicType: Default,
    {
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
    pub async fn patch_spec<K>(&self, name: &str, spec: Value)
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + DeserializeOwned,
        <K as Resource>::DynamicType: Default,
    {
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

    /// The `Ready` condition of `name`, if any.
    pub async fn ready<K>(&self, name: &str) -> Option<Condition>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + Serialize
            + DeserializeOwned,
        <K as Resource>::DynamicType: Default,
    {
        let object = self.api::<K>().get(name).await.ok()?;
        let value = serde_json::to_value(object).ok()?;
        let conditions = value["status"]["conditions"].clone();
        let conditions: Vec<Condition> = serde_json::from_value(conditions).ok()?;
        conditions.into_iter().find(|c| c.type_ == "Ready")
    }

    /// Waits until `name`'s `Ready` condition has `status` and `reason`; returns it.
    pub async fn wait_ready<K>(&self, name: &str, status: &str, reason: &str) -> Condition
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + Serialize
            + DeserializeOwned,
        <K as Resource>::DynamicType: Default,
    {
        let what = format!(
            "{} {name} Ready={status} {reason}",
            K::kind(&Default::default())
        );
        wait_until(&what, DEADLINE, || async {
            match self.ready::<K>(name).await {
                Some(c) if c.status == status && c.reason == reason => Ok(c),
                other => Err(format!("{other:?}")),
            }
        })
        .await
    }

    /// The events about the object `name` with `reason`, as the API serves them.
    pub async fn events(&self, name: &str, reason: &str) -> Vec<Event> {
        let api = self.api::<Event>();
        api.list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                    && e.reason.as_deref() == Some(reason)
            })
            .collect()
    }

    /// Waits for an event about `name` with `reason`; returns its note.
    pub async fn wait_event(&self, name: &str, reason: &str) -> String {
        wait_until(
            &format!("an event {reason} about {name}"),
            DEADLINE,
            || async {
                let events = self.events(name, reason).await;
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
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("the controllers stop within 30 s")
                .expect("the controllers end cleanly");
        }
    }
}

impl Drop for Updater {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Seeds a repository `<prefix>-…` with `files`; returns its name and the seed commit.
pub async fn seed(world: &World, prefix: &str, files: &[(&str, String)]) -> (String, Oid) {
    let name = unique_name(prefix);
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let commit = world
        .git_seed(&name, Some(dir.path()))
        .await
        .expect("git-seed prints the seed commit");
    (name, Oid::from_str(&commit).unwrap())
}

/// A marked Deployment of `image:tag` for the policy `ns:policy`, with comments and odd
/// spacing that must survive the edit.
pub fn deployment(name: &str, image: &str, tag: &str, ns: &str, policy: &str) -> String {
    format!(
        "---\n# The {name} app.\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  template:\n    spec:\n      containers:\n        - name: {name}   # the app\n          image: {image}:{tag} # {{\"$imagepolicy\": \"{ns}:{policy}\"}}\n          ports: [ {{containerPort: 8080}} ]\n"
    )
}

/// The tip of `main` on the server.
pub fn tip(world: &World, repo: &str) -> Oid {
    world.git_main_on_server(repo)
}

/// The message of `commit` in the server's repository.
pub fn message(world: &World, repo: &str, commit: Oid) -> String {
    let bare = Repository::open_bare(world.git_bare_repo(repo)).unwrap();
    let commit = bare.find_commit(commit).unwrap();
    commit.message().unwrap_or_default().to_owned()
}

/// The first parent of `commit`.
pub fn parent(world: &World, repo: &str, commit: Oid) -> Oid {
    let bare = Repository::open_bare(world.git_bare_repo(repo)).unwrap();
    bare.find_commit(commit).unwrap().parent_id(0).unwrap()
}

/// `path` at main on the server.
pub fn file(world: &World, repo: &str, path: &str) -> String {
    world.git_file_on_server(repo, path).1
}

/// Waits for main to move away from `from`; returns the new tip.
pub async fn next_commit(world: &World, repo: &str, from: Oid) -> Oid {
    wait_until(
        &format!("a commit on main after {from}"),
        DEADLINE,
        || async {
            let now = tip(world, repo);
            if now != from {
                Ok(now)
            } else {
                Err(format!("main is still {from}"))
            }
        },
    )
    .await
}

/// Main stays at `at` for `quiet` (nothing is committed).
pub async fn stays(world: &World, repo: &str, at: Oid, quiet: Duration) {
    let until = std::time::Instant::now() + quiet;
    while std::time::Instant::now() < until {
        assert_eq!(tip(world, repo), at, "nothing may be committed");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The `Sluice-Change:` trailers of a message.
pub fn trailers(message: &str) -> Vec<String> {
    message
        .lines()
        .filter(|l| l.starts_with("Sluice-Change: "))
        .map(str::to_owned)
        .collect()
}

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
