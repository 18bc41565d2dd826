//! The Deploy Synchronizer's pure core: it renders the config repository into objects, plans what
//! to apply and prune against the live cluster, diffs and assesses health. The daemon (`main.rs`)
//! executes those plans against the Kubernetes API.

pub mod apply;
pub mod assess;
pub mod controller;
pub mod diff;
pub mod diffcmd;
pub mod drift;
pub mod heal;
pub mod health;
pub mod listing;
pub mod object;
pub mod plan;
pub mod reconcile;
pub mod render;
pub mod resource;
pub mod rollback;
pub mod source;
pub mod status;
pub mod webhook;
