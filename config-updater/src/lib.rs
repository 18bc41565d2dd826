//! The Config Updater: it decides which tag each image policy allows, where the config
//! repository names those images and exactly which bytes change (the pure core), and acts on
//! those decisions against registries, git and the Kubernetes API (the shells). The daemon
//! (`main.rs`, a separate crate root) and the e2e tests use it through the items below.
//!
//! Pure (no I/O; decided from values, unit-tested):
//! - [`policy`]: which tag a policy allows; which digest of a multi-arch index to pin.
//! - [`edit`]: where a YAML file names an image (markers, kustomize `images:`, unmarked
//!   fields) and its exact-byte edits.
//! - [`schedule`]: the batch delay and update window ([`schedule::Batcher`]).
//! - [`resource`]: the custom resources and their CRDs.
//!
//! Acting (I/O), each a thin shell over pure parts of its own:
//! - [`scan`]: lists a registry's tags and resolves digests (HTTP); its API is the flat set of
//!   items it re-exports ([`scan::RegistryClient`], [`scan::scan`], …).
//! - [`writeback`]: plans a round on the config repository and commits and pushes it (git):
//!   [`writeback::push_update`] and its variants; the planner ([`writeback::plan`]) and the
//!   commit trailers ([`writeback::parse_trailers`]) are its pure parts.
//! - [`webhook`]: verifies and parses registry webhooks and the forges' pull-request webhooks
//!   (pure) and serves them ([`webhook::router`], HTTP).
//! - [`controller`]: the three reconcilers (Kubernetes API), started by [`controller::run`];
//!   what an `ImageUpdate`'s status says is decided in pure code inside it.
//! - [`dryrun`]: `scan --once --dry-run`, what the next round would change.

pub mod controller;
pub mod dryrun;
pub mod edit;
pub mod policy;
pub mod resource;
pub mod scan;
pub mod schedule;
pub mod webhook;
pub mod writeback;
