//! Sluice's Helm chart (`manifests/chart/`): with its default values it renders exactly the
//! objects of `kubectl kustomize manifests/` (the CRDs are the same files: `chart/crds` links to
//! `manifests/crds`), its values change what they say they change, and the API server accepts what
//! it renders with them (a server-side dry-run on the world).

use std::collections::BTreeMap;
use std::process::Output;

use serde_json::Value;
use sluice_e2e::World;
use sluice_e2e::installed::{apply_manifests, kubectl, manifests_dir};

/// Runs the world's helm with `args`.
fn helm(world: &World, args: &[&str]) -> Output {
    std::process::Command::new("helm")
        .args(args)
        .env("PATH", world.var("PATH").unwrap_or("/usr/bin:/bin"))
        .env(
            "HELM_CACHE_HOME",
            std::env::temp_dir().join("sluice-chart-test-cache"),
        )
        .output()
        .expect("running the world's helm (is the world's env sourced?)")
}

fn stdout(what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The chart rendered into `sluice-system` with `--set` values.
fn render(world: &World, set: &[&str]) -> BTreeMap<(String, String, String), Value> {
    let chart = manifests_dir().join("chart");
    let mut args = vec![
        "template",
        "sluice",
        chart.to_str().unwrap(),
        "--namespace",
        "sluice-system",
        "--include-crds",
    ];
    for value in set {
        args.extend(["--set", value]);
    }
    objects(&stdout("helm template", helm(world, &args)))
}

/// Each object of a YAML stream by (kind, namespace, name).
fn objects(yaml: &str) -> BTreeMap<(String, String, String), Value> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(yaml).expect("YAML");
    documents
        .into_iter()
        .filter(|object| !object.is_null())
        .map(|object| {
            let text = |pointer: &str| {
                object
                    .pointer(pointer)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            };
            let key = (
                text("/kind"),
                text("/metadata/namespace"),
                text("/metadata/name"),
            );
            (key, numbers_as_floats(object))
        })
        .collect()
}

/// YAML writers differ on `0` and `0.0` (kustomize rewrites the CRDs' `minimum: 0.0`): numbers
/// are compared by value.
fn numbers_as_floats(value: Value) -> Value {
    match value {
        Value::Number(n) => n.as_f64().map_or(Value::Number(n), Value::from),
        Value::Array(items) => Value::Array(items.into_iter().map(numbers_as_floats).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k, numbers_as_floats(v)))
                .collect(),
        ),
        other => other,
    }
}

fn container<'a>(objects: &'a BTreeMap<(String, String, String), Value>, name: &str) -> &'a Value {
    let key = (
        "Deployment".to_owned(),
        "sluice-system".to_owned(),
        name.to_owned(),
    );
    objects[&key]
        .pointer("/spec/template/spec/containers/0")
        .unwrap()
}

#[test]
fn the_chart_renders_the_objects_of_the_kustomization() {
    let world = World::get();
    let dir = manifests_dir();
    let kustomized = objects(&stdout(
        "kubectl kustomize",
        kubectl(world, &["kustomize", dir.to_str().unwrap()]),
    ));
    let charted = render(world, &[]);
    let keys = |o: &BTreeMap<_, Value>| o.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&charted), keys(&kustomized), "the same objects");
    for (key, object) in &kustomized {
        assert!(
            &charted[key] == object,
            "{key:?} differs:\n  kustomize: {object}\n  chart:     {}",
            charted[key]
        );
    }
    assert_eq!(kustomized.len(), 19, "{:?}", keys(&kustomized));
}

#[test]
fn the_chart_values_set_what_they_say_and_the_api_server_accepts_them() {
    let world = World::get();
    let digest = "sha256:0b5a2f1f3c8e9d7a6b4c2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b";
    let digest_value = format!("deploySynchronizer.image.digest={digest}");
    let objects = render(
        world,
        &[
            &digest_value,
            "configUpdater.replicas=3",
            "deploySynchronizer.webhookSecrets.github=sluice-github-webhook",
            "deploySynchronizer.defaultServiceAccount=tenant",
            "deploySynchronizer.noCrossNamespaceRefs=true",
            "deploySynchronizer.shards=6",
            "configUpdater.watchNamespace=sluice-system",
            "networkPolicy.enabled=false",
            "namespace.create=false",
        ],
    );
    let synchronizer = container(&objects, "deploy-synchronizer");
    assert_eq!(
        synchronizer["image"],
        format!("ghcr.io/sluice-dev/deploy-synchronizer@{digest}")
    );
    let args: Vec<&str> = synchronizer["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for wanted in [
        "--leader-elect",
        "github=/etc/sluice/webhooks/github/secret",
        "--default-service-account",
        "tenant",
        "--no-cross-namespace-refs",
        "--shards",
        "6",
    ] {
        assert!(args.contains(&wanted), "{wanted} in {args:?}");
    }
    let deployment = &objects[&(
        "Deployment".to_owned(),
        "sluice-system".to_owned(),
        "deploy-synchronizer".to_owned(),
    )];
    let volumes = deployment.pointer("/spec/template/spec/volumes").unwrap();
    assert!(
        volumes.to_string().contains("sluice-github-webhook"),
        "{volumes}"
    );
    let updater = &objects[&(
        "Deployment".to_owned(),
        "sluice-system".to_owned(),
        "config-updater".to_owned(),
    )];
    assert_eq!(updater.pointer("/spec/replicas"), Some(&Value::from(3.0)));
    let updater_args = container(&objects, "config-updater")["args"].to_string();
    assert!(
        updater_args.contains("\"--watch-namespace\",\"sluice-system\""),
        "{updater_args}"
    );
    // One watched namespace: a Role there, no ClusterRole for the updater.
    let named = |kind: &str, ns: &str| {
        (
            kind.to_owned(),
            ns.to_owned(),
            "sluice:config-updater".to_owned(),
        )
    };
    assert!(objects.contains_key(&named("Role", "sluice-system")));
    assert!(!objects.contains_key(&named("ClusterRole", "")));
    assert!(
        !objects
            .keys()
            .any(|(kind, _, _)| kind == "NetworkPolicy" || kind == "Namespace")
    );

    // The API server takes it (the namespace and CRDs are there once the manifests are applied).
    apply_manifests(world);
    let file = tempfile::NamedTempFile::new().unwrap();
    let stream: Vec<String> = objects.values().map(|o| o.to_string()).collect();
    std::fs::write(file.path(), stream.join("\n")).unwrap();
    let out = kubectl(
        world,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--dry-run=server",
            "--field-manager=chart-test",
            "-f",
            file.path().to_str().unwrap(),
        ],
    );
    let applied = stdout("kubectl apply --dry-run=server", out);
    assert!(
        applied.contains("deployment.apps/deploy-synchronizer serverside-applied (server dry run)"),
        "{applied}"
    );
}
