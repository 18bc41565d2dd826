//! Capability 1 of the Config Updater, "list tags completely", against the world's real registries:
//! 1100 tags followed through the paged registry's pages; anonymous listing on the plain one; basic
//! auth over TLS with the world CA (credentials from a dockerconfigjson document); a wrong password,
//! an unknown repository and a registry that is down, each with its own error; an unchanged
//! repository's rescan costing one request; a multi-arch tag resolving to its index digest.
//!
//! The world's registries never answer 429 or 5xx nor challenge with a bearer token: those are in
//! `scan_bearer.rs` (a gate in front of the plain registry) and in the unit tests of
//! `config_updater::scan` (`scan/tests/faults.rs`: the backoff schedule, `Retry-After` parsing).

use std::time::Instant;

use config_updater::scan::{
    ClientOptions, Credentials, ImageName, RegistryAccess, RegistryClient, ScanError, ScanMetrics,
    TagCache, credentials_from_dockerconfigjson, list_all_tags, resolve_digest, scan,
};
use sluice_e2e::{World, unique_name};

fn client(registry: &str, repo: &str, options: ClientOptions) -> RegistryClient {
    let image = ImageName::parse(&format!("{registry}/{repo}")).expect("a valid image name");
    RegistryClient::new(image, options).expect("a client")
}

fn plain(registry: &str, repo: &str) -> RegistryClient {
    client(
        registry,
        repo,
        ClientOptions {
            insecure: true,
            ..Default::default()
        },
    )
}

/// A client for the plain registry `registry` counting its requests into `metrics`.
fn counted(registry: &str, repo: &str, metrics: &ScanMetrics) -> RegistryClient {
    client(
        registry,
        repo,
        ClientOptions {
            insecure: true,
            metrics: Some(metrics.clone()),
            ..Default::default()
        },
    )
}

fn tls(world: &World, repo: &str, credentials: Credentials) -> RegistryClient {
    client(
        world.registry_tls(),
        repo,
        ClientOptions {
            credentials,
            ca_pem: Some(world.ca_pem()),
            ..Default::default()
        },
    )
}

/// The digest push-image printed for `repo:tag`.
fn pushed_digest(out: &str, tag: &str) -> String {
    out.lines()
        .find(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|r| r.ends_with(&format!(":{tag}")))
        })
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_else(|| panic!("no digest for {tag} in push-image's output:\n{out}"))
        .to_owned()
}

#[tokio::test]
async fn eleven_hundred_tags_are_listed_completely_from_the_paged_registry() {
    let world = World::get();
    let registry = world.require("SLUICE_REGISTRY_PAGED").to_string();
    let repo = format!("e2e/{}/busy", unique_name("scan-paged"));
    world
        .run(
            "push-image",
            &["--paged", "--count", "1100", &format!("{repo}:build")],
        )
        .await;

    let client = plain(&registry, &repo);
    let list = list_all_tags(&client, None)
        .await
        .expect("the complete list");
    assert_eq!(list.tags.len(), 1100);
    assert_eq!(list.tags.first().map(String::as_str), Some("build-0001"));
    assert_eq!(list.tags.last().map(String::as_str), Some("build-1100"));
    // A full page of 1000 with a `Link` to the next, then 100 without one.
    assert_eq!((list.pages, list.requests), (2, 2));
    assert_eq!(list.malformed, 0);

    // A list longer than one page is paged in full at every scan; `changed` tells the rest.
    let access = RegistryAccess::new(format!("{registry}/{repo}"))
        .validate()
        .unwrap();
    let mut cache = TagCache::default();
    let first = scan(&client, &access, &mut cache)
        .await
        .expect("first scan");
    assert!(first.changed);
    assert_eq!((first.list.tags.len(), first.requests()), (1100, 2));
    let second = scan(&client, &access, &mut cache)
        .await
        .expect("second scan");
    assert!(!second.changed);
    assert_eq!(second.requests(), 2);
    assert_eq!(second.list.fingerprint, first.list.fingerprint);
}

#[tokio::test]
async fn an_unchanged_repository_costs_one_request_and_a_new_tag_is_seen() {
    let world = World::get();
    let repo = format!("e2e/{}/app", unique_name("scan-plain"));
    world
        .push_image(&[
            &format!("{repo}:1.4.2"),
            &format!("{repo}:1.4.3"),
            &format!("{repo}:sha256-1a2b.sig"),
        ])
        .await;

    let metrics = ScanMetrics::default();
    let client = counted(world.registry(), &repo, &metrics);
    let access = RegistryAccess {
        insecure: true,
        ..RegistryAccess::new(format!("{}/{repo}", world.registry()))
    }
    .validate()
    .unwrap();
    let mut cache = TagCache::default();

    let first = scan(&client, &access, &mut cache)
        .await
        .expect("anonymous scan");
    assert!(first.changed);
    assert_eq!(
        first.list.tags,
        ["1.4.2", "1.4.3"],
        "the cosign signature tag is excluded by default"
    );
    assert_eq!((first.list.excluded, first.requests()), (1, 1));

    let second = scan(&client, &access, &mut cache).await.expect("rescan");
    assert!(!second.changed, "nothing was pushed");
    assert_eq!(
        second.requests(),
        1,
        "an unchanged repository costs one request"
    );
    assert_eq!(second.list.tags, first.list.tags);

    world.push_image(&[&format!("{repo}:1.5.0")]).await;
    let third = scan(&client, &access, &mut cache)
        .await
        .expect("scan after a push");
    assert!(third.changed);
    assert_eq!(third.list.tags, ["1.4.2", "1.4.3", "1.5.0"]);
    assert_eq!(third.requests(), 1);
    assert_eq!(metrics.count(world.registry(), "ok"), 3);
}

#[tokio::test]
async fn basic_auth_over_tls_with_the_world_ca_from_a_dockerconfigjson() {
    let world = World::get();
    let repo = format!("e2e/{}/app", unique_name("scan-tls"));
    world
        .push_image_tls(&[&format!("{repo}:2.0.0"), &format!("{repo}:2.1.0")])
        .await;

    // As a Secret holds it: an `https://` key with `auth` = base64(user:password).
    let (user, password) = world.registry_credentials();
    let secret = serde_json::json!({"auths": {
        format!("https://{}", world.registry_tls()): {"auth": base64_of(&format!("{user}:{password}"))},
    }});
    let credentials = credentials_from_dockerconfigjson(
        secret.to_string().as_bytes(),
        world.registry_tls(),
        "regcred",
    )
    .unwrap();
    assert!(
        matches!(credentials, Credentials::Basic { .. }),
        "{credentials:?}"
    );
    assert!(
        !format!("{credentials:?}").contains(password),
        "Debug redacts the password"
    );

    let client = tls(world, &repo, credentials);
    let list = list_all_tags(&client, None)
        .await
        .expect("listing with basic auth over TLS");
    assert_eq!(list.tags, ["2.0.0", "2.1.0"]);
    // The first request meets the `Basic` challenge; the answer is remembered after that.
    assert_eq!(list.requests, 2);
    let again = list_all_tags(&client, None)
        .await
        .expect("a second listing");
    assert_eq!((again.tags, again.requests), (list.tags, 1));
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn wrong_or_missing_credentials_are_unauthorized_and_not_retried() {
    let world = World::get();
    let repo = format!("e2e/{}/app", unique_name("scan-auth"));
    world.push_image_tls(&[&format!("{repo}:1.0.0")]).await;
    let (user, _) = world.registry_credentials();

    let wrong = Credentials::Basic {
        username: user.into(),
        password: "not-the-password".into(),
    };
    let err = list_all_tags(&tls(world, &repo, wrong), None)
        .await
        .expect_err("a wrong password");
    assert!(matches!(err, ScanError::Unauthorized { .. }), "{err:?}");
    assert!(!err.to_string().contains("not-the-password"), "{err}");

    let err = list_all_tags(&tls(world, &repo, Credentials::Anonymous), None)
        .await
        .expect_err("anonymous");
    assert!(matches!(err, ScanError::Unauthorized { .. }), "{err:?}");

    // Without the world CA the certificate is not trusted.
    let untrusting = client(world.registry_tls(), &repo, ClientOptions::default());
    let err = list_all_tags(&untrusting, None)
        .await
        .expect_err("an untrusted certificate");
    assert!(matches!(err, ScanError::Tls { .. }), "{err:?}");
}

#[tokio::test]
async fn an_unknown_repository_is_not_found() {
    let world = World::get();
    let repo = format!("e2e/{}/never-pushed", unique_name("scan-404"));
    let metrics = ScanMetrics::default();
    let client = counted(world.registry(), &repo, &metrics);
    let err = list_all_tags(&client, None)
        .await
        .expect_err("nothing was pushed there");
    assert!(matches!(err, ScanError::NotFound { .. }), "{err:?}");
    assert_eq!(
        metrics.count(world.registry(), "not_found"),
        1,
        "a 404 is not retried"
    );
}

#[tokio::test]
async fn a_registry_that_is_down_is_unreachable_after_four_tries() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let registry = format!("127.0.0.1:{port}");
    let metrics = ScanMetrics::default();
    let client = counted(&registry, "e2e/app", &metrics);
    let started = Instant::now();
    let err = list_all_tags(&client, None)
        .await
        .expect_err("nobody listens");
    match &err {
        ScanError::Unreachable { attempts, .. } => assert_eq!(*attempts, 4, "{err}"),
        other => panic!("expected Unreachable, got {other:?} ({other})"),
    }
    assert_eq!(metrics.count(&registry, "unreachable"), 4);
    // Backoff with equal jitter: at least 250 + 500 + 1000 ms between the four tries.
    assert!(
        started.elapsed().as_millis() >= 1750,
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_multi_arch_tag_resolves_to_its_index_digest() {
    let world = World::get();
    let repo = format!("e2e/{}/multi", unique_name("scan-digest"));
    let out = world
        .run("push-image", &["--multiarch", &format!("{repo}:1.0.0")])
        .await;
    let index_digest = pushed_digest(&out, "1.0.0");
    let single = world.push_image(&[&format!("{repo}:single")]).await;

    let client = plain(world.registry(), &repo);
    let resolved = resolve_digest(&client, "1.0.0").await.expect("the index");
    assert_eq!(resolved.digest, index_digest);
    assert_eq!(
        resolved.media_type,
        "application/vnd.oci.image.index.v1+json"
    );
    let doc: serde_json::Value = serde_json::from_slice(&resolved.manifest).unwrap();
    let mut archs: Vec<&str> = doc["manifests"]
        .as_array()
        .expect("an index lists manifests")
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    archs.sort();
    assert_eq!(archs, ["amd64", "arm64"]);

    let resolved = resolve_digest(&client, "single")
        .await
        .expect("a single manifest");
    assert_eq!(resolved.digest, single[0].digest);
    assert_eq!(
        resolved.media_type,
        "application/vnd.oci.image.manifest.v1+json"
    );

    let err = resolve_digest(&client, "no-such-tag")
        .await
        .expect_err("an unknown tag");
    assert!(matches!(err, ScanError::NotFound { .. }), "{err:?}");
}
