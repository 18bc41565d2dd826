//! Placement, ordering, ownership marks and refusals.

use serde_json::json;

use super::*;
use crate::object::MANAGED_LABEL;

#[test]
fn stages_put_foundations_first_and_order_by_kind_then_name() {
    let settings = Settings {
        allow_cluster_scoped: true,
        ..settings()
    };
    let render = vec![
        desired("apps/v1", "Deployment", None, "web"),
        desired("v1", "Service", None, "web"),
        desired(
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            None,
            "reader",
        ),
        desired("v1", "ConfigMap", None, "b"),
        desired("v1", "ConfigMap", None, "a"),
        crd("shop.example", "Cart", "Namespaced"),
        desired("shop.example/v1", "Cart", None, "main"),
        desired(
            "admissionregistration.k8s.io/v1",
            "ValidatingWebhookConfiguration",
            None,
            "carts",
        ),
        desired(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            None,
            "reader",
        ),
        desired("v1", "Namespace", None, "shop"),
        desired("v1", "ServiceAccount", None, "web"),
    ];
    let plan = run_with(render, &Inventory::new(), &[], &settings).unwrap();
    assert_eq!(plan.stages.len(), 2);
    assert_eq!(plan.stages[0].name, StageName::Foundations);
    assert_eq!(
        names(&plan.stages[0]),
        [
            "Namespace/shop",
            "CustomResourceDefinition/carts.shop.example",
            "ClusterRole/reader",
            "ClusterRoleBinding/reader"
        ]
    );
    assert_eq!(
        plan.stages[0].await_established,
        [id(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            "",
            "carts.shop.example"
        )]
    );
    assert_eq!(
        names(&plan.stages[1]),
        [
            "ServiceAccount/web",
            "ConfigMap/a",
            "ConfigMap/b",
            "Service/web",
            "Deployment/web",
            "Cart/main",
            "ValidatingWebhookConfiguration/carts"
        ]
    );
    assert!(plan.stages[1].await_established.is_empty());
}

#[test]
fn kind_rank_matches_group_too() {
    assert!(kind_rank("", "Namespace") < kind_rank("apps", "Deployment"));
    assert_eq!(
        kind_rank("serving.knative.dev", "Service"),
        kind_rank("example.com", "Widget")
    );
    assert!(kind_rank("", "Service") < kind_rank("serving.knative.dev", "Service"));
}

#[test]
fn namespaced_objects_get_the_default_namespace_and_the_ownership_marks() {
    let plan = run(
        vec![desired("apps/v1", "Deployment", None, "web")],
        &Inventory::new(),
        &[],
    )
    .unwrap();
    let apply = &plan.stages[0].objects[0];
    assert_eq!(apply.id, id("apps", "Deployment", "shop", "web"));
    assert_eq!(apply.object["metadata"]["namespace"], "shop");
    assert_eq!(apply.object["metadata"]["labels"][MANAGED_LABEL], "true");
    assert_eq!(
        apply.object["metadata"]["annotations"][OWNER_ANNOTATION],
        SYNC
    );
    assert_eq!(apply.source, "app/web.yaml:1");
}

#[test]
fn target_namespace_fills_only_objects_without_one() {
    let settings = Settings {
        target_namespace: Some("shop-prod".into()),
        allowed_namespaces: vec!["shared".into()],
        ..settings()
    };
    let render = vec![
        desired("v1", "ConfigMap", None, "a"),
        desired("v1", "ConfigMap", Some("shared"), "b"),
    ];
    let plan = run_with(render, &Inventory::new(), &[], &settings).unwrap();
    let ids: Vec<_> = plan
        .applies()
        .map(|apply| apply.id.namespace.as_str())
        .collect();
    assert_eq!(ids, ["shared", "shop-prod"]);
}

#[test]
fn cluster_scoped_objects_lose_a_stray_namespace() {
    let settings = Settings {
        allow_cluster_scoped: true,
        ..settings()
    };
    let render = vec![desired(
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        Some("shop"),
        "reader",
    )];
    let plan = run_with(render, &Inventory::new(), &[], &settings).unwrap();
    let apply = plan.applies().next().unwrap();
    assert!(apply.id.is_cluster_scoped());
    assert_eq!(apply.object["metadata"].get("namespace"), None);
}

#[test]
fn a_crd_in_the_render_makes_its_kind_known_with_its_scope() {
    let settings = Settings {
        allow_cluster_scoped: true,
        ..settings()
    };
    let render = vec![
        crd("shop.example", "Cart", "Namespaced"),
        crd("shop.example", "Region", "Cluster"),
        desired("shop.example/v1", "Cart", None, "main"),
        desired("shop.example/v1", "Region", Some("shop"), "eu"),
    ];
    let plan = run_with(render, &Inventory::new(), &[], &settings).unwrap();
    let ids: Vec<_> = plan.stages[1]
        .objects
        .iter()
        .map(|a| a.id.to_string())
        .collect();
    assert_eq!(
        ids,
        ["shop.example/Cart/shop/main", "shop.example/Region/_/eu"]
    );
}

#[test]
fn unknown_kinds_are_refused_naming_object_and_file() {
    let render = vec![desired("shop.example/v1", "Cart", None, "main")];
    let err = run(render, &Inventory::new(), &[]).unwrap_err();
    assert!(matches!(err.refusals(), [Refusal::UnknownKind { .. }]));
    let message = err.to_string();
    assert!(
        message.contains("shop.example/Cart/_/main (from app/main.yaml:1)"),
        "{message}"
    );
    assert!(message.contains("CustomResourceDefinition"), "{message}");
}

#[test]
fn every_refusal_is_reported_at_once() {
    let render = vec![
        desired("v1", "ConfigMap", Some("kube-system"), "evil"),
        desired("rbac.authorization.k8s.io/v1", "ClusterRole", None, "admin"),
        desired("shop.example/v1", "Cart", None, "main"),
        desired("v1", "Secret", None, "db"),
        desired("v1", "ConfigMap", None, "dup"),
        desired("v1", "ConfigMap", Some("shop"), "dup"),
    ];
    let live = [(
        id("", "Secret", "shop", "db"),
        LiveFacts {
            owner: Some("billing/api".into()),
            prune_disabled: false,
        },
    )];
    let err = run(render, &Inventory::new(), &live).unwrap_err();
    let refusals = err.refusals();
    assert_eq!(refusals.len(), 5, "{err}");
    assert!(
        matches!(&refusals[0], Refusal::NamespaceNotAllowed { namespace, allowed, .. }
        if namespace == "kube-system" && allowed == &["shop"])
    );
    assert!(matches!(
        &refusals[1],
        Refusal::ClusterScopedNotAllowed { .. }
    ));
    assert!(matches!(&refusals[2], Refusal::UnknownKind { .. }));
    assert!(
        matches!(&refusals[3], Refusal::Duplicate { first, second, .. }
        if first == "app/dup.yaml:1" && second == "app/dup.yaml:1")
    );
    assert!(matches!(&refusals[4], Refusal::OwnedByOther { owner, .. } if owner == "billing/api"));
    let message = err.to_string();
    assert!(
        message.starts_with("GitSync shop/web refused to apply the render: 1) "),
        "{message}"
    );
    assert!(message.contains("5) core/Secret/shop/db (from app/db.yaml:1) belongs to GitSync billing/api, not to shop/web"), "{message}");
}

#[test]
fn allowed_namespaces_star_and_namespace_objects() {
    let settings = Settings {
        allowed_namespaces: vec!["*".into()],
        ..settings()
    };
    let render = vec![
        desired("v1", "ConfigMap", Some("anywhere"), "a"),
        desired("v1", "Namespace", None, "anywhere"),
    ];
    assert!(run_with(render, &Inventory::new(), &[], &settings).is_ok());

    // Creating the namespace it writes to is not "cluster-scoped" for a sync; another one is.
    let render = vec![
        desired("v1", "Namespace", None, "shop"),
        desired("v1", "Namespace", None, "other"),
    ];
    let err = run(render, &Inventory::new(), &[]).unwrap_err();
    assert!(
        matches!(err.refusals(), [Refusal::ClusterScopedNotAllowed { id, .. }] if id.name == "other")
    );
}

#[test]
fn unowned_live_objects_are_adopted_and_own_ones_are_not_conflicts() {
    let render = vec![
        desired("v1", "ConfigMap", None, "a"),
        desired("v1", "ConfigMap", None, "b"),
    ];
    let live = [
        (id("", "ConfigMap", "shop", "a"), LiveFacts::default()),
        (id("", "ConfigMap", "shop", "b"), ours()),
    ];
    let plan = run(render, &Inventory::new(), &live).unwrap();
    assert_eq!(plan.adopted, [id("", "ConfigMap", "shop", "a")]);
}

#[test]
fn two_step_planning_names_the_objects_to_look_up() {
    let prepared = prepare(
        vec![desired("v1", "ConfigMap", None, "a")],
        &builtin_scope,
        &settings(),
    );
    assert_eq!(
        prepared.ids().cloned().collect::<Vec<_>>(),
        [id("", "ConfigMap", "shop", "a")]
    );
    assert!(prepared.plan(&Inventory::new(), &BTreeMap::new()).is_ok());
}

#[test]
fn live_facts_read_the_marks() {
    let live = json!({"metadata": {"annotations": {OWNER_ANNOTATION: SYNC, PRUNE_ANNOTATION: PRUNE_DISABLED}}});
    assert_eq!(
        LiveFacts::of(&live),
        LiveFacts {
            owner: Some(SYNC.into()),
            prune_disabled: true
        }
    );
    assert_eq!(
        LiveFacts::of(&json!({"metadata": {}})),
        LiveFacts::default()
    );
}

#[test]
fn settings_follow_the_gitsync_spec() {
    let spec: GitSyncSpec = serde_json::from_value(json!({
        "source": {"url": "https://git.example/config.git"},
        "targetNamespace": "shop-prod", "allowedNamespaces": ["shared"], "allowClusterScoped": true
    }))
    .unwrap();
    let settings = Settings::from_spec("shop", "web", &spec);
    assert_eq!(settings.owner(), SYNC);
    assert_eq!(settings.default_namespace(), "shop-prod");
    assert!(settings.prune && !settings.allow_empty && settings.allow_cluster_scoped);
    assert!(settings.may_write("shared") && !settings.may_write("shop"));
}

#[test]
fn a_secrets_string_data_is_applied_as_data() {
    let mut secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "payments"},
        "data": {"region": "ZXU=", "api-key": "b2xk"},
        "stringData": {"api-key": "sk-live-1", "retries": 3}
    });
    super::super::admit::fold_string_data(&mut secret);
    assert_eq!(
        secret,
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "payments"},
            "data": {"region": "ZXU=", "api-key": "c2stbGl2ZS0x", "retries": "Mw=="}
        })
    );
}

fn hook(name: &str, hooks: &str) -> Desired {
    let mut object = manifest("batch/v1", "Job", None, name);
    object["metadata"]["annotations"] = json!({"helm.sh/hook": hooks});
    Desired::new(object, format!("shop/templates/{name}.yaml:1")).unwrap()
}

#[test]
fn helm_hooks_leave_the_stages_and_the_inventory_and_are_never_pruned() {
    let web = desired("apps/v1", "Deployment", None, "web");
    let migrate = hook("migrate", "pre-install,pre-upgrade");
    let announce = hook("announce", "post-upgrade");
    let smoke = hook("smoke", "test");
    // The migration was an ordinary object of an earlier render, so it is in the inventory.
    let migrate_id = id("batch", "Job", "shop", "migrate");
    let previous = inventory(&[(migrate_id.clone(), "batch/v1")]);
    let plan = run(
        vec![web, migrate, announce, smoke],
        &previous,
        &[(migrate_id.clone(), ours())],
    )
    .unwrap();
    let applied: Vec<String> = plan.applies().map(|a| a.id.name.clone()).collect();
    assert_eq!(applied, ["web"]);
    let pre: Vec<&str> = plan
        .hooks
        .pre
        .iter()
        .map(|h| h.apply.id.name.as_str())
        .collect();
    let post: Vec<&str> = plan
        .hooks
        .post
        .iter()
        .map(|h| h.apply.id.name.as_str())
        .collect();
    assert_eq!(
        (pre.as_slice(), post.as_slice()),
        (["migrate"].as_slice(), ["announce"].as_slice())
    );
    assert_eq!(
        plan.hooks.pre[0].apply.id.namespace, "shop",
        "placed like any object"
    );
    assert!(plan.prune.is_empty(), "{:?}", plan.prune);
    assert_eq!(plan.next_inventory().len(), 1);
    assert!(
        plan.only(&BTreeSet::new()).hooks == plan.hooks,
        "a change set keeps the hooks"
    );
}
