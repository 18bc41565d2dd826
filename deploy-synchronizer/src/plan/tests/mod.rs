//! Planning tests: shared builders here, apply-side and prune-side cases beside.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;

mod apply;
mod changes;
mod prune;

const SYNC: &str = "shop/web";

fn settings() -> Settings {
    Settings::new("shop", "web")
}

fn id(group: &str, kind: &str, namespace: &str, name: &str) -> ObjectRef {
    ObjectRef {
        group: group.into(),
        kind: kind.into(),
        namespace: namespace.into(),
        name: name.into(),
    }
}

fn manifest(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Value {
    let mut metadata = json!({"name": name});
    if let Some(namespace) = namespace {
        metadata["namespace"] = namespace.into();
    }
    json!({"apiVersion": api_version, "kind": kind, "metadata": metadata})
}

fn desired(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Desired {
    let source = format!("app/{}.yaml:1", name);
    Desired::new(manifest(api_version, kind, namespace, name), source).unwrap()
}

fn crd(group: &str, kind: &str, scope: &str) -> Desired {
    let plural = format!("{}s", kind.to_lowercase());
    let mut object = manifest(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        None,
        "",
    );
    object["metadata"]["name"] = format!("{plural}.{group}").into();
    object["spec"] = json!({"group": group, "scope": scope,
                            "names": {"kind": kind, "plural": plural}});
    Desired::new(object, "crds.yaml:1").unwrap()
}

fn inventory(ids: &[(ObjectRef, &str)]) -> Inventory {
    let mut inventory = Inventory::new();
    for (id, version) in ids {
        inventory.insert(id.clone(), version);
    }
    inventory
}

fn ours() -> LiveFacts {
    LiveFacts {
        owner: Some(SYNC.into()),
        prune_disabled: false,
    }
}

fn run(
    desired: Vec<Desired>,
    inventory: &Inventory,
    live: &[(ObjectRef, LiveFacts)],
) -> Result<Plan, PlanError> {
    run_with(desired, inventory, live, &settings())
}

fn run_with(
    desired: Vec<Desired>,
    inventory: &Inventory,
    live: &[(ObjectRef, LiveFacts)],
    settings: &Settings,
) -> Result<Plan, PlanError> {
    let live: BTreeMap<_, _> = live.iter().cloned().collect();
    plan(desired, inventory, &live, &builtin_scope, settings)
}

fn names(stage: &Stage) -> Vec<String> {
    stage
        .objects
        .iter()
        .map(|apply| format!("{}/{}", apply.id.kind, apply.id.name))
        .collect()
}
