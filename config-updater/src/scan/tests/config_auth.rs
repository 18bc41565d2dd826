use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use oci_client::secrets::RegistryAuth;

use crate::scan::ScanError;
use sluice_shared::registry_auth::normalize_auth_key;

use crate::scan::auth::{Credentials, credentials_from_dockerconfigjson, to_registry_auth};
use crate::scan::client::{ClientOptions, RegistryClient};
use crate::scan::config::{DEFAULT_EXCLUSIONS, ImageName, RegistryAccess, parse_interval};

fn name(text: &str) -> (String, String) {
    let n = ImageName::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    (n.registry, n.repository)
}

#[test]
fn docker_hub_short_names_are_normalized() {
    assert_eq!(name("nginx"), ("docker.io".into(), "library/nginx".into()));
    assert_eq!(
        name("bitnami/redis"),
        ("docker.io".into(), "bitnami/redis".into())
    );
    assert_eq!(
        name("docker.io/nginx"),
        ("docker.io".into(), "library/nginx".into())
    );
    assert_eq!(
        name("index.docker.io/library/nginx"),
        ("docker.io".into(), "library/nginx".into())
    );
    assert_eq!(
        name("registry-1.docker.io/org/app"),
        ("docker.io".into(), "org/app".into())
    );
    let hub = ImageName::parse("nginx").unwrap();
    assert_eq!(hub.api_host(), "registry-1.docker.io");
    assert_eq!(hub.to_string(), "docker.io/library/nginx");
    let reference = hub.reference("1.27");
    assert_eq!(reference.registry(), "registry-1.docker.io");
    assert_eq!(reference.repository(), "library/nginx");
}

#[test]
fn other_registries_keep_their_host() {
    assert_eq!(
        name("ghcr.io/org/team/app"),
        ("ghcr.io".into(), "org/team/app".into())
    );
    assert_eq!(
        name("127.0.0.1:5000/e2e/app"),
        ("127.0.0.1:5000".into(), "e2e/app".into())
    );
    assert_eq!(name("localhost/app"), ("localhost".into(), "app".into()));
    assert_eq!(
        name("registry.example.com:8443/a.b/c_d-e"),
        ("registry.example.com:8443".into(), "a.b/c_d-e".into())
    );
    assert_eq!(
        ImageName::parse("ghcr.io/org/app").unwrap().api_host(),
        "ghcr.io"
    );
}

#[test]
fn tags_digests_schemes_and_bad_paths_are_refused_with_a_reason() {
    for (text, hint) in [
        ("nginx:1.27", "tag"),
        ("ghcr.io/org/app:v1", "tag"),
        ("ghcr.io/org/app@sha256:abc", "digest"),
        ("https://ghcr.io/org/app", "scheme"),
        ("ghcr.io/Org/App", "lowercase"),
        ("ghcr.io//app", "lowercase"),
        ("", "empty"),
    ] {
        let err = ImageName::parse(text).expect_err(text);
        assert!(
            matches!(err, ScanError::InvalidImage { .. }),
            "{text}: {err:?}"
        );
        assert!(err.to_string().contains(hint), "{text}: {err}");
    }
}

fn auth_b64(user: &str, password: &str) -> String {
    STANDARD.encode(format!("{user}:{password}"))
}

fn basic(user: &str, password: &str) -> Credentials {
    Credentials::Basic {
        username: user.into(),
        password: password.into(),
    }
}

#[test]
fn dockerconfigjson_auth_entries_match_every_key_form() {
    let json = format!(
        r#"{{"auths": {{
            "ghcr.io": {{"auth": "{}"}},
            "https://quay.io": {{"auth": "{}"}},
            "https://index.docker.io/v1/": {{"auth": "{}"}},
            "http://127.0.0.1:5001/v2/": {{"username": "plain", "password": "p:with:colons"}},
            "registry.example.com": {{"identitytoken": "tok-123"}}
        }}}}"#,
        auth_b64("gh", "ghp"),
        auth_b64("q", "qp"),
        auth_b64("hub", "hubp"),
    );
    let creds = |registry: &str| {
        credentials_from_dockerconfigjson(json.as_bytes(), registry, "regcred").unwrap()
    };
    assert_eq!(creds("ghcr.io"), basic("gh", "ghp"));
    assert_eq!(creds("quay.io"), basic("q", "qp"));
    assert_eq!(creds("docker.io"), basic("hub", "hubp"));
    assert_eq!(creds("127.0.0.1:5001"), basic("plain", "p:with:colons"));
    assert_eq!(
        creds("registry.example.com"),
        Credentials::IdentityToken("tok-123".into())
    );
    assert_eq!(creds("elsewhere.io"), Credentials::Anonymous);
}

#[test]
fn an_exact_key_wins_over_a_normalized_one() {
    let json = format!(
        r#"{{"auths": {{"https://ghcr.io/v2/": {{"auth": "{}"}}, "ghcr.io": {{"auth": "{}"}}}}}}"#,
        auth_b64("normalized", "x"),
        auth_b64("exact", "y"),
    );
    assert_eq!(
        credentials_from_dockerconfigjson(json.as_bytes(), "ghcr.io", "s").unwrap(),
        basic("exact", "y")
    );
}

#[test]
fn auth_keys_normalize_to_hosts() {
    assert_eq!(
        normalize_auth_key("https://index.docker.io/v1/"),
        "docker.io"
    );
    assert_eq!(normalize_auth_key("registry-1.docker.io"), "docker.io");
    assert_eq!(normalize_auth_key("https://GHCR.io/v2/"), "ghcr.io");
    assert_eq!(normalize_auth_key("127.0.0.1:5000"), "127.0.0.1:5000");
}

#[test]
fn broken_secrets_are_reported_without_their_content() {
    let secret_value = "bm90LWJhc2U2NCE@@@";
    let cases = [
        format!(r#"{{"auths": {{"ghcr.io": {{"auth": "{secret_value}"}}}}}}"#),
        format!(
            r#"{{"auths": {{"ghcr.io": {{"auth": "{}"}}}}}}"#,
            STANDARD.encode("no-colon-here")
        ),
        r#"{"auths": {"ghcr.io": {}}}"#.to_owned(),
        "not json".to_owned(),
    ];
    for json in &cases {
        let err = credentials_from_dockerconfigjson(json.as_bytes(), "ghcr.io", "regcred")
            .expect_err(json);
        assert!(matches!(err, ScanError::InvalidSecret { .. }), "{err:?}");
        let text = format!("{err} {err:?}");
        assert!(text.contains("regcred"), "{text}");
        assert!(
            !text.contains(secret_value) && !text.contains("no-colon-here"),
            "leaks: {text}"
        );
    }
    // No `auths` at all: anonymous.
    assert_eq!(
        credentials_from_dockerconfigjson(b"{}", "ghcr.io", "s").unwrap(),
        Credentials::Anonymous
    );
}

#[test]
fn debug_output_never_shows_a_secret() {
    let creds = basic("robot", "hunter2-secret");
    let text = format!("{creds:?}");
    assert!(
        text.contains("robot") && !text.contains("hunter2"),
        "{text}"
    );
    let token = Credentials::IdentityToken("tok-secret-123".into());
    assert!(!format!("{token:?}").contains("tok-secret"), "{token:?}");

    let image = ImageName::parse("127.0.0.1:5000/app").unwrap();
    let client = RegistryClient::new(
        image,
        ClientOptions {
            credentials: creds.clone(),
            insecure: true,
            ..Default::default()
        },
    )
    .unwrap();
    let text = format!("{client:?}");
    assert!(!text.contains("hunter2"), "{text}");
    let options = ClientOptions {
        credentials: creds,
        ..Default::default()
    };
    assert!(!format!("{options:?}").contains("hunter2"));
}

#[test]
fn credentials_map_onto_oci_client_auth() {
    assert!(matches!(
        to_registry_auth(&Credentials::Anonymous),
        RegistryAuth::Anonymous
    ));
    match to_registry_auth(&basic("u", "p")) {
        RegistryAuth::Basic(u, p) => assert_eq!((u.as_str(), p.as_str()), ("u", "p")),
        _ => panic!("basic"),
    }
    match to_registry_auth(&Credentials::IdentityToken("t".into())) {
        RegistryAuth::Basic(u, p) => assert_eq!((u.as_str(), p.as_str()), ("<token>", "t")),
        _ => panic!("identity token"),
    }
}

#[test]
fn a_bad_ca_is_refused() {
    let image = ImageName::parse("ghcr.io/org/app").unwrap();
    let err = RegistryClient::new(
        image,
        ClientOptions {
            ca_pem: Some(b"not a pem".to_vec()),
            ..Default::default()
        },
    )
    .expect_err("not a PEM");
    assert!(matches!(err, ScanError::InvalidCa { .. }), "{err:?}");
}

#[test]
fn access_spec_is_camel_case_with_defaults() {
    let access: RegistryAccess = serde_json::from_value(serde_json::json!({
        "image": "nginx",
        "secretRef": {"name": "regcred"},
        "certSecretRef": {"name": "ca"},
    }))
    .unwrap();
    assert_eq!(access.interval, "5m");
    assert_eq!(access.exclusions(), [r"^.*\.sig$"]);
    assert_eq!(
        access.cert_secret_ref.as_ref().unwrap().key_or_default(),
        "ca.crt"
    );
    assert!(!access.insecure);
    let valid = access.validate().unwrap();
    assert_eq!(valid.interval.as_secs(), 300);
    assert!(
        valid
            .exclusions
            .as_ref()
            .unwrap()
            .is_match("sha256-abc.sig")
    );
    assert!(!valid.exclusions.as_ref().unwrap().is_match("1.2.3"));

    let json = serde_json::to_value(RegistryAccess {
        insecure: true,
        exclusion_list: Some(vec!["-debug$".into()]),
        ..RegistryAccess::new("127.0.0.1:5000/app")
    })
    .unwrap();
    assert_eq!(json["exclusionList"], serde_json::json!(["-debug$"]));
    assert_eq!(json["insecure"], true);
    let schema = serde_json::to_value(schemars::schema_for!(RegistryAccess)).unwrap();
    for field in [
        "image",
        "secretRef",
        "certSecretRef",
        "insecure",
        "interval",
        "exclusionList",
    ] {
        assert!(
            schema["properties"].get(field).is_some(),
            "{field} in {schema}"
        );
    }
}

#[test]
fn the_default_exclusion_is_the_policy_modules() {
    assert_eq!(DEFAULT_EXCLUSIONS, [r"^.*\.sig$"]);
    // An explicit empty list excludes nothing.
    let access = RegistryAccess {
        exclusion_list: Some(vec![]),
        ..RegistryAccess::new("nginx")
    };
    assert!(access.validate().unwrap().exclusions.is_none());
    let bad = RegistryAccess {
        exclusion_list: Some(vec!["(".into()]),
        ..RegistryAccess::new("nginx")
    };
    assert!(matches!(
        bad.validate(),
        Err(ScanError::InvalidExclusion { .. })
    ));
}

#[test]
fn intervals_parse() {
    assert_eq!(parse_interval("30s").unwrap().as_secs(), 30);
    assert_eq!(parse_interval("1h30m").unwrap().as_secs(), 5400);
    assert_eq!(parse_interval("1500ms").unwrap().as_millis(), 1500);
    for bad in ["", "5", "5x", "m", "500ms", "0s"] {
        assert!(
            matches!(parse_interval(bad), Err(ScanError::InvalidInterval { .. })),
            "{bad}"
        );
    }
}
