//! Which objects of a plan are sent, given the record of the last apply.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::*;

const GENERATION: Option<i64> = Some(3);
const DISCOVERY: u64 = 0x5eed;

/// A plan of a Namespace-less shop: three ConfigMaps and a Deployment, all ours already.
fn shop(settings_rev: &str) -> Plan {
    let mut settings = desired("v1", "ConfigMap", None, "settings");
    settings.object["data"] = json!({"rev": settings_rev});
    let objects = vec![
        settings,
        desired("v1", "ConfigMap", None, "flags"),
        desired("v1", "ConfigMap", None, "limits"),
        desired("apps/v1", "Deployment", None, "web"),
    ];
    let live: Vec<_> = objects
        .iter()
        .map(|d| {
            let mut id = d.id.clone();
            id.namespace = "shop".into();
            (id, ours())
        })
        .collect();
    run(objects, &Inventory::new(), &live).unwrap()
}

/// The record an apply of `plan` leaves: every object as applied, watched and in sync.
fn record_of(plan: &Plan) -> Record {
    Record {
        generation: GENERATION,
        discovery: DISCOVERY,
        stale: false,
        objects: plan
            .applies()
            .map(|apply| {
                let recorded = Recorded {
                    manifest: Arc::from(apply.object.to_string()),
                    in_sync: true,
                };
                (apply.id.clone(), recorded)
            })
            .collect::<HashMap<_, _>>(),
    }
}

fn sent(send: &Send) -> Vec<String> {
    match send {
        Send::All(reason) => vec![format!("all: {}", reason.label())],
        Send::Changes { objects, .. } => objects
            .iter()
            .map(|id| format!("{}/{}", id.kind, id.name))
            .collect(),
    }
}

#[test]
fn only_the_changed_object_is_sent() {
    let record = record_of(&shop("1"));
    let next = shop("2");
    let send = to_send(&next, Some(&record), GENERATION, DISCOVERY);
    assert_eq!(sent(&send), ["ConfigMap/settings"]);
    assert!(matches!(send, Send::Changes { unchanged: 3, .. }));
}

#[test]
fn the_same_revision_again_sends_nothing() {
    let plan = shop("1");
    let send = to_send(&plan, Some(&record_of(&plan)), GENERATION, DISCOVERY);
    assert_eq!(
        send,
        Send::Changes {
            objects: BTreeSet::new(),
            unchanged: 4
        }
    );
}

#[test]
fn new_drifted_and_adopted_objects_are_sent() {
    let before = shop("1");
    let mut record = record_of(&before);
    // Self-heal saw `flags` drift and has not healed it yet.
    let flags = record
        .objects
        .keys()
        .find(|id| id.name == "flags")
        .unwrap()
        .clone();
    record.objects.get_mut(&flags).unwrap().in_sync = false;
    // `limits` was never recorded (its response had no field set of ours).
    record.objects.retain(|id, _| id.name != "limits");
    let mut next = shop("1");
    // `web` exists live without an owner: the plan adopts it.
    let web = next
        .applies()
        .find(|a| a.id.name == "web")
        .unwrap()
        .id
        .clone();
    next.adopted.push(web);
    let send = to_send(&next, Some(&record), GENERATION, DISCOVERY);
    assert_eq!(
        sent(&send),
        ["ConfigMap/flags", "ConfigMap/limits", "Deployment/web"]
    );
}

#[test]
fn a_field_removed_from_a_manifest_is_a_change() {
    let mut before = shop("1");
    let settings = before
        .stages
        .iter_mut()
        .flat_map(|stage| &mut stage.objects)
        .find(|apply| apply.id.name == "settings")
        .unwrap();
    settings.object["data"]["debug"] = json!("true");
    let record = record_of(&before);
    let send = to_send(&shop("1"), Some(&record), GENERATION, DISCOVERY);
    assert_eq!(sent(&send), ["ConfigMap/settings"]);
}

#[test]
fn without_a_trusted_record_everything_is_sent() {
    let plan = shop("2");
    let record = record_of(&shop("1"));
    assert_eq!(
        to_send(&plan, None, GENERATION, DISCOVERY),
        Send::All(FullReason::NoRecord)
    );
    assert_eq!(
        to_send(&plan, Some(&record), Some(4), DISCOVERY),
        Send::All(FullReason::SpecChanged)
    );
    assert_eq!(
        to_send(&plan, Some(&record), GENERATION, DISCOVERY + 1),
        Send::All(FullReason::DiscoveryChanged)
    );
    let stale = Record {
        stale: true,
        ..record
    };
    assert_eq!(
        to_send(&plan, Some(&stale), GENERATION, DISCOVERY),
        Send::All(FullReason::HealFailed)
    );
}

#[test]
fn a_plan_cut_to_its_changes_keeps_stage_order_and_prune() {
    let crd = crd("shop.example", "Widget", "Namespaced");
    let crd_id = crd.id.clone();
    let mut widget = desired("shop.example/v1", "Widget", None, "blue");
    widget.object["spec"] = json!({"size": 2});
    let settings = Settings {
        allow_cluster_scoped: true,
        ..settings()
    };
    let plan = run_with(
        vec![crd, widget, desired("v1", "ConfigMap", None, "settings")],
        &inventory(&[(id("", "ConfigMap", "shop", "retired"), "v1")]),
        &[(id("", "ConfigMap", "shop", "retired"), ours())],
        &settings,
    )
    .unwrap();
    assert_eq!(plan.prune.len(), 1);
    let widget_id = plan
        .applies()
        .find(|a| a.id.kind == "Widget")
        .unwrap()
        .id
        .clone();

    let only_widget = plan.only(&BTreeSet::from([widget_id.clone()]));
    assert_eq!(only_widget.stages.len(), 1, "the CRD's stage is left out");
    assert_eq!(names(&only_widget.stages[0]), ["Widget/blue"]);
    assert_eq!(only_widget.prune, plan.prune, "prune stays whole");

    let both = plan.only(&BTreeSet::from([widget_id, crd_id.clone()]));
    assert_eq!(both.stages.len(), 2);
    assert_eq!(both.stages[0].await_established, [crd_id]);
    // What the next inventory holds is the whole plan's, not the cut one's.
    assert_eq!(plan.next_inventory().len(), 3);
    // Self-heal holds what the cut plan writes, the deletion too (or it would re-create it).
    let retired = id("", "ConfigMap", "shop", "retired");
    assert_eq!(
        only_widget
            .writes()
            .into_iter()
            .map(|id| id.name)
            .collect::<Vec<_>>(),
        ["retired", "blue"]
    );
    assert!(only_widget.writes().contains(&retired));
    let unchanged: Vec<_> = plan
        .unchanged(&BTreeSet::from([plan
            .applies()
            .find(|a| a.id.kind == "Widget")
            .unwrap()
            .id
            .clone()]))
        .into_iter()
        .map(|id| id.name)
        .collect();
    assert_eq!(unchanged, ["settings", "widgets.shop.example"]);
}

/// The objects, by `Kind/name`, of `ids`.
fn kind_names<'a>(ids: impl IntoIterator<Item = &'a ObjectRef>) -> Vec<String> {
    ids.into_iter()
        .map(|id| format!("{}/{}", id.kind, id.name))
        .collect()
}

#[test]
fn what_self_heal_vouches_for_is_not_read_again_and_what_leaves_is_always_read() {
    let before = shop("1");
    let mut record = record_of(&before);
    // The Deployment was scaled by hand: a heal is pending, so its facts are read.
    let web = before
        .applies()
        .find(|a| a.id.kind == "Deployment")
        .unwrap()
        .id
        .clone();
    record.objects.get_mut(&web).unwrap().in_sync = false;
    // `limits` leaves the render (it is in the inventory); `banner` is new.
    let mut inventory = Inventory::new();
    for apply in before.applies() {
        inventory.insert(apply.id.clone(), apply.api_version());
    }
    let objects = vec![
        desired("v1", "ConfigMap", None, "settings"),
        desired("v1", "ConfigMap", None, "flags"),
        desired("apps/v1", "Deployment", None, "web"),
        desired("v1", "ConfigMap", None, "banner"),
    ];
    let prepared = prepare(objects, &builtin_scope, &settings());

    let (known, read) = prepared.known_facts(&inventory, Some(&record));
    assert_eq!(
        kind_names(known.keys()),
        ["ConfigMap/flags", "ConfigMap/settings"]
    );
    assert!(known.values().all(|facts| *facts == ours()));
    let mut read = kind_names(&read);
    read.sort();
    assert_eq!(
        read,
        ["ConfigMap/banner", "ConfigMap/limits", "Deployment/web"]
    );

    // A failed heal since the record: nothing is vouched for.
    record.stale = true;
    let (known, read) = prepared.known_facts(&inventory, Some(&record));
    assert!(known.is_empty());
    assert_eq!(read.len(), 5);
    // No record (self-heal off, a restart): everything is read.
    let (known, read) = prepared.known_facts(&inventory, None);
    assert!(known.is_empty());
    assert_eq!(read.len(), 5);
}
