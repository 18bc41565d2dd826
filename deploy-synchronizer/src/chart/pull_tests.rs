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
fn credentials_go_to_files_helm_reads() {
    let basic = Credentials::Basic {
        username: "ci".into(),
        password: "s3cret\"quote".into(),
    };
    let logins = registry_config("127.0.0.1:15443", &basic).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&logins).unwrap();
    let auth = parsed["auths"]["127.0.0.1:15443"]["auth"].as_str().unwrap();
    assert_eq!(STANDARD.decode(auth).unwrap(), b"ci:s3cret\"quote");
    assert_eq!(parsed.as_object().unwrap().len(), 1, "auths only: {logins}");
    assert_eq!(registry_config("h", &Credentials::Anonymous), None);

    let file = repositories_file(
        "https://charts.example.com",
        &basic,
        Some(Path::new("/s/ca.crt")),
    );
    let parsed: serde_json::Value = serde_json::from_str(&file).unwrap();
    let entry = &parsed["repositories"][0];
    assert_eq!(entry["name"], "sluice");
    assert_eq!(entry["password"], "s3cret\"quote");
    assert_eq!(entry["caFile"], "/s/ca.crt");
}

#[test]
fn the_chart_secret_grants_basic_auth_docker_logins_or_a_ca() {
    let basic = ChartAccess::from_secret(
        &secret(&[("username", "ci"), ("password", "pw"), ("ca.crt", "PEM")]),
        &oci(),
    )
    .unwrap();
    assert_eq!(
        basic.credentials,
        Credentials::Basic {
            username: "ci".into(),
            password: "pw".into()
        }
    );
    assert_eq!(basic.ca_pem.as_deref(), Some(b"PEM".as_slice()));

    let docker = format!(
        r#"{{"auths": {{"https://127.0.0.1:15443": {{"auth": "{}"}}}}, "credsStore": "evil"}}"#,
        STANDARD.encode("robot:token")
    );
    let access =
        ChartAccess::from_secret(&secret(&[(".dockerconfigjson", &docker)]), &oci()).unwrap();
    assert_eq!(
        access.credentials,
        Credentials::Basic {
            username: "robot".into(),
            password: "token".into()
        }
    );

    let half = ChartAccess::from_secret(&secret(&[("username", "ci")]), &oci()).unwrap_err();
    assert!(half.contains("both"), "{half}");
    let nothing = ChartAccess::from_secret(&secret(&[("token", "x")]), &oci()).unwrap_err();
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
