use super::*;

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn p(s: &str) -> Platform {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn ps(list: &[&str]) -> Vec<Platform> {
    list.iter().map(|s| p(s)).collect()
}

/// A buildx-style index: two platforms and an attestation manifest.
const BUILDX_INDEX: &str = r#"{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1, "digest": "sha256:aa",
     "platform": {"architecture": "amd64", "os": "linux"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1, "digest": "sha256:bb",
     "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1, "digest": "sha256:cc",
     "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
     "platform": {"architecture": "unknown", "os": "unknown"}}
  ]
}"#;

const SINGLE: &str = r#"{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 1, "digest": "sha256:dd"},
  "layers": []
}"#;

#[test]
fn index_pins_its_own_digest_when_platforms_are_present() {
    let pin = pick_index_digest(
        BUILDX_INDEX.as_bytes(),
        OCI_INDEX,
        DIGEST,
        &ps(&["linux/amd64", "linux/arm64"]),
    )
    .unwrap();
    assert_eq!(pin.digest, DIGEST);
    assert!(pin.is_index);
    assert_eq!(
        pin.platforms,
        ps(&["linux/amd64", "linux/arm64/v8"]),
        "attestations left out"
    );
}

#[test]
fn missing_platform_is_refused_and_named() {
    let err = pick_index_digest(
        BUILDX_INDEX.as_bytes(),
        OCI_INDEX,
        DIGEST,
        &ps(&["linux/amd64", "linux/arm/v7"]),
    )
    .unwrap_err();
    assert_eq!(
        err,
        PlatformError::MissingPlatforms {
            missing: ps(&["linux/arm/v7"]),
            available: ps(&["linux/amd64", "linux/arm64/v8"]),
        }
    );
    assert!(err.to_string().contains("linux/arm/v7"), "{err}");
}

#[test]
fn variants_default_per_architecture() {
    let index = br#"{"manifests": [
        {"platform": {"os": "linux", "architecture": "arm64"}},
        {"platform": {"os": "linux", "architecture": "arm", "variant": "v6"}}]}"#;
    // An unset arm64 variant is v8; a required platform without a variant takes any variant.
    assert!(
        pick_index_digest(
            index,
            DOCKER_LIST,
            DIGEST,
            &ps(&["linux/arm64/v8", "linux/arm"])
        )
        .is_ok()
    );
    // arm/v6 does not serve arm/v7 nodes.
    assert!(matches!(
        pick_index_digest(index, DOCKER_LIST, DIGEST, &ps(&["linux/arm/v7"])),
        Err(PlatformError::MissingPlatforms { .. })
    ));
    assert!(p("linux/aarch64").is_served_by(&p("linux/arm64/v8")));
    assert!(p("linux/x86_64/v1").is_served_by(&p("linux/amd64")));
    assert!(!p("windows/amd64").is_served_by(&p("linux/amd64")));
}

#[test]
fn single_manifest_pins_itself_only_without_requirements() {
    let pin = pick_index_digest(SINGLE.as_bytes(), OCI_MANIFEST, DIGEST, &[]).unwrap();
    assert_eq!(
        pin,
        DigestPin {
            digest: DIGEST.to_owned(),
            platforms: vec![],
            is_index: false
        }
    );
    assert_eq!(
        pick_index_digest(
            SINGLE.as_bytes(),
            OCI_MANIFEST,
            DIGEST,
            &ps(&["linux/amd64"])
        ),
        Err(PlatformError::NotAnIndex {
            required: ps(&["linux/amd64"])
        })
    );
}

#[test]
fn media_type_from_header_body_or_shape() {
    // Header parameters are ignored.
    assert!(
        pick_index_digest(
            SINGLE.as_bytes(),
            &format!("{OCI_MANIFEST}; charset=utf-8"),
            DIGEST,
            &[]
        )
        .is_ok()
    );
    // No header: the body's mediaType decides.
    assert!(
        pick_index_digest(BUILDX_INDEX.as_bytes(), "", DIGEST, &[])
            .unwrap()
            .is_index
    );
    // Neither: the shape decides (an OCI index may omit mediaType).
    let bare = br#"{"schemaVersion": 2, "manifests": [{"platform": {"os": "linux", "architecture": "amd64"}}]}"#;
    assert!(
        pick_index_digest(bare, "application/json", DIGEST, &[])
            .unwrap()
            .is_index
    );
    assert!(matches!(
        pick_index_digest(BUILDX_INDEX.as_bytes(), OCI_MANIFEST, DIGEST, &[]),
        Err(PlatformError::MediaTypeMismatch { .. })
    ));
    assert!(matches!(
        pick_index_digest(
            SINGLE.as_bytes(),
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            DIGEST,
            &[]
        ),
        Err(PlatformError::UnsupportedMediaType { .. })
    ));
    assert!(matches!(
        pick_index_digest(b"{}", "", DIGEST, &[]),
        Err(PlatformError::UnsupportedMediaType { .. })
    ));
}

#[test]
fn bad_inputs() {
    assert!(matches!(
        pick_index_digest(b"not json", OCI_INDEX, DIGEST, &[]),
        Err(PlatformError::InvalidJson { .. })
    ));
    assert!(matches!(
        pick_index_digest(br#"{"manifests": []}"#, OCI_INDEX, DIGEST, &[]),
        Err(PlatformError::EmptyIndex)
    ));
    for digest in [
        "",
        "sha256:abc",
        "md5:0123",
        &DIGEST.to_uppercase(),
        &DIGEST.replace("sha256", "sha512"),
    ] {
        assert!(
            matches!(
                pick_index_digest(SINGLE.as_bytes(), OCI_MANIFEST, digest, &[]),
                Err(PlatformError::InvalidDigest { .. })
            ),
            "{digest}"
        );
    }
    let sha512 = format!("sha512:{}", "ab".repeat(64));
    assert!(pick_index_digest(SINGLE.as_bytes(), OCI_MANIFEST, &sha512, &[]).is_ok());
}

#[test]
fn platform_parsing() {
    assert_eq!(
        p("linux/arm64/v8"),
        Platform {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: Some("v8".into())
        }
    );
    assert_eq!(p("Linux/AMD64").to_string(), "linux/amd64");
    for bad in [
        "",
        "linux",
        "linux/",
        "/amd64",
        "linux/arm/v7/extra",
        "linux/amd 64",
    ] {
        assert!(bad.parse::<Platform>().is_err(), "{bad:?}");
    }
}
