use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::*;

fn strings(args: &[OsString]) -> Vec<String> {
    args.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

fn secret(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
        .collect()
}

fn oci() -> ChartRepository {
    ChartRepository::parse("oci://127.0.0.1:15443/charts/", "shop").unwrap()
}

#[test]
fn repo_urls_are_oci_registries_or_http_repositories() {
    assert_eq!(
        oci(),
        ChartRepository::Oci {
            reference: "oci://127.0.0.1:15443/charts/shop".into(),
            host: "127.0.0.1:15443".into()
        }
    );
    assert_eq!(
        ChartRepository::parse("https://charts.example.com/stable", "shop").unwrap(),
        ChartRepository::Http {
            url: "https://charts.example.com/stable".into(),
            host: "charts.example.com".into(),
            chart: "shop".into()
        }
    );
    for (url, chart) in [
        ("git@github.com:org/charts", "shop"),
        ("oci://", "shop"),
        ("https://charts.example.com", "stable/shop"),
        ("https://charts.example.com", ""),
    ] {
        let error = ChartRepository::parse(url, chart).unwrap_err().to_string();
        assert!(error.starts_with("spec.helm: "), "{url} {chart}: {error}");
    }
}

#[test]
fn an_oci_pull_names_the_version_range_and_the_ca_and_no_credential() {
    let commands = pull_commands(
        &oci(),
        Some(">=1.4.0 <2.0.0"),
        false,
        Some(Path::new("/s/config/ca.crt")),
        Path::new("/s/pulled"),
    );
    assert_eq!(commands.len(), 1);
    assert_eq!(
        strings(&commands[0]),
        [
            "pull",
            "oci://127.0.0.1:15443/charts/shop",
            "--ca-file",
            "/s/config/ca.crt",
            "--version",
            ">=1.4.0 <2.0.0",
            "--destination",
            "/s/pulled"
        ]
    );
    let plain = pull_commands(&oci(), None, true, None, Path::new("/d"));
    assert_eq!(
        strings(&plain[0]),
        [
            "pull",
            "oci://127.0.0.1:15443/charts/shop",
            "--plain-http",
            "--destination",
            "/d"
        ]
    );
}

#[test]
fn a_repository_pull_updates_the_index_then_pulls_by_the_scratch_name() {
    let repository = ChartRepository::parse("https://charts.example.com", "shop").unwrap();
    let commands = pull_commands(&repository, Some("1.4.x"), false, None, Path::new("/d"));
    assert_eq!(strings(&commands[0]), ["repo", "update", "sluice"]);
    assert_eq!(
        strings(&commands[1]),
        [
            "pull",
            "sluice/shop",
            "--version",
            "1.4.x",
            "--destination",
            "/d"
        ]
    );
}

#[test]
fn the_chart_secret_grants_basic_auth_to_repo_urls_host_docker_logins_or_a_ca() {
    let basic = ChartAccess::from_secret(
        &secret(&[("username", "ci"), ("password", "pw"), ("ca.crt", "PEM")]),
        Some(&oci()),
    )
    .unwrap();
    assert_eq!(
        basic.logins,
        [(
            "127.0.0.1:15443".to_owned(),
            Credentials::Basic {
                username: "ci".into(),
                password: "pw".into()
            }
        )]
    );
    assert_eq!(basic.ca_pem.as_deref(), Some(b"PEM".as_slice()));
    // Without repoURL, basic auth has no host it may go to.
    let nowhere =
        ChartAccess::from_secret(&secret(&[("username", "ci"), ("password", "pw")]), None)
            .unwrap_err();
    assert!(nowhere.contains("repoURL only"), "{nowhere}");

    let docker = format!(
        r#"{{"auths": {{"https://127.0.0.1:15443": {{"auth": "{}"}}, "charts.example.com": {{"username": "u", "password": "p"}}}}, "credsStore": "evil"}}"#,
        STANDARD.encode("robot:token")
    );
    let access =
        ChartAccess::from_secret(&secret(&[(".dockerconfigjson", &docker)]), None).unwrap();
    let hosts: Vec<&str> = access.logins.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(hosts, ["charts.example.com", "127.0.0.1:15443"]);

    let half = ChartAccess::from_secret(&secret(&[("username", "ci")]), Some(&oci())).unwrap_err();
    assert!(half.contains("both"), "{half}");
    let nothing = ChartAccess::from_secret(&secret(&[("token", "x")]), Some(&oci())).unwrap_err();
    assert!(nothing.contains("has none of"), "{nothing}");
}

#[test]
fn the_version_is_read_from_the_archive_name() {
    assert_eq!(
        pulled_version("shop-1.4.3.tgz", "shop").as_deref(),
        Some("1.4.3")
    );
    assert_eq!(
        pulled_version("shop-ui-2.0.0-rc.1.tgz", "shop-ui").as_deref(),
        Some("2.0.0-rc.1")
    );
    assert_eq!(pulled_version("other-1.0.0.tgz", "shop"), None);
    assert_eq!(pulled_version("shop-.tgz", "shop"), None);
}
