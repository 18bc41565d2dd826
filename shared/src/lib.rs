//! What both Sluice daemons share: the project's fixed names, kustomize's file names, logging setup,
//! kubectl-compatible cluster access, the metrics/health HTTP endpoint,
//! shutdown signals, the process exit convention, which repository a git URL names
//! ([`repo_url`]), the git layer (fetch, commit, push with credentials, known_hosts and clear
//! errors), and the forge client (pull requests and commit statuses on Gitea, GitHub and GitLab).

pub mod daemon;
pub mod digest;
pub mod duration;
pub mod events;
pub mod exit;
pub mod failpoint;
pub mod forge;
pub mod git;
pub mod kubeconfig;
pub mod kustomize;
pub mod leader;
pub mod memory;
pub mod naming;
pub mod notify;
pub mod registry_auth;
pub mod repo_url;
pub mod serve;
pub mod shard;
pub mod sharding;
pub mod shutdown;
pub mod telemetry;
pub mod webhook;
