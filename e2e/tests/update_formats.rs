//! User story: a config repository the way teams really write it — a Helm values file with
//! Flux's `:name`, `:tag` and `:digest` setter markers, a kustomization with `images:` entries
//! (`newTag`, `digest`; one named `kustomization.yaml`, one `Kustomization`, both names kustomize
//! accepts) and a plain workload whose `image:` fields carry no marker at all — and
//! image policies of every kind: semver with a leading `v` (pre-releases only where asked), a
//! regex filter with a named capture in numerical order, alphabetical order, and a mutable tag
//! pinned by its (multi-arch index) digest after a required-platform check.
//!
//! Against the real world: real images in the world's plain registry, the config repository on
//! its git server, the three controllers in-process. After the bump commits, every file is
//! compared whole with the text expected: only the intended values changed, every comment, quote
//! and odd space survived. The policies' and repositories' status say what was chosen among how
//! many tags, and when.

mod update_support;

use std::collections::BTreeSet;

use config_updater::resource::{ImagePolicy, ImageRefStatus, ImageRepository, ImageUpdate};
use git2::Repository;
use serde_json::{Value, json};
use sluice_e2e::{World, unique_name, wait_until};
use update_support::{DEADLINE, Updater, file, image_update, seed, tip, trailers};

const VALUES: &str = "apps/shop/values.yaml";
const KUSTOMIZATION: &str = "apps/shop/kustomization.yaml";
/// The same kustomization in another overlay, under the name without an extension.
const KUSTOMIZATION_BARE: &str = "apps/edge/Kustomization";
const WORKLOAD: &str = "apps/shop/worker.yaml";

/// Helm values: `:name`/`:tag` markers (the repository moved), a whole-image marker on a
/// pre-release policy, `:name`/`:tag`/`:digest` markers and a whole marker on a digest policy.
fn values(reg: &str, ns: &str, app: (&str, &str), canary: &str, proxy: &str) -> String {
    format!(
        "# Values for the shop chart.   \n\
         # Sluice bumps the images; keep each marker on its line.\n\
         replicaCount: 2\n\
         \n\
         app:\n\
         \x20 image:\n\
         \x20   repository: {} # {{\"$imagepolicy\": \"{ns}:app:name\"}}\n\
         \x20   tag: \"{}\"     # {{\"$imagepolicy\": \"{ns}:app:tag\"}}\n\
         \x20   pullPolicy: IfNotPresent\n\
         canary:\n\
         \x20 # release candidates go to the canary only\n\
         \x20 image: '{reg}/app:{canary}'  # {{\"$imagepolicy\": \"{ns}:app-rc\"}}\n\
         \n\
         proxy:\n\
         \x20 image:\n\
         \x20   repository: {reg}/proxy   # {{\"$imagepolicy\": \"{ns}:proxy:name\"}}\n\
         \x20   tag: stable # {{\"$imagepolicy\": \"{ns}:proxy:tag\"}}\n\
         \x20   digest: \"{proxy}\" # {{\"$imagepolicy\": \"{ns}:proxy:digest\"}}\n\
         \x20 sidecar: {reg}/proxy:stable@{proxy} # {{\"$imagepolicy\": \"{ns}:proxy\"}}\n\
         \x20 resources: {{limits: {{cpu: 100m}}}}\n",
        app.0, app.1
    )
}

/// A kustomization: `newTag` of an alphabetical policy, `digest` of the digest policy, and an
/// entry nobody watches. Saved on Windows: CRLF line endings, which must survive.
fn kustomization(reg: &str, docs: &str, proxy: &str) -> String {
    format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\n\
         kind: Kustomization\n\
         resources:\n\
         \x20 - worker.yaml   # the workload below\n\
         images:\n\
         \x20 # The docs site, released by date.\n\
         \x20 - name: docs\n\
         \x20   newName: {reg}/docs\n\
         \x20   newTag: \"{docs}\"\n\
         \x20 # The proxy follows stable, pinned by digest.\n\
         \x20 - name:    proxy\n\
         \x20   newName: {reg}/proxy\n\
         \x20   newTag: stable\n\
         \x20   digest: {proxy}\n\
         \x20 - name: busybox        # not watched: stays as is\n\
         \x20   newTag: \"1.36\"\n"
    )
    .replace('\n', "\r\n")
}

/// A workload without markers: its `image:` fields of the watched repository are updated (the
/// ImageUpdate sets `updateUnmarked`), the sidecar's is not.
fn workload(reg: &str, worker: &str) -> String {
    format!(
        "---\n\
         # The queue worker. No marker: Sluice finds its image by repository.\n\
         apiVersion: apps/v1\n\
         kind: Deployment\n\
         metadata:\n\
         \x20 name: worker\n\
         \x20 labels: {{app: worker}}\n\
         spec:\n\
         \x20 replicas: 1\n\
         \x20 template:\n\
         \x20   spec:\n\
         \x20     initContainers:\n\
         \x20     - name: migrate\n\
         \x20       image: {reg}/worker:{worker}\n\
         \x20     containers:\n\
         \x20     - name: worker\n\
         \x20       image: \"{reg}/worker:{worker}\"\n\
         \x20       args: [\"--queue\", \"jobs\"]   \n\
         \x20     - name: sidecar\n\
         \x20       image: busybox:1.36   # not watched\n"
    )
}

/// Pushes `refs` (`path:tag`) with `push-image [--multiarch]`; returns `tag -> digest`.
async fn push(world: &World, multiarch: bool, refs: &[String]) -> Vec<(String, String)> {
    let mut args: Vec<&str> = Vec::new();
    if multiarch {
        args.push("--multiarch");
    }
    args.extend(refs.iter().map(String::as_str));
    let out = world.run("push-image", &args).await;
    out.lines()
        .filter_map(|l| {
            let (r, digest) = l.trim().split_once(' ')?;
            let (_, tag) = r.rsplit_once(':')?;
            Some((tag.to_owned(), digest.trim().to_owned()))
        })
        .collect()
}

fn policy(name: &str, repo: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["imageRepositoryRef"] = json!({"name": repo});
    json!({"metadata": {"name": name}, "spec": spec})
}

/// Waits for the ImagePolicy `name` to have a `latestRef`; returns its status.
async fn chosen(u: &Updater, name: &str) -> config_updater::resource::ImagePolicyStatus {
    let what = format!("ImagePolicy {name} latestRef");
    u.wait_status::<ImagePolicy>(name, &what, |s| {
        s.latest_ref.is_some() && s.last_scan_time.is_some()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markers_kustomize_entries_and_unmarked_images_get_each_policy_kinds_choice_byte_exactly() {
    let u = Updater::start("update-formats").await;
    let world = u.world;
    let ns = u.ns().to_owned();
    let base = unique_name("formats");
    let reg = format!("{}/{base}", world.registry());
    let at = |repo: &str, tags: &[&str]| -> Vec<String> {
        tags.iter().map(|t| format!("{base}/{repo}:{t}")).collect()
    };

    // app: v-prefixed semver, a release candidate, the next major, a cosign signature.
    let sig = format!("sha256-{}.sig", "5e".repeat(32));
    push(
        world,
        false,
        &at("app", &["v1.2.0", "v1.3.0", "v1.4.0-rc.1", "v2.0.0", &sig]),
    )
    .await;
    // worker: CI builds; numerically main-10 beats main-9 (alphabetically it would not).
    let worker_tags = [
        "main-2-1a2b3c4",
        "main-9-5d6e7f8",
        "main-10-9a8b7c6",
        "feature-99-0f0f0f0",
        "main-11-dirty",
    ];
    push(world, false, &at("worker", &worker_tags)).await;
    // docs: date tags in alphabetical order, and a `latest` the filter leaves out.
    push(
        world,
        false,
        &at(
            "docs",
            &["2026.10.31", "2026.11.02", "2026.11.20", "latest"],
        ),
    )
    .await;
    // proxy: multi-arch (linux/amd64 + linux/arm64) indexes; `stable` is followed by digest.
    let proxy = push(world, true, &at("proxy", &["previous", "stable"])).await;
    let digest_of = |tag: &str| {
        proxy
            .iter()
            .find(|(t, _)| t == tag)
            .map(|(_, d)| d.clone())
            .unwrap()
    };
    let (old_proxy, stable) = (digest_of("previous"), digest_of("stable"));
    assert_ne!(old_proxy, stable);

    let legacy = format!("{reg}/app-legacy");
    let seeded = [
        (
            VALUES,
            values(&reg, &ns, (&legacy, "v1.2.0"), "v1.2.0", &old_proxy),
        ),
        (KUSTOMIZATION, kustomization(&reg, "2026.10.31", &old_proxy)),
        (
            KUSTOMIZATION_BARE,
            kustomization(&reg, "2026.10.31", &old_proxy),
        ),
        (WORKLOAD, workload(&reg, "main-2-1a2b3c4")),
        ("README.md", "The shop's config.\n".to_owned()),
    ];
    let (repo, seed_commit) = seed(world, "formats-config", &seeded).await;
    u.world_git_secret("git").await;

    for name in ["app", "worker", "docs", "proxy"] {
        u.create::<ImageRepository>(json!({
            "metadata": {"name": name},
            "spec": {"image": format!("{reg}/{name}"), "insecure": true, "interval": "1h"}
        }))
        .await;
    }
    let semver = |prereleases: bool| json!({"policy": {"semver": {"range": ">=1.0.0 <2.0.0", "prereleases": prereleases}}});
    u.create::<ImagePolicy>(policy("app", "app", semver(false)))
        .await;
    u.create::<ImagePolicy>(policy("app-rc", "app", semver(true)))
        .await;
    u.create::<ImagePolicy>(policy(
        "worker",
        "worker",
        json!({"policy": {"numerical": {"order": "asc"}},
               "filterTags": {"pattern": "^main-(?P<build>[0-9]+)-[0-9a-f]{7}$", "extract": "$build"}}),
    ))
    .await;
    u.create::<ImagePolicy>(policy(
        "docs",
        "docs",
        json!({"policy": {"alphabetical": {"order": "asc"}},
               "filterTags": {"pattern": "^[0-9]{4}[.][0-9]{2}[.][0-9]{2}$"}}),
    ))
    .await;
    u.create::<ImagePolicy>(policy(
        "proxy",
        "proxy",
        json!({"policy": {"digest": {"tag": "stable", "platforms": ["linux/arm64"]}}}),
    ))
    .await;
    // The same tag, but requiring a platform the index lacks: refused, never chosen.
    u.create::<ImagePolicy>(policy(
        "proxy-s390x",
        "proxy",
        json!({"policy": {"digest": {"tag": "stable", "platforms": ["linux/s390x"]}}}),
    ))
    .await;
    let mut update = image_update("config", &world.git_http_url(&repo), None);
    update["spec"]["updateUnmarked"] = true.into();
    u.create::<ImageUpdate>(update).await;

    // Each policy's choice, among how many tags, from which scan.
    let expect = [
        ("app", "app", "v1.3.0", None, 4),
        ("app-rc", "app", "v1.4.0-rc.1", None, 4),
        ("worker", "worker", "main-10-9a8b7c6", None, 5),
        ("docs", "docs", "2026.11.20", None, 4),
        ("proxy", "proxy", "stable", Some(stable.clone()), 2),
    ];
    for (name, repo_name, tag, digest, count) in &expect {
        let status = chosen(&u, name).await;
        assert_eq!(
            status.latest_ref,
            Some(ImageRefStatus {
                name: format!("{reg}/{repo_name}"),
                tag: (*tag).to_owned(),
                digest: digest.clone(),
            }),
            "{name}"
        );
        assert_eq!(status.tags_seen, Some(*count), "{name}: tagsSeen");
        let repo_status = u
            .api::<ImageRepository>()
            .get(repo_name)
            .await
            .unwrap()
            .status
            .unwrap();
        assert_eq!(repo_status.tag_count, Some(*count), "{repo_name}: tagCount");
        assert!(repo_status.last_scan_time.is_some());
        assert_eq!(
            status.last_scan_time, repo_status.last_scan_time,
            "{name}: lastScanTime is its repository's scan"
        );
    }
    let refused = u
        .wait_ready::<ImagePolicy>("proxy-s390x", "False", "DigestRefused")
        .await;
    assert!(refused.message.contains("linux/s390x"), "{refused:?}");
    let none = u.api::<ImagePolicy>().get("proxy-s390x").await.unwrap();
    assert_eq!(none.status.unwrap().latest_ref, None);

    // The files after the bump commits: whole, byte for byte.
    let app = format!("{reg}/app");
    let want = [
        (
            VALUES,
            values(&reg, &ns, (&app, "v1.3.0"), "v1.4.0-rc.1", &stable),
        ),
        (KUSTOMIZATION, kustomization(&reg, "2026.11.20", &stable)),
        (
            KUSTOMIZATION_BARE,
            kustomization(&reg, "2026.11.20", &stable),
        ),
        (WORKLOAD, workload(&reg, "main-10-9a8b7c6")),
    ];
    wait_until("every file bumped", DEADLINE, || async {
        let pending: Vec<&str> = want
            .iter()
            .filter(|(path, text)| file(world, &repo, path) != *text)
            .map(|(path, _)| *path)
            .collect();
        if pending.is_empty() {
            Ok(())
        } else {
            Err(format!("not yet as expected: {pending:?}"))
        }
    })
    .await;
    for (path, text) in &want {
        assert_eq!(&file(world, &repo, path), text, "{path}");
    }
    assert_eq!(file(world, &repo, "README.md"), "The shop's config.\n");

    // The commits name every change in trailers: each file and policy.
    let bare = Repository::open_bare(world.git_bare_repo(&repo)).unwrap();
    let mut walk = bare.revwalk().unwrap();
    walk.push(tip(world, &repo)).unwrap();
    walk.hide(seed_commit).unwrap();
    let mut named = BTreeSet::new();
    for id in walk {
        let commit = bare.find_commit(id.unwrap()).unwrap();
        for t in trailers(commit.message().unwrap_or_default()) {
            let field = |k: &str| {
                t.split_whitespace()
                    .find_map(|w| w.strip_prefix(&format!("{k}=")))
                    .unwrap_or_default()
                    .to_owned()
            };
            named.insert((field("policy"), field("file")));
        }
    }
    let expected: BTreeSet<(String, String)> = [
        ("app", VALUES),
        ("app-rc", VALUES),
        ("proxy", VALUES),
        ("proxy", KUSTOMIZATION),
        ("docs", KUSTOMIZATION),
        ("proxy", KUSTOMIZATION_BARE),
        ("docs", KUSTOMIZATION_BARE),
        ("worker", WORKLOAD),
    ]
    .iter()
    .map(|(p, f)| (format!("{ns}/{p}"), (*f).to_owned()))
    .collect();
    assert_eq!(
        named, expected,
        "a trailer for each changed value's policy and file"
    );

    u.stop().await;
}
