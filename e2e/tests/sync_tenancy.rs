//! Multi-tenancy lockdown, as a platform team runs it: the synchronizer is started with
//! `--default-service-account tenant --no-cross-namespace-refs`, and team A writes its own
//! GitSyncs. What team A may write is what its `tenant` ServiceAccount may: a GitSync that tries
//! to create a ClusterRole is refused by the dry-run (as that account) before any write, and one
//! that names team B's namespace is refused before its source is even fetched. Within its own
//! namespace the same tenant is applied as usual.

mod sync_support;

use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::Api;
use serde_json::json;
use sluice_e2e::{TestNamespace, World, unique_name};
use sync_support::*;

use deploy_synchronizer::tenancy::Lockdown;

/// Team A's settings, and (in `escalate/`) a ClusterRole it has no business creating.
fn files(cluster_role: &str) -> Vec<(String, String)> {
    vec![
        (
            "own/settings.yaml".into(),
            "# Team A's own settings.\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata: {owner: team-a}\n".into(),
        ),
        (
            "escalate/settings.yaml".into(),
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: escalate-settings}\ndata: {owner: team-a}\n".into(),
        ),
        (
            "escalate/cluster-role.yaml".into(),
            format!(
                "# Read every Secret of the cluster: what a tenant must not grant itself.\n\
                 apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: {cluster_role}\n\
                 rules:\n  - apiGroups: ['']\n    resources: [secrets]\n    verbs: [get, list]\n"
            ),
        ),
        (
            "reach/settings.yaml".into(),
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: planted}\ndata: {owner: team-a}\n".into(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_writes_only_what_its_service_account_may_and_only_in_its_namespace() {
    let world = World::get();
    let client = world.kube_client().await;
    install_crd(&client).await;
    let team_a = TestNamespace::create(&client, "tenant-a").await;
    let team_b = TestNamespace::create(&client, "tenant-b").await;
    // The platform team's default account for team A: may manage ConfigMaps in team A, only.
    let sa: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "tenant"}})).unwrap();
    team_a
        .api::<ServiceAccount>()
        .create(&Default::default(), &sa)
        .await
        .unwrap();
    team_a
        .grant(
            "tenant",
            "tenant-configmaps",
            json!([{"apiGroups": [""], "resources": ["configmaps"],
                    "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"]}]),
        )
        .await;

    let cluster_role = unique_name("tenant-escalation");
    let files = files(&cluster_role);
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let repo = unique_name("tenant");
    let tree = tree(&refs);
    let seed = world.git_seed(&repo, Some(tree.path())).await.unwrap();
    git_secret(&team_a, world, "git").await;
    let url = world.git_http_url(&repo);
    let spec = |path: &str, extra: serde_json::Value| {
        let mut spec = json!({
            "source": {"url": url, "ref": {"branch": "main"}, "path": path, "interval": "2s",
                       "secretRef": {"name": "git"}},
            "healthTimeout": "2m",
        });
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        spec
    };
    create_git_sync_spec(&team_a, "own", spec("own", json!({}))).await;
    // The tenant allows itself cluster-scoped objects: its spec may, its account may not.
    create_git_sync_spec(
        &team_a,
        "escalate",
        spec("escalate", json!({"allowClusterScoped": true})),
    )
    .await;
    // The tenant points a sync at team B's namespace.
    let reach = json!({"targetNamespace": team_b.name(), "allowedNamespaces": [team_b.name()]});
    create_git_sync_spec(&team_a, "reach", spec("reach", reach)).await;

    let lockdown = Lockdown {
        default_service_account: Some("tenant".into()),
        no_cross_namespace_refs: true,
    };
    let synchronizer = Synchronizer::start_locked_down(world, team_a.name(), lockdown).await;

    // Its own namespace: applied, as the tenant account.
    wait_status(&team_a, "own", "team A's own sync to apply", |s| {
        s.applied(&seed)
    })
    .await;
    let settings = team_a.api::<ConfigMap>().get("settings").await.unwrap();
    assert_eq!(settings.data.unwrap()["owner"], "team-a");

    // A ClusterRole: the dry-run, made as the tenant account, refuses; nothing is written.
    let refused = wait_status(&team_a, "escalate", "the ClusterRole to be refused", |s| {
        s.is("Ready=False ValidationFailed")
    })
    .await;
    let message = refused.message("Ready");
    let who = format!("system:serviceaccount:{}:tenant", team_a.name());
    assert!(message.contains(&who), "names the account: {message}");
    assert!(
        message.contains(&cluster_role),
        "names the object: {message}"
    );
    assert!(message.contains("nothing was written"), "{message}");
    let cluster_roles: Api<ClusterRole> = Api::all(client.clone());
    assert!(
        cluster_roles
            .get_opt(&cluster_role)
            .await
            .unwrap()
            .is_none()
    );
    let api = team_a.api::<ConfigMap>();
    assert!(api.get_opt("escalate-settings").await.unwrap().is_none());

    // Another tenant's namespace: refused before the fetch, naming each field.
    let denied = wait_status(
        &team_a,
        "reach",
        "the cross-namespace sync to be refused",
        |s| s.is("Ready=False AccessDenied"),
    )
    .await;
    let message = denied.message("Ready");
    assert!(message.contains("--no-cross-namespace-refs"), "{message}");
    let target = format!("spec.targetNamespace: {}", team_b.name());
    assert!(message.contains(&target), "{message}");
    assert!(message.contains("spec.allowedNamespaces[0]"), "{message}");
    assert!(denied.is("Stalled=True AccessDenied"), "{denied:?}");
    assert_eq!(denied.last_attempted_revision, None, "not even fetched");
    assert!(
        team_b
            .api::<ConfigMap>()
            .get_opt("planted")
            .await
            .unwrap()
            .is_none()
    );

    synchronizer.stop().await;
}
