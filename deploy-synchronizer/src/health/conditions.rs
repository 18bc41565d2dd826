//! Condition-based rules — custom resources, CRDs, APIServices — and the simple core kinds whose
//! health is one field: PersistentVolumeClaims and Services.

use serde_json::Value;

use super::{Health, int, text, unobserved};

/// One entry of `status.conditions`, with absent fields empty.
pub(super) struct Condition<'a> {
    pub status: &'a str,
    pub reason: &'a str,
    pub message: &'a str,
}

impl Condition<'_> {
    pub fn is_true(&self) -> bool {
        self.status == "True"
    }

    /// `reason: message`, or whichever of the two is set.
    pub fn explain(&self) -> String {
        match (self.reason, self.message) {
            ("", message) => message.to_owned(),
            (reason, "") => reason.to_owned(),
            (reason, message) => format!("{reason}: {message}"),
        }
    }
}

/// The condition of type `kind` in `status.conditions`.
pub(super) fn condition<'a>(object: &'a Value, kind: &str) -> Option<Condition<'a>> {
    let conditions = object.get("status")?.get("conditions")?.as_array()?;
    let found = conditions
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))?;
    let field = |name: &str| found.get(name).and_then(Value::as_str).unwrap_or("");
    Some(Condition {
        status: field("status"),
        reason: field("reason"),
        message: field("message"),
    })
}

/// The kstatus conventions every controller may follow, then the `Ready` condition:
/// - `status.observedGeneration` behind `metadata.generation` (when reported) → Progressing;
/// - `Stalled=True` → Degraded, `Reconciling=True` → Progressing;
/// - `Ready`: True → Healthy, False → Degraded with its reason, Unknown → Progressing;
/// - no `Ready` condition: Healthy — the object exists, and nothing says otherwise.
pub(super) fn generic(object: &Value) -> Health {
    if int(object, &["status", "observedGeneration"]).is_some()
        && let Some(health) = unobserved(object)
    {
        return health;
    }
    if let Some(stalled) = condition(object, "Stalled").filter(Condition::is_true) {
        return Health::degraded(stalled.explain());
    }
    if let Some(reconciling) = condition(object, "Reconciling").filter(Condition::is_true) {
        return Health::progressing(reconciling.explain());
    }
    match condition(object, "Ready") {
        None => Health::healthy(""),
        Some(ready) => match ready.status {
            "True" => Health::healthy(ready.message),
            "False" => Health::degraded(ready.explain()),
            "Unknown" => Health::progressing(ready.explain()),
            other => Health::unknown(format!("Ready condition has status {other:?}")),
        },
    }
}

/// Established → Healthy; names rejected (`NamesAccepted=False`) → Degraded; else Progressing.
/// The applier waits on exactly this before it applies the CRD's custom resources.
pub(super) fn custom_resource_definition(crd: &Value) -> Health {
    if let Some(names) = condition(crd, "NamesAccepted").filter(|c| c.status == "False") {
        return Health::degraded(names.explain());
    }
    match condition(crd, "Established") {
        Some(established) if established.is_true() => Health::healthy(""),
        Some(established) => {
            Health::progressing(format!("not established: {}", established.explain()))
        }
        None => Health::progressing("not established yet"),
    }
}

/// `Available=True` → Healthy, else Progressing: an aggregated API is unavailable until its
/// backend Deployment is up, which the backend's own health reports if it never comes.
pub(super) fn api_service(service: &Value) -> Health {
    match condition(service, "Available") {
        Some(available) if available.is_true() => Health::healthy(""),
        Some(available) => Health::progressing(available.explain()),
        None => Health::progressing("availability not reported yet"),
    }
}

/// Bound → Healthy, Lost → Degraded, anything else (Pending) → Progressing. A claim of a
/// `WaitForFirstConsumer` class stays Pending until a pod uses it; that is still Progressing.
pub(super) fn persistent_volume_claim(claim: &Value) -> Health {
    match text(claim, &["status", "phase"]) {
        Some("Bound") => Health::healthy(""),
        Some("Lost") => Health::degraded("the claim lost its PersistentVolume"),
        Some(phase) => Health::progressing(format!("{phase}: waiting to be bound")),
        None => Health::progressing("waiting to be bound"),
    }
}

/// A LoadBalancer Service is Healthy once it has an ingress address; every other Service is
/// Healthy when it exists.
pub(super) fn service(service: &Value) -> Health {
    if text(service, &["spec", "type"]) != Some("LoadBalancer") {
        return Health::healthy("");
    }
    let ingress = service
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let address = ingress
        .iter()
        .find_map(|entry| entry.get("ip").or_else(|| entry.get("hostname"))?.as_str());
    match address {
        Some(address) => Health::healthy(format!("load balancer at {address}")),
        None if !ingress.is_empty() => Health::healthy("load balancer ready"),
        None => Health::progressing("waiting for a load balancer address"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::{HealthStatus, assess};
    use super::*;

    fn custom(conditions: Value) -> Value {
        json!({"apiVersion": "shop.example/v1", "kind": "Cart",
               "metadata": {"name": "main", "namespace": "shop", "generation": 3},
               "status": {"conditions": conditions}})
    }

    #[test]
    fn ready_condition_decides_for_custom_resources() {
        let ready = |status: &str| {
            custom(json!([{"type": "Ready", "status": status,
            "reason": "CheckoutUnreachable", "message": "dial tcp 10.0.0.9:443: connection refused"}]))
        };
        assert_eq!(assess(&ready("True")).status, HealthStatus::Healthy);
        assert_eq!(
            assess(&ready("False")),
            Health::degraded("CheckoutUnreachable: dial tcp 10.0.0.9:443: connection refused")
        );
        assert_eq!(assess(&ready("Unknown")).status, HealthStatus::Progressing);
        assert_eq!(assess(&custom(json!([]))), Health::healthy(""));
        assert_eq!(
            assess(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}})),
            Health::healthy("")
        );
    }

    #[test]
    fn kstatus_conventions_come_first() {
        let mut cart = custom(json!([{"type": "Ready", "status": "True"}]));
        cart["status"]["observedGeneration"] = 2.into();
        assert_eq!(
            assess(&cart),
            Health::progressing("waiting for the controller to observe generation 3")
        );

        let reconciling = custom(json!([
            {"type": "Ready", "status": "False", "reason": "Progressing"},
            {"type": "Reconciling", "status": "True", "reason": "Progressing", "message": "applying revision 2"}]));
        assert_eq!(
            assess(&reconciling),
            Health::progressing("Progressing: applying revision 2")
        );

        let stalled =
            custom(json!([{"type": "Stalled", "status": "True", "reason": "InvalidSpec"}]));
        assert_eq!(assess(&stalled), Health::degraded("InvalidSpec"));
    }

    #[test]
    fn crds_are_healthy_once_established() {
        let crd = |conditions: Value| {
            json!({"apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition", "metadata": {"name": "carts.shop.example"},
            "status": {"conditions": conditions}})
        };
        assert_eq!(assess(&crd(json!([]))).status, HealthStatus::Progressing);
        let established = crd(json!([
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}]));
        assert_eq!(assess(&established).status, HealthStatus::Healthy);
        let conflict = crd(
            json!([{"type": "NamesAccepted", "status": "False", "reason": "ListKindConflict",
            "message": "\"CartList\" is already in use"}]),
        );
        assert_eq!(assess(&conflict).status, HealthStatus::Degraded);
    }

    #[test]
    fn api_service_waits_for_availability() {
        let service = json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": "v1beta1.metrics.k8s.io"}, "status": {"conditions": [
                {"type": "Available", "status": "False", "reason": "MissingEndpoints",
                 "message": "endpoints for service/metrics-server in \"kube-system\" have no addresses"}]}});
        assert_eq!(assess(&service).status, HealthStatus::Progressing);
    }

    #[test]
    fn claims_are_healthy_when_bound() {
        let claim = |phase: &str| {
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data-db-0", "namespace": "shop"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": phase}})
        };
        assert_eq!(assess(&claim("Bound")).status, HealthStatus::Healthy);
        assert_eq!(
            assess(&claim("Pending")),
            Health::progressing("Pending: waiting to be bound")
        );
        assert_eq!(assess(&claim("Lost")).status, HealthStatus::Degraded);
    }

    #[test]
    fn load_balancers_need_an_address() {
        let mut lb = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}, "status": {"loadBalancer": {}}});
        assert_eq!(
            assess(&lb),
            Health::progressing("waiting for a load balancer address")
        );
        lb["status"]["loadBalancer"]["ingress"] = json!([{"ip": "192.0.2.10", "ipMode": "VIP"}]);
        assert_eq!(assess(&lb), Health::healthy("load balancer at 192.0.2.10"));
        let cluster_ip = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"type": "ClusterIP"}, "status": {"loadBalancer": {}}});
        assert_eq!(assess(&cluster_ip).status, HealthStatus::Healthy);
    }
}
