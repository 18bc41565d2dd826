use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry, ObjectMeta};
use serde_json::{Value, json};

use super::*;

fn id(name: &str) -> ObjectRef {
    ObjectRef {
        group: String::new(),
        kind: "ConfigMap".into(),
        namespace: "shop".into(),
        name: name.into(),
    }
}

fn desired(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": "shop"}, "data": {"color": "blue"}})
}

fn fields() -> Value {
    json!({"f:data": {"f:color": {}}})
}

/// The object as an apply returns it, at resourceVersion `rv`.
fn returned(name: &str, rv: u64) -> Value {
    let mut object = desired(name);
    object["metadata"]["resourceVersion"] = json!(rv.to_string());
    object["metadata"]["managedFields"] = json!([{
        "manager": "sluice", "operation": "Apply", "apiVersion": "v1",
        "fieldsType": "FieldsV1", "fieldsV1": fields()
    }]);
    object
}

fn live(rv: u64, ours: Value, others: &[(&str, Value)]) -> ObjectMeta {
    let mut managed = vec![ManagedFieldsEntry {
        manager: Some("sluice".into()),
        operation: Some("Apply".into()),
        fields_v1: Some(FieldsV1(ours)),
        ..ManagedFieldsEntry::default()
    }];
    for (manager, theirs) in others {
        managed.push(ManagedFieldsEntry {
            manager: Some((*manager).into()),
            operation: Some("Update".into()),
            fields_v1: Some(FieldsV1(theirs.clone())),
            ..ManagedFieldsEntry::default()
        });
    }
    ObjectMeta {
        resource_version: Some(rv.to_string()),
        managed_fields: Some(managed),
        ..ObjectMeta::default()
    }
}

fn edited(rv: u64) -> ObjectMeta {
    live(rv, json!({}), &[("kubectl-edit", fields())])
}

fn registered(names: &[&str]) -> (Index, Vec<(Value, Value)>) {
    let objects: Vec<(Value, Value)> = names
        .iter()
        .map(|n| (desired(n), returned(n, 10)))
        .collect();
    let mut index = Index::default();
    let left_out = index.register(
        "shop/web",
        names.iter().zip(&objects).map(|(n, (d, r))| Applied {
            id: id(n),
            api_version: "v1".into(),
            desired: d,
            returned: r,
        }),
        &BTreeSet::new(),
        Made::default(),
    );
    assert!(left_out.is_empty());
    (index, objects)
}

#[test]
fn drift_schedules_one_heal_of_the_applied_manifest() {
    let (mut index, _) = registered(&["a", "b"]);
    let now = Instant::now();
    assert_eq!(
        index.observe(&id("a"), Some(&live(11, fields(), &[])), now),
        None
    );
    assert!(index.in_sync("shop/web"));

    let heal = index
        .observe(&id("a"), Some(&edited(12)), now)
        .expect("a heal");
    assert_eq!(heal.delay, Duration::ZERO);
    assert!(matches!(heal.check, Check::Drifted(ref d) if d.by == ["kubectl-edit"]));
    // A second event while the heal is pending schedules nothing more; the heal is in hand.
    assert_eq!(index.observe(&id("a"), Some(&edited(13)), now), None);
    assert!(index.in_sync("shop/web"));

    let target = index.target(&id("a")).unwrap();
    assert_eq!(target.sync, "shop/web");
    let applied: Value = serde_json::from_str(&target.desired).unwrap();
    assert_eq!(applied, desired("a"));
    index.healed(&id("a"), &returned("a", 14), now);
    assert!(index.in_sync("shop/web"));
    assert_eq!(
        index.observe(&id("a"), Some(&live(14, fields(), &[])), now),
        None
    );
}

#[test]
fn a_deleted_object_is_re_created() {
    let (mut index, _) = registered(&["a"]);
    let heal = index.observe(&id("a"), None, Instant::now()).unwrap();
    assert_eq!(heal.check, Check::Deleted);
}

#[test]
fn objects_of_no_sync_are_ignored() {
    let (mut index, _) = registered(&["a"]);
    assert_eq!(index.observe(&id("other"), None, Instant::now()), None);
}

#[test]
fn events_older_than_the_apply_are_stale() {
    let (mut index, _) = registered(&["a"]);
    // The watch delivers the object as it was before our apply (rv 9 < 10).
    assert_eq!(
        index.observe(&id("a"), Some(&edited(9)), Instant::now()),
        None
    );
}

#[test]
fn nothing_is_healed_while_the_sync_applies() {
    let (mut index, _) = registered(&["a"]);
    index.hold("shop/web", Holding::Everything);
    assert!(!index.in_sync("shop/web"));
    assert_eq!(
        index.observe(&id("a"), Some(&edited(12)), Instant::now()),
        None
    );
    index.release("shop/web");
    assert!(
        index
            .observe(&id("a"), Some(&edited(12)), Instant::now())
            .is_some()
    );
}

#[test]
fn a_heal_scheduled_before_an_apply_is_dropped() {
    let (mut index, _) = registered(&["a"]);
    index
        .observe(&id("a"), Some(&edited(12)), Instant::now())
        .unwrap();
    index.hold("shop/web", Holding::Everything);
    assert_eq!(index.target(&id("a")), None);
}

#[test]
fn a_new_registration_replaces_the_old_one() {
    let (mut index, _) = registered(&["a", "b"]);
    let (d, r) = (desired("c"), returned("c", 20));
    index.register(
        "shop/web",
        [Applied {
            id: id("c"),
            api_version: "v1".into(),
            desired: &d,
            returned: &r,
        }],
        &BTreeSet::new(),
        Made::default(),
    );
    assert_eq!(index.len(), 1);
    // "a" was pruned: its deletion is not healed.
    assert_eq!(index.observe(&id("a"), None, Instant::now()), None);
    let config_maps = WatchKey::of(&id("c"), WatchScope::Cluster);
    assert_eq!(index.ids_of(&config_maps), [id("c")]);
}

#[test]
fn forgetting_a_sync_stops_its_heals() {
    let (mut index, _) = registered(&["a"]);
    index.forget("shop/web");
    assert!(index.is_empty());
    assert!(!index.in_sync("shop/web"));
    assert_eq!(index.observe(&id("a"), None, Instant::now()), None);
}

#[test]
fn a_fighting_actor_is_healed_with_backoff() {
    let (mut index, _) = registered(&["a"]);
    let mut now = Instant::now();
    let mut delays = Vec::new();
    let mut rv = 11;
    for _ in 0..5 {
        let heal = index.observe(&id("a"), Some(&edited(rv)), now).unwrap();
        delays.push((heal.delay.as_secs(), heal.fight_started));
        now += heal.delay;
        index.target(&id("a")).unwrap();
        index.healed(&id("a"), &returned("a", rv + 1), now);
        rv += 2;
        now += Duration::from_millis(20);
    }
    assert_eq!(
        delays,
        [(0, false), (0, false), (2, true), (6, false), (18, false)]
    );
}

#[test]
fn one_watch_per_kind_or_per_kind_and_namespace() {
    let (mut index, _) = registered(&["a", "b"]);
    let watch = |group: &str, kind: &str, namespace: &str| WatchKey {
        group: group.into(),
        kind: kind.into(),
        namespace: namespace.into(),
    };
    let watches: Vec<_> = index.watches(WatchScope::Cluster).into_iter().collect();
    assert_eq!(watches, [(watch("", "ConfigMap", ""), "v1".into())]);

    // A second sync's objects: a ConfigMap in another namespace, and a cluster-scoped kind.
    let elsewhere = ObjectRef {
        namespace: "billing".into(),
        ..id("c")
    };
    let role = ObjectRef {
        group: "rbac.authorization.k8s.io".into(),
        kind: "ClusterRole".into(),
        namespace: String::new(),
        name: "reader".into(),
    };
    let (d, r) = (desired("c"), returned("c", 3));
    index.register(
        "billing/api",
        [elsewhere.clone(), role.clone()].map(|id| Applied {
            id,
            api_version: "v1".into(),
            desired: &d,
            returned: &r,
        }),
        &BTreeSet::new(),
        Made::default(),
    );
    let keys = |scope| -> Vec<WatchKey> {
        index
            .watches(scope)
            .into_iter()
            .map(|(key, _)| key)
            .collect()
    };
    assert_eq!(
        keys(WatchScope::Cluster),
        [
            watch("", "ConfigMap", ""),
            watch("rbac.authorization.k8s.io", "ClusterRole", "")
        ]
    );
    assert_eq!(
        keys(WatchScope::Namespace),
        [
            watch("", "ConfigMap", "billing"),
            watch("", "ConfigMap", "shop"),
            watch("rbac.authorization.k8s.io", "ClusterRole", ""),
        ]
    );
    // A namespace's watch lists only that namespace's objects; a cluster-wide one all of them.
    assert_eq!(
        index.ids_of(&watch("", "ConfigMap", "billing")),
        [elsewhere]
    );
    let mut all = index.ids_of(&watch("", "ConfigMap", ""));
    all.sort();
    assert_eq!(all.len(), 3);
    assert_eq!(
        index.ids_of(&watch("rbac.authorization.k8s.io", "ClusterRole", "")),
        [role]
    );
}

#[test]
fn an_object_without_our_field_set_is_left_out() {
    let mut index = Index::default();
    let d = desired("a");
    let left_out = index.register(
        "shop/web",
        [Applied {
            id: id("a"),
            api_version: "v1".into(),
            desired: &d,
            returned: &d,
        }],
        &BTreeSet::new(),
        Made::default(),
    );
    assert_eq!(left_out, [id("a")]);
    assert!(index.in_sync("shop/web"));
}

#[test]
fn a_failed_heal_asks_for_a_full_sync() {
    let (mut index, objects) = registered(&["a"]);
    index.observe(&id("a"), None, Instant::now()).unwrap();
    index.target(&id("a")).unwrap();
    index.heal_failed(&id("a"));
    assert!(!index.in_sync("shop/web"));
    let (d, r) = &objects[0];
    index.register(
        "shop/web",
        [Applied {
            id: id("a"),
            api_version: "v1".into(),
            desired: d,
            returned: r,
        }],
        &BTreeSet::new(),
        Made::default(),
    );
    assert!(index.in_sync("shop/web"));
}

#[test]
fn a_fight_outlives_a_re_apply() {
    let (mut index, objects) = registered(&["a"]);
    let mut now = Instant::now();
    for rv in [11, 13] {
        let heal = index.observe(&id("a"), Some(&edited(rv)), now).unwrap();
        assert_eq!(heal.delay, Duration::ZERO);
        index.healed(&id("a"), &returned("a", rv + 1), now);
        now += Duration::from_millis(20);
    }
    let (d, r) = &objects[0];
    index.register(
        "shop/web",
        [Applied {
            id: id("a"),
            api_version: "v1".into(),
            desired: d,
            returned: r,
        }],
        &BTreeSet::new(),
        Made::default(),
    );
    let heal = index.observe(&id("a"), Some(&edited(15)), now).unwrap();
    assert_eq!(heal.delay, Duration::from_secs(2));
}

#[test]
fn an_apply_of_the_changes_holds_only_them_and_keeps_the_rest_registered() {
    let (mut index, _) = registered(&["a", "b"]);
    let made = Made {
        generation: Some(2),
        discovery: 7,
    };
    index.hold("shop/web", Holding::Only(BTreeSet::from([id("b")])));
    assert!(!index.in_sync("shop/web"));
    // "a" is not being written: drift on it is still healed meanwhile.
    assert!(
        index
            .observe(&id("a"), Some(&edited(12)), Instant::now())
            .is_some()
    );
    assert_eq!(
        index.observe(&id("b"), Some(&edited(12)), Instant::now()),
        None
    );

    let (d, r) = (desired("b"), returned("b", 20));
    index.register(
        "shop/web",
        [Applied {
            id: id("b"),
            api_version: "v1".into(),
            desired: &d,
            returned: &r,
        }],
        &BTreeSet::from([id("a")]),
        made,
    );
    assert_eq!(index.len(), 2, "the unchanged object stays under self-heal");
    let record = index.record("shop/web").unwrap();
    assert_eq!((record.generation, record.discovery), (Some(2), 7));
    assert_eq!(record.objects.len(), 2);
    // "a" has a heal pending: it is not as applied, so the next sync sends it.
    assert!(!record.objects[&id("a")].in_sync);
    assert!(record.objects[&id("b")].in_sync);
    assert_eq!(&*record.objects[&id("b")].manifest, d.to_string());
}

#[test]
fn there_is_no_record_before_a_registration_or_after_forgetting() {
    let mut index = Index::default();
    index.hold("shop/web", Holding::Everything);
    assert_eq!(index.record("shop/web"), None);
    let (mut index, _) = registered(&["a"]);
    assert!(index.record("shop/web").is_some());
    index.forget("shop/web");
    assert_eq!(index.record("shop/web"), None);
}

#[test]
fn a_heal_failed_during_an_apply_of_the_changes_is_still_on_record() {
    let (mut index, _) = registered(&["a", "b"]);
    index.hold("shop/web", Holding::Only(BTreeSet::from([id("b")])));
    index
        .observe(&id("a"), Some(&edited(12)), Instant::now())
        .unwrap();
    index.heal_failed(&id("a"));
    let (d, r) = (desired("b"), returned("b", 20));
    let b = || Applied {
        id: id("b"),
        api_version: "v1".into(),
        desired: &d,
        returned: &r,
    };
    index.register(
        "shop/web",
        [b()],
        &BTreeSet::from([id("a")]),
        Made::default(),
    );
    assert!(
        index.record("shop/web").unwrap().stale,
        "a was not re-applied"
    );
    // A full apply re-applies "a" too: the record is clean again.
    index.register("shop/web", [b()], &BTreeSet::new(), Made::default());
    assert!(!index.record("shop/web").unwrap().stale);
}
