//! The world's OCI registries, seen through oci-client as Sluice sees them: the plain one
//! (HTTP, anonymous), the TLS one (world CA, basic auth) and the paged one (distribution 3, whose
//! tag lists come in pages as GHCR's and Quay's do). An image pushed with `push-image` shows up in
//! the tag list with the digest push-image reported; the TLS registry refuses wrong credentials, no
//! credentials and a client that does not trust the world CA; 1100 tags come back complete only by
//! following the pages.

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sluice_e2e::{World, unique_name};

/// oci-client for the plain registry: HTTPS everywhere except there.
fn plain_client(world: &World) -> Client {
    Client::new(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(vec![world.registry().to_string()]),
        ..Default::default()
    })
}

/// oci-client for the TLS registry, trusting the world's CA on top of the usual roots.
fn tls_client(world: &World) -> Client {
    Client::new(ClientConfig {
        protocol: ClientProtocol::Https,
        extra_root_certificates: vec![Certificate {
            encoding: CertificateEncoding::Pem,
            data: world.ca_pem(),
        }],
        ..Default::default()
    })
}

fn basic_auth(world: &World) -> RegistryAuth {
    let (user, password) = world.registry_credentials();
    RegistryAuth::Basic(user.into(), password.into())
}

fn reference(registry: &str, repo: &str, tag: &str) -> Reference {
    Reference::with_tag(registry.into(), repo.into(), tag.into())
}

#[tokio::test]
async fn tags_pushed_to_the_plain_registry_are_listed_anonymously() {
    let world = World::get();
    let repo = format!("e2e/{}/app", unique_name("registry-plain"));
    let pushed = world
        .push_image(&[&format!("{repo}:1.4.2"), &format!("{repo}:1.4.3")])
        .await;
    assert_eq!(pushed.len(), 2, "{pushed:?}");
    assert_ne!(
        pushed[0].digest, pushed[1].digest,
        "each tag is its own image"
    );

    let client = plain_client(world);
    let image = reference(world.registry(), &repo, "1.4.2");
    let tags = client
        .list_tags(&image, &RegistryAuth::Anonymous, None, None)
        .await
        .unwrap_or_else(|e| panic!("listing the tags of {image}: {e}"));
    assert_eq!(tags.name, repo);
    let mut listed = tags.tags.clone();
    listed.sort();
    assert_eq!(listed, ["1.4.2", "1.4.3"]);

    // The registry serves the very manifests push-image pushed.
    for p in &pushed {
        let r = reference(world.registry(), &repo, &p.tag);
        let digest = client
            .fetch_manifest_digest(&r, &RegistryAuth::Anonymous)
            .await
            .expect("the digest");
        assert_eq!(digest, p.digest, "{r}");
    }
}

#[tokio::test]
async fn tags_pushed_to_the_tls_registry_are_listed_with_basic_auth() {
    let world = World::get();
    let repo = format!("e2e/{}/app", unique_name("registry-tls"));
    let pushed = world.push_image_tls(&[&format!("{repo}:2.0.0")]).await;
    assert_eq!(pushed.len(), 1, "{pushed:?}");
    assert!(
        pushed[0].repository.starts_with(world.registry_tls()),
        "{pushed:?}"
    );

    let client = tls_client(world);
    let image = reference(world.registry_tls(), &repo, "2.0.0");
    let tags = client
        .list_tags(&image, &basic_auth(world), None, None)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "listing the tags of {image} as {}: {e}",
                world.registry_credentials().0
            )
        });
    assert_eq!(tags.name, repo);
    assert_eq!(tags.tags, ["2.0.0"]);
    let digest = client
        .fetch_manifest_digest(&image, &basic_auth(world))
        .await
        .expect("the digest");
    assert_eq!(digest, pushed[0].digest);
}

fn assert_unauthorized(err: &OciDistributionError, what: &str) {
    let refused = match err {
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => true,
        OciDistributionError::ServerError { code, .. } => *code == 401,
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| e.code == oci_client::errors::OciErrorCode::Unauthorized),
        _ => false,
    };
    assert!(
        refused,
        "{what}: expected an authorization error, got {err:?} ({err})"
    );
}

#[tokio::test]
async fn the_tls_registry_refuses_wrong_or_missing_credentials() {
    let world = World::get();
    let repo = format!("e2e/{}/app", unique_name("registry-auth"));
    world.push_image_tls(&[&format!("{repo}:1.0.0")]).await;
    let image = reference(world.registry_tls(), &repo, "1.0.0");

    // A fresh client for each: oci-client remembers the first credentials per registry.
    let (user, _) = world.registry_credentials();
    let wrong = RegistryAuth::Basic(user.into(), "not-the-password".into());
    let err = tls_client(world)
        .list_tags(&image, &wrong, None, None)
        .await
        .expect_err("a wrong password must fail");
    assert_unauthorized(&err, "wrong password");

    let err = tls_client(world)
        .list_tags(&image, &RegistryAuth::Anonymous, None, None)
        .await
        .expect_err("an anonymous listing must fail");
    assert_unauthorized(&err, "anonymous");

    // And its certificate really is checked: without the world CA, the connection is refused.
    let untrusting = Client::new(ClientConfig {
        protocol: ClientProtocol::Https,
        ..Default::default()
    });
    let err = untrusting
        .list_tags(&image, &basic_auth(world), None, None)
        .await
        .expect_err("an untrusted certificate must fail");
    let chain = std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ");
    assert!(
        chain.to_lowercase().contains("certificate"),
        "the error is about the certificate: {chain}"
    );
}

#[tokio::test]
async fn more_than_a_thousand_tags_come_in_pages_from_the_paged_registry() {
    let world = World::get();
    let registry = world.require("SLUICE_REGISTRY_PAGED").to_string();
    let repo = format!("e2e/{}/busy", unique_name("registry-paged"));
    world
        .run(
            "push-image",
            &["--paged", "--count", "1100", &format!("{repo}:build")],
        )
        .await;

    let client = Client::new(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(vec![registry.clone()]),
        ..Default::default()
    });
    let image = reference(&registry, &repo, "build-0001");
    // One page of 1000 (GHCR's cap) is not the whole list ...
    let first = client
        .list_tags(&image, &RegistryAuth::Anonymous, Some(1000), None)
        .await
        .expect("the first page");
    assert_eq!(first.tags.len(), 1000, "the registry honours n=");
    // ... following `last` to the end is.
    let mut all = first.tags.clone();
    let mut pages = 1;
    loop {
        let last = all.last().cloned();
        let page = client
            .list_tags(
                &image,
                &RegistryAuth::Anonymous,
                Some(1000),
                last.as_deref(),
            )
            .await
            .expect("a further page");
        if page.tags.is_empty() {
            break;
        }
        pages += 1;
        all.extend(page.tags);
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 2);
    assert_eq!(all.len(), 1100);
    assert_eq!(all.first().map(String::as_str), Some("build-0001"));
    assert_eq!(all.last().map(String::as_str), Some("build-1100"));
}
