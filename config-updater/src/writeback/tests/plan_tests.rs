use super::{DIGEST, chosen, file, policy};
use crate::writeback::{Change, ProblemKind, WritePlan, plan};

const DEPLOYMENT: &str = "---
# The web app.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # keep the name
spec:
  template:
    spec:
      containers:
        - name: web
          image: \"127.0.0.1:5000/demo/web:1.4.2\" # {\"$imagepolicy\": \"apps:web\"}
          ports: [ {containerPort: 8080} ]
        - name: sidecar
          image: 127.0.0.1:5000/demo/proxy:2.0.0
";

const VALUES: &str = "image:
  repository: 127.0.0.1:5000/demo/api # {\"$imagepolicy\": \"apps:api:name\"}
  tag: '3.1.0'   # {\"$imagepolicy\": \"apps:api:tag\"}
  pullPolicy: IfNotPresent
worker:
  image: 127.0.0.1:5000/demo/api:3.1.0 # {\"$imagepolicy\": \"apps:api\"}
";

const KUSTOMIZATION: &str = "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml
images:
  - name: web
    newName: 127.0.0.1:5000/demo/web
    newTag: 1.4.2 # bumped by Sluice
  - name: 127.0.0.1:5000/demo/proxy
    newTag: \"2.0.0\"
    digest: sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210
";

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

#[test]
fn a_whole_image_marker_gets_the_chosen_image_and_nothing_else_changes() {
    let chosen = chosen(&[("apps/web", "127.0.0.1:5000/demo/web:1.4.3")]);
    let out = plan(
        &[file("apps/web/deployment.yaml", DEPLOYMENT)],
        &chosen,
        false,
    );
    assert_eq!(out.problems, vec![]);
    assert_eq!(out.files.len(), 1);
    assert_eq!(
        text(&out.files[0].new_bytes),
        DEPLOYMENT.replace("demo/web:1.4.2\"", "demo/web:1.4.3\"")
    );
    assert_eq!(
        out.changes,
        vec![Change {
            policy: policy("apps", "web"),
            file: "apps/web/deployment.yaml".into(),
            line: 12,
            image: "127.0.0.1:5000/demo/web".into(),
            old: "1.4.2".into(),
            new: "1.4.3".into(),
        }]
    );
}

#[test]
fn helm_values_name_and_tag_markers() {
    let image = format!("127.0.0.1:5000/demo/api:3.2.0@{DIGEST}");
    let chosen = chosen(&[("apps/api", &image)]);
    let out = plan(&[file("charts/api/values.yaml", VALUES)], &chosen, false);
    assert_eq!(out.problems, vec![]);
    let want = VALUES
        .replace("'3.1.0'", "'3.2.0'")
        .replace("demo/api:3.1.0 #", &format!("demo/api:3.2.0@{DIGEST} #"));
    assert_eq!(text(&out.files[0].new_bytes), want);
    let summary: Vec<(usize, &str, &str)> = out
        .changes
        .iter()
        .map(|c| (c.line, c.old.as_str(), c.new.as_str()))
        .collect();
    let whole = format!("3.2.0@{DIGEST}");
    assert_eq!(
        summary,
        vec![(3, "3.1.0", "3.2.0"), (6, "3.1.0", whole.as_str())],
        "the :name field already holds the repository: no change"
    );
}

#[test]
fn kustomize_entries_get_new_tag_and_digest_when_unmarked_updates_are_on() {
    let digest2 = DIGEST;
    let chosen = chosen(&[
        ("apps/web", "127.0.0.1:5000/demo/web:1.5.0"),
        (
            "apps/proxy",
            &format!("127.0.0.1:5000/demo/proxy:2.1.0@{digest2}"),
        ),
    ]);
    let files = [file("overlays/prod/kustomization.yaml", KUSTOMIZATION)];
    assert_eq!(
        plan(&files, &chosen, false).files,
        vec![],
        "markers only by default"
    );

    let out = plan(&files, &chosen, true);
    assert_eq!(out.problems, vec![]);
    let want = KUSTOMIZATION
        .replace("newTag: 1.4.2 #", "newTag: 1.5.0 #")
        .replace("\"2.0.0\"", "\"2.1.0\"")
        .replace(
            "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
            DIGEST,
        );
    assert_eq!(text(&out.files[0].new_bytes), want);
    assert_eq!(out.changes.len(), 3);
}

#[test]
fn a_kustomization_named_as_kustomize_allows_is_planned_whatever_its_name() {
    // kustomize accepts `kustomization.yaml`, `kustomization.yml` and `Kustomization`: all
    // three are bumped alike; a file of another name without a YAML extension is not read.
    let chosen = chosen(&[("apps/web", "127.0.0.1:5000/demo/web:1.5.0")]);
    let want = KUSTOMIZATION.replace("newTag: 1.4.2 #", "newTag: 1.5.0 #");
    for path in [
        "overlays/prod/kustomization.yaml",
        "overlays/prod/kustomization.yml",
        "overlays/prod/Kustomization",
    ] {
        let out = plan(&[file(path, KUSTOMIZATION)], &chosen, true);
        assert_eq!(out.problems, vec![], "{path}");
        assert_eq!(out.files.len(), 1, "{path}");
        assert_eq!(out.files[0].path, path);
        assert_eq!(text(&out.files[0].new_bytes), want, "{path}");
        assert_eq!(out.changes[0].file, path);
    }
    for path in [
        "overlays/prod/kustomization",
        "overlays/prod/Kustomization.txt",
    ] {
        let out = plan(&[file(path, KUSTOMIZATION)], &chosen, true);
        assert_eq!(out, WritePlan::default(), "{path}");
    }
}

#[test]
fn a_kustomize_entry_without_the_needed_key_is_reported_not_reformatted() {
    let k = "images:\n  - name: 127.0.0.1:5000/demo/web\n    newName: 127.0.0.1:5000/demo/web\n";
    let chosen = chosen(&[("apps/web", "127.0.0.1:5000/demo/web:1.5.0")]);
    let out = plan(&[file("kustomization.yaml", k)], &chosen, true);
    assert_eq!(out.files, vec![]);
    assert!(
        matches!(&out.problems[..], [p] if matches!(&p.kind, ProblemKind::MissingKey { key, .. } if key == "newTag")),
        "{:?}",
        out.problems
    );
    // A digest the policy does not pin would keep the old image running: left alone, reported.
    let pinned = format!(
        "images:\n  - name: 127.0.0.1:5000/demo/web\n    newTag: 1.4.0\n    digest: {DIGEST}\n"
    );
    let out = plan(&[file("kustomization.yaml", &pinned)], &chosen, true);
    assert_eq!(out.files, vec![]);
    assert!(
        matches!(&out.problems[0].kind, ProblemKind::MissingPart { part, .. } if part == "digest")
    );
}

#[test]
fn a_file_that_does_not_parse_is_reported_and_the_others_still_updated() {
    let chosen = chosen(&[("apps/web", "127.0.0.1:5000/demo/web:1.4.3")]);
    let broken =
        "kind: Deployment\nspec: [unclosed\n  image: x # {\"$imagepolicy\": \"apps:web\"}\n";
    let out = plan(
        &[
            file("a/broken.yaml", broken),
            file("b/deployment.yaml", DEPLOYMENT),
            file("README.md", "image: not yaml to us"),
        ],
        &chosen,
        false,
    );
    assert_eq!(out.files.len(), 1);
    assert_eq!(out.files[0].path, "b/deployment.yaml");
    assert_eq!(out.problems.len(), 1, "{:?}", out.problems);
    let p = &out.problems[0];
    assert_eq!(p.file, "a/broken.yaml");
    assert!(matches!(p.kind, ProblemKind::Unparsable { .. }));
    assert!(p.line.is_some() && p.column.is_some(), "{p}");
}

#[test]
fn a_marker_naming_an_unknown_policy_is_reported_and_left_alone() {
    let chosen = chosen(&[("apps/web", "127.0.0.1:5000/demo/web:1.4.3")]);
    let other = "image: 127.0.0.1:5000/demo/db:9.0 # {\"$imagepolicy\": \"apps:db\"}\n";
    let out = plan(
        &[file("db.yaml", other), file("web.yaml", DEPLOYMENT)],
        &chosen,
        false,
    );
    assert_eq!(out.files.len(), 1);
    assert_eq!(out.files[0].path, "web.yaml");
    assert_eq!(out.problems.len(), 1);
    assert_eq!(out.problems[0].policy, Some(policy("apps", "db")));
    assert_eq!(
        out.problems[0].to_string(),
        "db.yaml:1:8: the marker names the image policy apps:db, which is unknown; the value was left alone"
    );
}

#[test]
fn crlf_files_keep_their_line_endings() {
    let crlf = DEPLOYMENT.replace('\n', "\r\n");
    let chosen = chosen(&[("apps/web", "127.0.0.1:5000/demo/web:1.4.3")]);
    let out = plan(&[file("web.yml", &crlf)], &chosen, false);
    assert_eq!(out.problems, vec![]);
    assert_eq!(
        text(&out.files[0].new_bytes),
        crlf.replace("web:1.4.2", "web:1.4.3")
    );
}

#[test]
fn a_value_already_at_the_chosen_image_plans_nothing() {
    let chosen = chosen(&[("apps/web", "127.0.0.1:5000/demo/web:1.4.2")]);
    let out = plan(&[file("web.yaml", DEPLOYMENT)], &chosen, true);
    assert_eq!(out.files, vec![]);
    assert_eq!(out.changes, vec![]);
}

#[test]
fn unmarked_images_keep_their_spelling_and_ambiguity_is_reported() {
    let pod = "spec:\n  containers:\n    - image: nginx:1.25 # the proxy\n";
    let chosen1 = chosen(&[("web/nginx", "docker.io/library/nginx:1.27")]);
    let out = plan(&[file("pod.yaml", pod)], &chosen1, true);
    assert_eq!(text(&out.files[0].new_bytes), pod.replace("1.25", "1.27"));

    let two = chosen(&[
        ("web/nginx", "nginx:1.27"),
        ("web/nginx-canary", "nginx:1.28"),
    ]);
    let out = plan(&[file("pod.yaml", pod)], &two, true);
    assert_eq!(out.files, vec![]);
    assert!(matches!(
        out.problems[0].kind,
        ProblemKind::Ambiguous { .. }
    ));
}

#[test]
fn values_that_cannot_be_edited_safely_are_reported_and_the_rest_goes_ahead() {
    // A block scalar under a marker, a digest marker while the policy pins none, and a plain
    // `1.0` (a float to YAML) that would silently become a string: each reported, left alone;
    // the quoted tag on the last line is still updated.
    let values = format!(
        "a: |  # {{\"$imagepolicy\": \"apps:web\"}}\n  127.0.0.1:5000/demo/web:1.0\nb: {DIGEST} # {{\"$imagepolicy\": \"apps:web:digest\"}}\nc: 1.0 # {{\"$imagepolicy\": \"apps:web:tag\"}}\nd: \"1.0\" # {{\"$imagepolicy\": \"apps:web:tag\"}}\n"
    );
    let chosen = chosen(&[("apps/web", "127.0.0.1:5000/demo/web:1.4.3")]);
    let out = plan(&[file("v.yaml", &values)], &chosen, false);
    assert_eq!(out.files.len(), 1, "{:?}", out.problems);
    assert_eq!(
        text(&out.files[0].new_bytes),
        values.replace("d: \"1.0\"", "d: \"1.4.3\"")
    );
    assert_eq!(out.changes.len(), 1);
    assert_eq!(out.changes[0].line, 5);
    let kinds: Vec<(Option<usize>, &ProblemKind)> =
        out.problems.iter().map(|p| (p.line, &p.kind)).collect();
    assert!(
        matches!(kinds[0], (Some(1), ProblemKind::NotEditable { .. })),
        "{kinds:?}"
    );
    assert!(
        matches!(kinds[1], (Some(3), ProblemKind::MissingPart { .. })),
        "{kinds:?}"
    );
    assert!(
        matches!(kinds[2], (Some(4), ProblemKind::NotEditable { reason }) if reason.contains("quote the value")),
        "{kinds:?}"
    );
    assert_eq!(kinds.len(), 3);
}
