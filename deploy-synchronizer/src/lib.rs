//! The Deploy Synchronizer: it renders a GitSync's source into objects, plans what to apply and
//! prune against the live cluster, applies the plan with server-side apply, heals drift, assesses
//! health and proposes rollbacks.
//!
//! **Decide in pure code, act in thin shells.** The modules that decide do no I/O and are
//! unit-tested on values; the modules that act read and write the cluster and git, and leave every
//! decision to the first kind.
//!
//! | module | | what |
//! | --- | --- | --- |
//! | `plan` | pure | `(desired, live facts, inventory) -> Plan`: placement, ownership, stages, prune |
//! | `status` | pure | `(status, outcome, now) -> (status, verdict)`: conditions, history, health verdict |
//! | `health` | pure | live objects (and pods) -> health, as kstatus and Argo CD read it |
//! | `drift` | pure | `managedFields` -> drifted or not; how hard an actor fights a field |
//! | `heal::index` | pure | what each sync applied, and which watch covers which object |
//! | [`diff`] | pure | dry-run result against live object -> normalized diff, Secrets masked |
//! | `rollback` | pure | failed revision -> the revert to propose (its git shell: `rollback::git`), and the diagnosis its pull request says |
//! | `depends` | pure | `dependsOn`: may a GitSync apply now, or which dependency does it wait for (cycles refused) |
//! | `forge` | pure | status -> what the forge is told: commit statuses, revert pull requests to open or close |
//! | `object` | pure | object identity and the `sluice.dev/` marks |
//! | [`resource`] | types | the GitSync CRD |
//! | `render` | acts | the checkout -> objects: files read, kustomize or `helm template` run (parsing in pure `documents`) |
//! | `source` | acts | git: credentials, the bare cache, a revision checked out |
//! | `revision` | acts | the revision pipeline: fetch -> render -> plan, shared by sync and diff |
//! | `apply` | acts | executes a plan: dry-run of the whole set, staged apply, prune |
//! | `listing`, `assess` | acts | reads of live objects for the plan and for health |
//! | `heal` | acts | the watches that feed `heal::index`, and the re-applies |
//! | `stages` | pure | how long each stage of a sync took, for the log and a metric |
//! | `reconcile`, `context`, [`controller`] | acts | one reconcile (and what it tells the forge: `reconcile::forge`); what reconciles share; the controller |
//! | [`diffcmd`] | acts | `deploy-synchronizer diff` |
//! | [`rollbackcmd`] | acts | `deploy-synchronizer rollback`: a rollback proposed by hand, through the forge |
//! | [`webhook`] | acts | push webhooks (parsing and matching are pure) |
//!
//! The public surface is what the binary and the end-to-end tests use: [`controller::run`] with
//! its options and metrics, the [`resource`] types, [`diffcmd`] and [`diff`], [`rollbackcmd`], and [`webhook`].

pub(crate) mod apply;
pub(crate) mod assess;
pub(crate) mod chart;
pub(crate) mod context;
pub mod controller;
pub(crate) mod depends;
pub mod diff;
pub mod diffcmd;
pub(crate) mod drift;
pub(crate) mod forge;
pub(crate) mod heal;
pub(crate) mod health;
pub(crate) mod listing;
pub(crate) mod object;
pub(crate) mod plan;
pub(crate) mod reconcile;
pub(crate) mod render;
pub mod resource;
pub(crate) mod revision;
pub(crate) mod rollback;
pub mod rollbackcmd;
pub(crate) mod source;
pub(crate) mod stages;
pub(crate) mod status;
pub mod tenancy;
pub mod webhook;
