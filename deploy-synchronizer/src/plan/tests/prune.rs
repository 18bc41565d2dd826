//! Prune selection, the empty-render guard and the inventory.

use serde_json::json;

use super::*;

#[test]
fn empty_render_with_inventory_is_refused_unless_allowed() {
    let cm = id("", "ConfigMap", "shop", "a");
    let previous = inventory(&[(cm.clone(), "v1")]);
    let err = run(vec![], &previous, &[(cm.clone(), ours())]).unwrap_err();
    assert!(matches!(
        err.refusals(),
        [Refusal::EmptyRender { inventory: 1, .. }]
    ));
    assert!(
        err.to_string()
            .contains("set `spec.allowEmpty: true` on GitSync shop/web"),
        "{err}"
    );

    let settings = Settings {
        allow_empty: true,
        ..settings()
    };
    let plan = run_with(vec![], &previous, &[(cm.clone(), ours())], &settings).unwrap();
    assert_eq!(
        plan.prune,
        [Deletion {
            id: cm,
            api_version: "v1".into()
        }]
    );
    assert!(plan.next_inventory().is_empty());

    // A first sync of an empty render has nothing to lose.
    assert!(run(vec![], &Inventory::new(), &[]).is_ok());
}

#[test]
fn prune_selects_owned_leftovers_in_reverse_kind_order() {
    let settings = Settings {
        allowed_namespaces: vec!["canary".into()],
        ..settings()
    };
    let ns = id("", "Namespace", "", "canary");
    let deploy = id("apps", "Deployment", "canary", "old");
    let cm = id("", "ConfigMap", "shop", "old");
    let cart = id("shop.example", "Cart", "canary", "main");
    let kept_cm = id("", "ConfigMap", "shop", "web");
    let previous = inventory(&[
        (ns.clone(), "v1"),
        (deploy.clone(), "apps/v1"),
        (cm.clone(), "v1"),
        (cart.clone(), "shop.example/v1beta1"),
        (kept_cm.clone(), "v1"),
    ]);
    let live = [
        (ns.clone(), ours()),
        (deploy.clone(), ours()),
        (cm.clone(), ours()),
        (cart.clone(), ours()),
        (kept_cm.clone(), ours()),
    ];
    let plan = run_with(
        vec![desired("v1", "ConfigMap", None, "web")],
        &previous,
        &live,
        &settings,
    )
    .unwrap();
    let pruned: Vec<_> = plan
        .prune
        .iter()
        .map(|d| (d.id.clone(), d.api_version.as_str()))
        .collect();
    assert_eq!(
        pruned,
        [
            (cart, "shop.example/v1beta1"),
            (deploy, "apps/v1"),
            (cm, "v1"),
            (ns, "v1")
        ]
    );
    assert!(plan.kept.is_empty() && plan.gone.is_empty());
}

#[test]
fn prune_keeps_what_is_not_provably_ours() {
    let disabled = id("", "ConfigMap", "shop", "disabled");
    let foreign = id("", "ConfigMap", "shop", "foreign");
    let unmarked = id("", "ConfigMap", "shop", "unmarked");
    let gone = id("", "ConfigMap", "shop", "gone");
    let moved = id("", "ConfigMap", "elsewhere", "moved");
    let previous = inventory(&[
        (disabled.clone(), "v1"),
        (foreign.clone(), "v1"),
        (unmarked.clone(), "v1"),
        (gone.clone(), "v1"),
        (moved.clone(), "v1"),
    ]);
    let live = [
        (
            disabled.clone(),
            LiveFacts {
                prune_disabled: true,
                ..ours()
            },
        ),
        (
            foreign.clone(),
            LiveFacts {
                owner: Some("billing/api".into()),
                prune_disabled: false,
            },
        ),
        (unmarked.clone(), LiveFacts::default()),
        (moved.clone(), ours()),
    ];
    let plan = run(
        vec![desired("v1", "ConfigMap", None, "web")],
        &previous,
        &live,
    )
    .unwrap();
    assert!(plan.prune.is_empty(), "{:?}", plan.prune);
    assert_eq!(plan.gone, [gone]);
    let kept: Vec<_> = plan
        .kept
        .iter()
        .map(|k| (k.id.name.as_str(), k.reason.to_string()))
        .collect();
    assert_eq!(
        kept,
        [
            (
                "moved",
                "kept: outside the namespaces this sync may write".to_owned()
            ),
            ("disabled", "kept: prune disabled".to_owned()),
            ("foreign", "kept: owned by GitSync billing/api".to_owned()),
            (
                "unmarked",
                "kept: has no Sluice owner annotation".to_owned()
            ),
        ]
    );
    // Handed-over objects leave the inventory; the one out of reach stays to be pruned later.
    let next: Vec<_> = plan
        .next_inventory()
        .ids()
        .map(|id| id.name.clone())
        .collect();
    assert_eq!(next, ["moved", "web"]);
}

#[test]
fn pruning_off_deletes_nothing_but_remembers() {
    let old = id("", "ConfigMap", "shop", "old");
    let previous = inventory(&[(old.clone(), "v1")]);
    let settings = Settings {
        prune: false,
        ..settings()
    };
    let plan = run_with(
        vec![desired("v1", "ConfigMap", None, "web")],
        &previous,
        &[(old.clone(), ours())],
        &settings,
    )
    .unwrap();
    assert!(plan.prune.is_empty());
    assert_eq!(plan.kept[0].reason, KeepReason::PruningOff);
    assert!(plan.next_inventory().contains(&old));
}

#[test]
fn a_version_change_is_not_a_prune() {
    let hpa = id("autoscaling", "HorizontalPodAutoscaler", "shop", "web");
    let previous = inventory(&[(hpa.clone(), "autoscaling/v1")]);
    let plan = run(
        vec![desired(
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
            None,
            "web",
        )],
        &previous,
        &[(hpa.clone(), ours())],
    )
    .unwrap();
    assert!(plan.prune.is_empty() && plan.kept.is_empty());
    assert_eq!(
        plan.next_inventory().api_version(&hpa).as_deref(),
        Some("autoscaling/v2")
    );
}

#[test]
fn inventory_round_trips_as_status_entries() {
    let previous = inventory(&[
        (id("apps", "Deployment", "shop", "web"), "apps/v1"),
        (id("", "Namespace", "", "shop"), "v1"),
    ]);
    let json = serde_json::to_value(&previous).unwrap();
    assert_eq!(
        json,
        json!([
            {"kind": "Namespace", "name": "shop", "version": "v1"},
            {"group": "apps", "kind": "Deployment", "namespace": "shop", "name": "web", "version": "v1"},
        ])
    );
    assert_eq!(serde_json::from_value::<Inventory>(json).unwrap(), previous);
}

#[test]
fn the_namespace_holding_the_sync_is_never_pruned() {
    let own = id("", "Namespace", "", "shop");
    let previous = inventory(&[(own.clone(), "v1")]);
    let plan = run(
        vec![desired("v1", "ConfigMap", None, "web")],
        &previous,
        &[(own.clone(), ours())],
    )
    .unwrap();
    assert!(plan.prune.is_empty());
    assert_eq!(
        plan.kept[0].reason.to_string(),
        "kept: it holds this GitSync"
    );
    assert!(!plan.next_inventory().contains(&own));
}
