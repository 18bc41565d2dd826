use serde_json::json;

use super::*;

fn names(manifests: &[Manifest]) -> Vec<String> {
    manifests
        .iter()
        .map(|manifest| manifest.object_ref.to_string())
        .collect()
}

fn errors_of(file: &str, bytes: &[u8]) -> Vec<RenderError> {
    parse_documents(file, bytes)
        .expect_err("the file should be refused")
        .into_vec()
}

/// A file as people write them: a header comment, a leading `---`, comments between documents,
/// a comment-only document, an explicit end marker, odd indentation and flow style.
const SHOP: &str = "\
# Shop front-end. Owned by team-web.
---
apiVersion: v1
kind: Namespace
metadata:
    name: shop   # four-space indentation
---
# --- not a marker: it is in a comment
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  replicas: 2
  template:
    spec:
      containers:
      - name: web
        image: registry.local/web:1.4.2   # {\"$imagepolicy\": \"shop:web\"}
      volumes:
      - name: conf
        configMap: {name: web, defaultMode: 0644}
...
# trailing notes after the end marker
---

---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web
  namespace: shop
data:
  nginx.conf: |
    server {
      listen 8080;
    }
";

#[test]
fn multi_document_file_with_comments() {
    let manifests = parse_documents("shop/app.yaml", SHOP.as_bytes()).unwrap();
    assert_eq!(
        names(&manifests),
        [
            "core/Namespace/_/shop",
            "apps/Deployment/shop/web",
            "core/ConfigMap/shop/web"
        ]
    );
    let sources: Vec<_> = manifests
        .iter()
        .map(|m| (m.source.document, m.source.line))
        .collect();
    // Document 1 is the comment-only one, document 3 the empty one between two `---`.
    assert_eq!(sources, [(0, 3), (2, 10), (4, 28)]);
    assert_eq!(manifests[1].source.to_string(), "shop/app.yaml:10");
    assert_eq!(manifests[0].source.file, "shop/app.yaml");
    let deployment = &manifests[1].object;
    assert_eq!(deployment["metadata"]["labels"]["app"], "web");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.local/web:1.4.2"
    );
    // Kubernetes reads YAML 1.1 numbers: 0644 is octal.
    assert_eq!(
        deployment["spec"]["template"]["spec"]["volumes"][0]["configMap"]["defaultMode"],
        420
    );
    assert_eq!(
        manifests[2].object["data"]["nginx.conf"],
        "server {\n  listen 8080;\n}\n"
    );
}

#[test]
fn json_manifest() {
    let bytes = br#"{
	"apiVersion": "v1",
	"kind": "Service",
	"metadata": { "name": "web", "namespace": "shop" },
	"spec": { "ports": [ { "port": 80, "targetPort": 8080 } ] }
}
"#;
    let manifests = parse_documents("shop/service.json", bytes).unwrap();
    assert_eq!(names(&manifests), ["core/Service/shop/web"]);
    assert_eq!(manifests[0].object["spec"]["ports"][0]["targetPort"], 8080);
    assert_eq!(manifests[0].source.line, 1);
}

#[test]
fn invalid_yaml_names_file_line_and_column() {
    let bytes = b"\
apiVersion: v1
kind: ConfigMap
metadata: {name: one}
---
# the second document has a broken flow mapping
apiVersion: v1
kind: ConfigMap
metadata: {name: two
data:
  a: b
";
    let errors = errors_of("conf/maps.yaml", bytes);
    let [
        RenderError::InvalidYaml {
            file,
            line,
            column,
            message,
        },
    ] = errors.as_slice()
    else {
        panic!("expected one InvalidYaml, got {errors:?}");
    };
    assert_eq!(file, "conf/maps.yaml");
    // Line 9 of the file: `data:` is where the unclosed `{name: two` cannot go on. The line is
    // counted in the whole file, not in the second document.
    assert_eq!((*line, *column), (9, 5));
    assert!(
        !message.is_empty() && !message.contains("at line"),
        "{message}"
    );
    let shown = errors[0].to_string();
    assert!(
        shown.starts_with(&format!("conf/maps.yaml:{line}:{column}: invalid YAML: ")),
        "{shown}"
    );
}

#[test]
fn bad_indentation_points_at_its_line() {
    let bytes = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n   namespace: b\n";
    let errors = errors_of("a.yaml", bytes);
    assert!(
        matches!(errors[..], [RenderError::InvalidYaml { line: 5, .. }]),
        "{errors:?}"
    );
}

#[test]
fn missing_kind_is_reported_with_its_line() {
    let bytes = b"\
apiVersion: v1
kind: ConfigMap
metadata: {name: fine}
---

apiVersion: v1
metadata:
  name: no-kind
";
    let errors = errors_of("maps.yaml", bytes);
    let [RenderError::NotAKubernetesObject { at, missing }] = errors.as_slice() else {
        panic!("expected NotAKubernetesObject, got {errors:?}");
    };
    assert_eq!(
        (at.file.as_str(), at.document, at.line),
        ("maps.yaml", 1, 6)
    );
    assert_eq!(missing, "kind");
    assert!(
        errors[0]
            .to_string()
            .starts_with("maps.yaml:6: not a Kubernetes object, missing kind")
    );
}

#[test]
fn every_missing_identity_field_is_named() {
    let errors = errors_of("values.yaml", b"replicaCount: 3\nimage: {tag: 1.0}\n");
    let [RenderError::NotAKubernetesObject { missing, .. }] = errors.as_slice() else {
        panic!("{errors:?}");
    };
    assert_eq!(missing, "apiVersion, kind, metadata.name");
}

#[test]
fn all_bad_documents_of_a_file_are_reported() {
    let bytes = b"kind: A\nmetadata: {name: a}\n---\n- not\n- a mapping\n---\nkey: [unclosed\n";
    let errors = errors_of("bad.yaml", bytes);
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(matches!(&errors[0], RenderError::NotAKubernetesObject { at, .. } if at.line == 1));
    assert!(
        matches!(&errors[1], RenderError::NotAnObject { at, found: "a sequence" } if at.line == 4)
    );
    assert!(matches!(
        &errors[2],
        RenderError::InvalidYaml { line: 7, .. }
    ));
}

#[test]
fn non_utf8_bytes_are_located() {
    let bytes = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: caf\xe9}\n";
    let errors = errors_of("latin1.yaml", bytes);
    assert!(
        matches!(&errors[..], [RenderError::NotUtf8 { file, line: 3, column: 21 }] if file == "latin1.yaml"),
        "{errors:?}"
    );
}

#[test]
fn list_is_expanded_with_item_sources() {
    let bytes = b"\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ServiceAccount
  metadata: {name: builder, namespace: ci}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: builder}
  rules: []
";
    let manifests = parse_documents("ci/rbac.yaml", bytes).unwrap();
    assert_eq!(
        names(&manifests),
        [
            "core/ServiceAccount/ci/builder",
            "rbac.authorization.k8s.io/ClusterRole/_/builder"
        ]
    );
    assert_eq!(manifests[1].source.item, Some(1));
    assert_eq!(manifests[1].source.to_string(), "ci/rbac.yaml:1 (item 1)");
}

#[test]
fn typed_list_items_need_their_identity() {
    let bytes = b"apiVersion: v1\nkind: ConfigMapList\nitems:\n- metadata: {name: a}\n";
    let errors = errors_of("list.yaml", bytes);
    assert!(
        matches!(&errors[..], [RenderError::NotAKubernetesObject { at, .. }] if at.item == Some(0)),
        "{errors:?}"
    );
}

#[test]
fn a_kind_ending_in_list_without_items_is_an_object() {
    let bytes = b"apiVersion: example.com/v1\nkind: AllowList\nmetadata: {name: a}\nspec: {}\n";
    let manifests = parse_documents("allow.yaml", bytes).unwrap();
    assert_eq!(names(&manifests), ["example.com/AllowList/_/a"]);
}

#[test]
fn empty_and_null_files_render_nothing() {
    for bytes in [
        &b""[..],
        b"\n\n",
        b"# just a comment\n",
        b"---\n",
        b"---\n...\n",
        b"--- ~\n",
        b"null\n",
    ] {
        assert_eq!(
            parse_documents("empty.yaml", bytes).unwrap(),
            [],
            "{bytes:?}"
        );
    }
}

#[test]
fn byte_order_mark_and_crlf() {
    let bytes = b"\xef\xbb\xbfapiVersion: v1\r\nkind: ConfigMap\r\nmetadata:\r\n  name: win\r\n---\r\napiVersion: v1\r\nkind: ConfigMap\r\nmetadata: {name: two}\r\n";
    let manifests = parse_documents("win.yaml", bytes).unwrap();
    assert_eq!(
        names(&manifests),
        ["core/ConfigMap/_/win", "core/ConfigMap/_/two"]
    );
    assert_eq!(manifests[1].source.line, 6);
}

#[test]
fn splitting_keeps_markers_with_their_document() {
    let text = "%YAML 1.2\n---\na: 1\n--- |\n  text\n---- not a marker\n...\nbare: 2\n";
    let documents = split_documents(text);
    let shape: Vec<_> = documents
        .iter()
        .map(|d| (d.index, d.first_line, d.text))
        .collect();
    assert_eq!(
        shape,
        [
            (0, 1, "%YAML 1.2\n---\na: 1\n"),
            (1, 4, "--- |\n  text\n---- not a marker\n...\n"),
            (2, 8, "bare: 2\n"),
        ]
    );
}

#[test]
fn marker_line_with_content_parses() {
    let manifests = parse_documents(
        "flow.yaml",
        b"--- {apiVersion: v1, kind: Secret, metadata: {name: s}}\n",
    )
    .unwrap();
    assert_eq!(
        manifests[0].object,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})
    );
}

/// A billion laughs: nine levels of anchors, each aliasing the one before ten times (10^9 "lol"s
/// if expanded, from 1 KB of YAML).
fn billion_laughs() -> String {
    let mut text = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: laughs}\ndata:\n  l0: &l0 \"lol\"\n",
    );
    for level in 1..=9 {
        let prior = level - 1;
        let aliases = vec![format!("*l{prior}"); 10].join(", ");
        text.push_str(&format!("  l{level}: &l{level} [{aliases}]\n"));
    }
    text
}

#[test]
fn a_billion_laughs_is_refused_not_expanded() {
    let started = std::time::Instant::now();
    let errors = errors_of("laughs.yaml", billion_laughs().as_bytes());
    assert_eq!(errors.len(), 1, "{errors:?}");
    let message = errors[0].to_string();
    println!("{message} ({:?})", started.elapsed());
    assert!(message.starts_with("laughs.yaml:11:"), "{message}");
    assert!(message.contains("too big once its anchors and aliases are expanded"));
}
