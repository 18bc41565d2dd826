//! Installing Sluice into a cluster, as the README says: `kubectl apply --server-side -k
//! manifests/` on the world. The namespace enforces the `restricted` Pod Security level, so the
//! daemons' pods are admitted only with the security context the manifests promise (non-root,
//! read-only root filesystem, no privilege escalation, every capability dropped, seccomp
//! RuntimeDefault); kwok then runs them and both Deployments become Available.
//!
//! What each ServiceAccount may do is asked of the API server itself (`kubectl auth can-i --as`):
//! the Config Updater reads its resources and the Secrets they name, writes only their status and
//! events, and can write no workload; the synchronizer may write any kind, as Flux's
//! kustomize-controller may, and impersonate ServiceAccounts to narrow a GitSync.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use sluice_e2e::installed::{NAMESPACE, apply_manifests};
use sluice_e2e::{World, wait_until};

const UPDATER: &str = "system:serviceaccount:sluice-system:config-updater";
const SYNCHRONIZER: &str = "system:serviceaccount:sluice-system:deploy-synchronizer";

fn kubectl(args: &[&str]) -> std::process::Output {
    sluice_e2e::installed::kubectl(World::get(), args)
}

/// Whether `user` may `verb` `resource` (`deployments.apps`, `gitsyncs.sluice.dev/status`) in
/// namespace `shop`, as the API server's authorizer answers.
fn can(user: &str, verb: &str, resource: &str) -> bool {
    can_in("shop", user, verb, resource)
}

/// Whether `user` may `verb` `resource` in `namespace`.
fn can_in(namespace: &str, user: &str, verb: &str, resource: &str) -> bool {
    let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
    let mut args = vec![
        "auth", "can-i", verb, resource, "--as", user, "-n", namespace,
    ];
    let flag = format!("--subresource={subresource}");
    if !subresource.is_empty() {
        args.push(&flag);
    }
    let out = kubectl(&args);
    let answer = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        answer == "yes" || answer == "no",
        "kubectl auth can-i {verb} {resource}: {answer} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    answer == "yes"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manifests_install_both_daemons_with_only_the_rights_they_need() {
    let world = World::get();
    let out = apply_manifests(world);
    let applied = String::from_utf8_lossy(&out.stdout);
    for object in [
        "namespace/sluice-system",
        "customresourcedefinition.apiextensions.k8s.io/gitsyncs.sluice.dev",
        "deployment.apps/deploy-synchronizer",
        "deployment.apps/config-updater",
        "networkpolicy.networking.k8s.io/sluice",
    ] {
        assert!(applied.contains(object), "{object} not in:\n{applied}");
    }

    // The namespace enforces `restricted`: a pod without the security context is refused...
    let refused = kubectl(&[
        "run",
        "no-security-context",
        "--image=busybox",
        "-n",
        NAMESPACE,
        "--dry-run=server",
    ]);
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && why.contains("violates PodSecurity \"restricted"),
        "{why}"
    );
    // ...and both Deployments become Available: their pods were admitted and run.
    let deployments: Api<Deployment> = Api::namespaced(world.kube_client().await, NAMESPACE);
    for name in ["deploy-synchronizer", "config-updater"] {
        wait_until(
            &format!("Deployment {name} Available"),
            Duration::from_secs(120),
            || async {
                let deployment = deployments.get(name).await.map_err(|e| e.to_string())?;
                let conditions = deployment
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default();
                let available = conditions.iter().any(|c| {
                    c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True")
                });
                if available {
                    Ok(())
                } else {
                    Err(format!("conditions: {conditions:?}"))
                }
            },
        )
        .await;
    }

    // The Config Updater: its resources, their status, the Secrets they name, events; nothing
    // else.
    for (verb, resource) in [
        ("watch", "imageupdates.sluice.dev"),
        ("patch", "imagepolicies.sluice.dev/status"),
        ("get", "secrets"),
        ("create", "events.events.k8s.io"),
    ] {
        assert!(
            can(UPDATER, verb, resource),
            "the updater may {verb} {resource}"
        );
    }
    for (verb, resource) in [
        ("create", "deployments.apps"),
        ("patch", "deployments.apps"),
        ("delete", "configmaps"),
        ("create", "secrets"),
        ("patch", "imagepolicies.sluice.dev"),
        ("patch", "gitsyncs.sluice.dev"),
        ("create", "clusterroles.rbac.authorization.k8s.io"),
        ("impersonate", "serviceaccounts"),
    ] {
        assert!(
            !can(UPDATER, verb, resource),
            "the updater may not {verb} {resource}"
        );
    }
    // The synchronizer: whatever Git holds, and impersonation to narrow a GitSync's writes.
    for (verb, resource) in [
        ("create", "deployments.apps"),
        ("delete", "configmaps"),
        ("patch", "gitsyncs.sluice.dev/status"),
        ("impersonate", "serviceaccounts"),
    ] {
        assert!(
            can(SYNCHRONIZER, verb, resource),
            "the synchronizer may {verb} {resource}"
        );
    }
    // Leader election: each daemon may hold its Lease in sluice-system; the updater nowhere else.
    for user in [UPDATER, SYNCHRONIZER] {
        assert!(can_in(
            NAMESPACE,
            user,
            "update",
            "leases.coordination.k8s.io"
        ));
        assert!(can_in(
            NAMESPACE,
            user,
            "watch",
            "leases.coordination.k8s.io"
        ));
    }
    assert!(!can(UPDATER, "update", "leases.coordination.k8s.io"));
    // The updater cannot become another account by minting its token.
    assert!(!can(UPDATER, "create", "serviceaccounts/token"));
}
