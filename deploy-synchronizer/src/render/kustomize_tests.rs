use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

use tempfile::TempDir;

use super::*;

/// A checkout with one Kustomization in `app/`.
fn checkout() -> (TempDir, RenderTarget) {
    let root = tempfile::tempdir().unwrap();
    let app = root.path().join("app");
    fs::create_dir(&app).unwrap();
    fs::write(
        app.join("kustomization.yaml"),
        "namePrefix: prod-\nresources: [map.yaml]\n",
    )
    .unwrap();
    fs::write(
        app.join("map.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n",
    )
    .unwrap();
    let target = RenderTarget::resolve(root.path(), Path::new("app")).unwrap();
    (root, target)
}

/// A stand-in for kustomize: `sh -c SCRIPT sh <dir>`, so tests run no file they just wrote.
fn shell(script: &str) -> KustomizeTool {
    KustomizeTool {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into(), "sh".into()],
    }
}

fn executable(dir: &Path, name: &str) {
    let path = dir.join(name);
    fs::write(&path, "#!/bin/sh\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn kustomize_is_preferred_then_kubectl() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    executable(second.path(), "kustomize");
    executable(first.path(), "kubectl");
    fs::write(first.path().join("kustomize"), "not executable").unwrap();
    let search_path = std::env::join_paths([first.path(), second.path()]).unwrap();

    let tool = KustomizeTool::locate(&search_path).unwrap();
    assert_eq!(
        (tool.program.as_path(), tool.args.as_slice()),
        (
            second.path().join("kustomize").as_path(),
            &["build".into()][..]
        )
    );

    fs::remove_file(second.path().join("kustomize")).unwrap();
    let tool = KustomizeTool::locate(&search_path).unwrap();
    assert_eq!(tool.program, first.path().join("kubectl"));
    let (_root, target) = checkout();
    assert_eq!(tool.command_line(&target), "kubectl kustomize app");

    assert_eq!(KustomizeTool::locate(OsStr::new("")), None);
}

#[tokio::test]
async fn output_goes_through_the_document_rules() {
    let (_root, target) = checkout();
    let tool = shell(
        "test -f \"$1/kustomization.yaml\" || exit 9
         printf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata:\\n  name: prod-web\\n---\\napiVersion: v1\\nkind: Service\\nmetadata: {name: prod-web}\\n'",
    );
    let manifests = tool.render(&target, Duration::from_secs(10)).await.unwrap();
    let names: Vec<_> = manifests.iter().map(|m| m.object_ref.to_string()).collect();
    assert_eq!(
        names,
        ["core/ConfigMap/_/prod-web", "core/Service/_/prod-web"]
    );
    let source = &manifests[1].source;
    assert!(
        source.file.starts_with("<sh -c ") && source.file.ends_with(" sh app>"),
        "{source}"
    );
    assert_eq!((source.document, source.line), (1, 6));
}

#[tokio::test]
async fn failure_carries_trimmed_stderr() {
    let (_root, target) = checkout();
    let tool =
        shell("echo 'Error: accumulating resources: missing.yaml: no such file' >&2; echo; exit 1");
    let error = tool
        .build(&target, Duration::from_secs(10))
        .await
        .unwrap_err();
    let RenderError::KustomizeFailed { status, stderr, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(
        stderr,
        "Error: accumulating resources: missing.yaml: no such file"
    );
    assert_eq!(status, "exit status: 1");
}

#[tokio::test]
async fn a_hung_build_is_killed_at_the_timeout() {
    let (_root, target) = checkout();
    let started = Instant::now();
    let error = shell("sleep 30")
        .build(&target, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(
        matches!(error, RenderError::KustomizeTimedOut { .. }),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        error
            .to_string()
            .ends_with("did not finish within 0.2s and was killed"),
        "{error}"
    );
}

#[tokio::test]
async fn invalid_output_is_a_render_error() {
    let (_root, target) = checkout();
    let errors = shell("echo 'kind: [oops'")
        .render(&target, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(
        matches!(errors.errors(), [RenderError::InvalidYaml { file, .. }] if file.starts_with("<sh -c"))
    );
}

/// The real thing, when this machine has kubectl (its embedded kustomize works offline).
#[tokio::test]
async fn kubectl_kustomize_when_installed() {
    let Some(path) = std::env::var_os("PATH") else {
        return;
    };
    let Some(tool) = KustomizeTool::locate(&path) else {
        return;
    };
    let (_root, target) = checkout();
    let manifests = tool
        .render(&target, crate::render::DEFAULT_KUSTOMIZE_TIMEOUT)
        .await
        .unwrap();
    let names: Vec<_> = manifests.iter().map(|m| m.object_ref.to_string()).collect();
    assert_eq!(names, ["core/ConfigMap/_/prod-web"]);
}

#[test]
fn stderr_names_files_as_the_repository_does() {
    let root = Path::new("/cache/checkouts/rev-x1");
    let stderr = "accumulating resources from 'rate.yaml': lstat /cache/checkouts/rev-x1/apps/rate.yaml: \
                  no such file; in /cache/checkouts/rev-x1";
    assert_eq!(
        repo_relative(stderr, root),
        "accumulating resources from 'rate.yaml': lstat apps/rate.yaml: no such file; in ."
    );
    assert_eq!(repo_relative("plain", Path::new("")), "plain");
}

#[test]
fn long_stderr_keeps_its_end() {
    let long = format!("{}THE CAUSE", "noise ".repeat(2000));
    let cut = tail(&long, 100);
    assert!(
        cut.starts_with('…') && cut.ends_with("THE CAUSE") && cut.len() <= 100 + '…'.len_utf8()
    );
}

#[test]
fn values_kustomize_quotes_are_not_shown() {
    // kubectl kustomize v5, a secretGenerator literal without `=` beside a valid one.
    let literals = "error: loading KV pairs: literal sources [password=hunter5 oops]: \
                    invalid literal source oops, expected key=value";
    let shown = without_values(literals);
    assert_eq!(
        shown,
        "error: loading KV pairs: literal sources (not shown: they hold values): \
         a literal is not key=value"
    );

    // A replacement into a Secret's value: kyaml prints the node it failed on.
    let node = "error: unable to find field \"stringData.password.sub\" in replacement target: \
                wrong node kind: expected MappingNode but got ScalarNode: node contents:\n\
                hunter7\n";
    let shown = without_values(node);
    assert!(!shown.contains("hunter7"), "{shown}");
    assert!(shown.starts_with(
        "error: unable to find field \"stringData.password.sub\" in replacement target"
    ));
    assert!(shown.ends_with("node contents: (not shown: it may hold a Secret's value)"));

    // What names a file or a field is kept as it is.
    let missing = "Error: accumulating resources: accumulating resources from 'db.yaml': \
                   open apps/db.yaml: no such file or directory\n\
                   hint: check the path";
    assert_eq!(without_values(missing), missing);
}

#[tokio::test]
async fn a_failed_build_shows_no_quoted_value() {
    let (_root, target) = checkout();
    // (The value is spelled with an octal escape: the command line is part of the error too.)
    let tool = shell(
        "echo 'error: wrong node kind: expected ScalarNode but got MappingNode: node contents:' >&2; \
         printf '{nested: hunter\\067}\\n' >&2; exit 1",
    );
    let error = tool
        .build(&target, Duration::from_secs(10))
        .await
        .unwrap_err();
    let RenderError::KustomizeFailed { stderr, .. } = &error else {
        panic!("{error:?}");
    };
    assert!(!stderr.contains("hunter7"), "{stderr}");
    assert!(!error.to_string().contains("hunter7"));
}
