//! `sluice_registry_requests_total{registry, outcome}`: every request a scan sends, retries
//! included, by how it ended.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::ScanError;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The normalized registry name (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// `ok` or the error reason in snake case (`unauthorized`, `rate_limited`, …).
    pub outcome: String,
}

/// The scanner's metrics; cheap to clone (they share the counters).
#[derive(Clone, Debug, Default)]
pub struct ScanMetrics {
    requests: Family<RequestLabels, Counter>,
}

impl ScanMetrics {
    /// Registers in `registry`, whose `sluice` prefix makes the name `sluice_registry_requests_total`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = ScanMetrics::default();
        registry.register(
            "registry_requests",
            "Requests sent to container registries, by registry and outcome",
            metrics.requests.clone(),
        );
        metrics
    }

    /// Counts one request with an `outcome` label (see `outcome`; also `auth_challenge`).
    pub fn observe_outcome(&self, registry: &str, outcome: &str) {
        self.requests
            .get_or_create(&RequestLabels {
                registry: registry.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn observe(&self, registry: &str, result: Result<(), &ScanError>) {
        self.requests
            .get_or_create(&RequestLabels {
                registry: registry.to_owned(),
                outcome: outcome(result).to_owned(),
            })
            .inc();
    }

    /// The count so far for one label pair (for tests and status).
    pub fn count(&self, registry: &str, outcome: &str) -> u64 {
        self.requests
            .get_or_create(&RequestLabels {
                registry: registry.to_owned(),
                outcome: outcome.to_owned(),
            })
            .get()
    }
}

/// The `outcome` label of a request's result.
pub fn outcome(result: Result<(), &ScanError>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(ScanError::Unauthorized { .. }) => "unauthorized",
        Err(ScanError::NotFound { .. }) => "not_found",
        Err(ScanError::RateLimited { .. }) => "rate_limited",
        Err(ScanError::Server { .. }) => "server_error",
        Err(ScanError::Rejected { .. }) => "rejected",
        Err(ScanError::Unreachable { .. }) => "unreachable",
        Err(ScanError::Tls { .. }) => "tls_error",
        Err(ScanError::Malformed { .. }) => "malformed",
        Err(_) => "other",
    }
}
