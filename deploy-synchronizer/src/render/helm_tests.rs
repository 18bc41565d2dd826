use super::*;

fn options() -> HelmOptions {
    HelmOptions {
        release: "shop".into(),
        namespace: "shop-prod".into(),
        chart: None,
        values_from: Vec::new(),
        logins: Vec::new(),
        ca_pem: None,
        plain_http: false,
        values_files: vec!["values-prod.yaml".into()],
        values: Some(serde_json::json!({"replicas": 3})),
        include_crds: true,
        skip_tests: true,
        kube_version: Some("v1.36.3".into()),
        api_versions: vec!["apps/v1".into(), "apps/v1/Deployment".into()],
        timeout: DEFAULT_HELM_TIMEOUT,
    }
}

#[test]
fn the_command_line_says_release_values_in_order_and_the_clusters_capabilities() {
    let args = template_args(
        &options(),
        Path::new("/co/charts/shop"),
        Some(Path::new("/tmp/x/inline.yaml")),
    )
    .unwrap();
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        args,
        [
            "template",
            "shop",
            "/co/charts/shop",
            "--namespace",
            "shop-prod",
            "--include-crds",
            "--skip-tests",
            "--values",
            "/co/charts/shop/values-prod.yaml",
            "--values",
            "/tmp/x/inline.yaml",
            "--kube-version",
            "v1.36.3",
            "--api-versions",
            "apps/v1",
            "--api-versions",
            "apps/v1/Deployment",
        ]
    );
}

#[test]
fn a_values_file_outside_the_sources_path_is_refused() {
    for bad in ["../secrets.yaml", "/etc/passwd", "a/../../b.yaml", ""] {
        let mut o = options();
        o.values_files = vec![bad.into()];
        let error = template_args(&o, Path::new("/co/chart"), None).unwrap_err();
        assert!(
            error.to_string().contains("inside the source's path"),
            "{bad}: {error}"
        );
    }
}

#[test]
fn a_pulled_chart_is_rendered_with_the_paths_values_then_the_clusters_then_the_inline_ones() {
    let mut o = options();
    o.chart = Some("/scratch/helm/pulled/shop-1.4.3.tgz".into());
    o.values_from = vec!["/scratch/values-from-0.yaml".into()];
    o.kube_version = None;
    o.api_versions = Vec::new();
    let args = template_args(
        &o,
        Path::new("/co/envs/prod"),
        Some(Path::new("/s/inline.yaml")),
    )
    .unwrap();
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        args,
        [
            "template",
            "shop",
            "/scratch/helm/pulled/shop-1.4.3.tgz",
            "--namespace",
            "shop-prod",
            "--include-crds",
            "--skip-tests",
            "--values",
            "/co/envs/prod/values-prod.yaml",
            "--values",
            "/scratch/values-from-0.yaml",
            "--values",
            "/s/inline.yaml",
        ]
    );
}

#[test]
fn each_document_is_attributed_to_its_template() {
    let output = "---\n# Source: shop/templates/service.yaml\napiVersion: v1\nkind: Service\n---\n# Source: shop/templates/deployment.yaml\napiVersion: apps/v1\nkind: Deployment\n---\n# Source: shop/templates/deployment.yaml\napiVersion: apps/v1\nkind: Deployment\n";
    let parts = by_template(output, "<helm template shop>");
    let labels: Vec<&str> = parts.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        labels,
        [
            "shop/templates/service.yaml",
            "shop/templates/deployment.yaml"
        ]
    );
    assert_eq!(parts[1].1.matches("kind: Deployment").count(), 2);
    let plain = by_template("apiVersion: v1\nkind: ConfigMap\n", "<helm template shop>");
    assert_eq!(plain[0].0, "<helm template shop>");
}

/// A chart directory `chart/` in a fresh checkout.
fn chart_checkout() -> (tempfile::TempDir, RenderTarget) {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("chart/templates")).unwrap();
    std::fs::write(
        root.path().join("chart/Chart.yaml"),
        "apiVersion: v2\nname: shop\nversion: 1.0.0\n",
    )
    .unwrap();
    let target = RenderTarget::resolve(root.path(), Path::new("chart")).unwrap();
    (root, target)
}

#[test]
fn helm_missing_from_the_path_is_named() {
    let empty = tempfile::tempdir().unwrap();
    let error = helm_program(Some(empty.path().as_os_str())).unwrap_err();
    assert!(matches!(error, RenderError::HelmNotFound), "{error:?}");
    assert!(
        error.to_string().contains("helm not found on PATH"),
        "{error}"
    );
}

#[tokio::test]
async fn a_missing_values_file_is_named_before_helm_runs() {
    use std::os::unix::fs::PermissionsExt;
    let (_root, target) = chart_checkout();
    // A `helm` that is found but never run: the values files are checked first.
    let bin = tempfile::tempdir().unwrap();
    let helm = bin.path().join("helm");
    std::fs::write(&helm, "#!/bin/sh\nexit 3\n").unwrap();
    std::fs::set_permissions(&helm, std::fs::Permissions::from_mode(0o755)).unwrap();
    let error = render_helm(&target, &options(), Some(bin.path().as_os_str()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("values file chart/values-prod.yaml does not exist"),
        "{error}"
    );
}

#[tokio::test]
async fn a_hung_helm_is_killed_at_the_timeout() {
    let home = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let args = vec!["-c".into(), "sleep 30".into()];
    let outcome = run_helm(
        Path::new("/bin/sh"),
        &args,
        home.path(),
        home.path(),
        Duration::from_millis(200),
    )
    .await;
    assert!(matches!(outcome, Err(HelmRun::TimedOut)));
    assert!(started.elapsed() < Duration::from_secs(10));
}
