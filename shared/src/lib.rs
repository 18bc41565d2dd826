//! What both Sluice daemons share: the project's fixed names, logging setup,
//! kubectl-compatible cluster access, the metrics/health HTTP endpoint,
//! shutdown signals and the process exit convention.

pub mod exit;
pub mod kubeconfig;
pub mod naming;
pub mod serve;
pub mod shutdown;
pub mod telemetry;
