//! The revision pipeline: a GitSync's source at its ref, rendered into objects and planned against
//! the live cluster, with the client that will write the plan. A sync and `deploy-synchronizer
//! diff` both run it, so what a revision becomes is decided in one place: a render mode or a
//! planning input is added here once, and the diff shows exactly what the sync would do.
//!
//! Two stages, because the reconcile looks at the fetched commit before it renders (an applied,
//! unchanged revision is not rendered again):
//!
//! 1. [`fetch`]: the source's credentials, its bare cache, the commit at its ref, checked out;
//!    and for a chart, [`chart_inputs`]: what its render reads beyond the checkout (a chart
//!    pulled from a registry, values from ConfigMaps and Secrets), which can change with no
//!    commit.
//! 2. [`plan`]: discovery, render the checkout ([`render`]; a chart is told the cluster's version
//!    and API versions), then the pure planner's two steps with the I/O between them, reading
//!    only what the plan needs: [`prepare`], the live facts of the
//!    prepared and inventoried objects, [`Prepared::plan`](crate::plan::Prepared::plan); last the
//!    writer, impersonating `spec.serviceAccountName` when set, else the lockdown's default
//!    ServiceAccount ([`crate::tenancy`]).
//!
//! This module acts (git, the API server); every decision in it is the planner's.

use std::path::Path;

use kube::Client;

use crate::apply::{ApplyError, Kinds, impersonating, read_live_facts};
use crate::chart::{self, ChartInputs};
use crate::plan::{Desired, Inventory, Plan, PlanError, Record, Settings, prepare};
use crate::render::{self, DEFAULT_HELM_TIMEOUT, HelmOptions, RenderErrors, RenderOptions};
use crate::resource::{GitSyncSpec, RenderMode};
use crate::source::{self, Checkout, SourceError};
use crate::stages::Stages;
use crate::tenancy::Lockdown;

/// Whose revision: a GitSync's namespace and name, and where its git caches live.
#[derive(Clone, Copy, Debug)]
pub struct SyncOf<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub cache_root: &'a Path,
}

/// The cluster a revision is planned against: `client` reads (and writes, unless impersonating);
/// `config` is its configuration, to impersonate a ServiceAccount with; `lockdown` the platform
/// team's rules, which name the ServiceAccount a sync without one writes as.
#[derive(Clone, Copy)]
pub struct Cluster<'a> {
    pub client: &'a Client,
    pub config: &'a kube::Config,
    pub lockdown: &'a Lockdown,
}

/// A revision planned against the cluster, ready to execute or to diff.
pub struct PlannedRevision {
    pub plan: Plan,
    /// The kinds discovery found, for resolving each object's API.
    pub kinds: Kinds,
    /// The client the plan is written with: the sync's ServiceAccount's or the daemon's own.
    pub writer: Client,
}

/// Why a fetched revision could not be planned. Nothing has been written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Render(#[from] RenderErrors),
    #[error("cannot discover the cluster's kinds: {0}")]
    Discovery(#[source] kube::Error),
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The live facts of the objects concerned could not be read.
    #[error(transparent)]
    Read(#[from] ApplyError),
    #[error("cannot create a client impersonating ServiceAccount {name}: {error}")]
    Impersonation {
        name: String,
        #[source]
        error: kube::Error,
    },
}

/// Fetches `spec.source` at its ref (with the credentials its Secret holds) into the sync's
/// cache and checks the commit out into a temporary directory.
pub async fn fetch(
    client: &Client,
    sync: SyncOf<'_>,
    spec: &GitSyncSpec,
) -> Result<Checkout, SourceError> {
    let auth = source::auth_of(client, sync.namespace, &spec.source).await?;
    let cache = source::cache_dir(sync.cache_root, sync.namespace, sync.name, &spec.source.url);
    source::fetch(
        &spec.source.url,
        auth,
        source::revision_of(&spec.source),
        cache,
        sync.cache_root,
    )
    .await
}

/// What a chart's render of `spec` reads beyond the checkout (see [`crate::chart`]); nothing
/// unless it renders with `spec.helm` set and in Helm or Auto mode.
pub async fn chart_inputs(
    client: &Client,
    sync: SyncOf<'_>,
    spec: &GitSyncSpec,
) -> Result<ChartInputs, RenderErrors> {
    match (&spec.helm, spec.render) {
        (Some(helm), RenderMode::Helm | RenderMode::Auto) => {
            chart::resolve(client, sync.namespace, helm, None, DEFAULT_HELM_TIMEOUT).await
        }
        _ => Ok(ChartInputs::default()),
    }
}

/// How a revision is rendered: the mode, and for a chart what `helm template` is told.
pub fn render_options(mode: RenderMode, helm: HelmOptions) -> RenderOptions {
    let defaults = RenderOptions::default();
    RenderOptions {
        mode: match mode {
            RenderMode::Auto => render::RenderMode::Auto,
            RenderMode::Plain => render::RenderMode::Plain,
            RenderMode::Kustomize => render::RenderMode::Kustomize,
            RenderMode::Helm => render::RenderMode::Helm,
        },
        helm: HelmOptions {
            timeout: defaults.helm.timeout,
            ..helm
        },
        ..defaults
    }
}

/// What `helm template` is told for `spec`'s chart: the release and values of `spec.helm`
/// (defaults: the GitSync's name, `targetNamespace` else its namespace), and the cluster's
/// version and API versions so `Capabilities` checks render as they would in the cluster.
pub async fn helm_options(
    client: &Client,
    kinds: &Kinds,
    sync: SyncOf<'_>,
    spec: &GitSyncSpec,
) -> HelmOptions {
    let helm = spec.helm.clone().unwrap_or_default();
    let kube_version = match client.apiserver_version().await {
        Ok(info) => Some(info.git_version),
        Err(error) => {
            tracing::warn!(%error, "cannot read the cluster's version for helm; rendering without it");
            None
        }
    };
    HelmOptions {
        release: helm.release_name.unwrap_or_else(|| sync.name.to_owned()),
        namespace: helm
            .namespace
            .or_else(|| spec.target_namespace.clone())
            .unwrap_or_else(|| sync.namespace.to_owned()),
        values_files: helm.values_files,
        values: helm.values,
        include_crds: helm.include_crds,
        skip_tests: helm.skip_tests,
        kube_version,
        api_versions: kinds.api_versions(),
        ..HelmOptions::default()
    }
}

/// Renders `sub_path` of the tree at `root` as `options` say, into the planner's input.
pub async fn render(
    root: &Path,
    sub_path: &Path,
    options: &RenderOptions,
) -> Result<Vec<Desired>, RenderErrors> {
    let manifests = render::render(root, sub_path, options).await?;
    Ok(manifests
        .into_iter()
        .map(|m| Desired {
            id: m.object_ref,
            object: m.object,
            source: m.source.to_string(),
        })
        .collect())
}

/// Renders `checkout` (with the chart `inputs`) as `spec` says and plans it against the cluster
/// and `inventory` (what the sync applied before). The checkout and the inputs' files are
/// removed as soon as it is rendered.
pub async fn plan(
    cluster: Cluster<'_>,
    sync: SyncOf<'_>,
    spec: &GitSyncSpec,
    (checkout, inputs): (Checkout, ChartInputs),
    (inventory, record): (&Inventory, Option<&Record>),
    stages: &mut Stages,
) -> Result<PlannedRevision, Error> {
    let sub_path = Path::new(spec.source.path.as_deref().unwrap_or(""));
    let kinds = Kinds::discover(cluster.client)
        .await
        .map_err(Error::Discovery)?;
    let chart =
        inputs.chart.is_some() || checkout.root().join(sub_path).join("Chart.yaml").is_file();
    let helm = match spec.render {
        RenderMode::Helm | RenderMode::Auto if chart => HelmOptions {
            chart: inputs.chart.as_ref().map(|c| c.archive.clone()),
            values_from: inputs.values_files.clone(),
            logins: inputs.access.logins.clone(),
            ca_pem: inputs.access.ca_pem.clone(),
            plain_http: spec.helm.as_ref().is_some_and(|h| h.plain_http),
            ..helm_options(cluster.client, &kinds, sync, spec).await
        },
        _ => HelmOptions::default(),
    };
    let options = render_options(spec.render, helm);
    stages.mark("discover");
    let desired = render(checkout.root(), sub_path, &options).await?;
    drop(checkout);
    drop(inputs);
    stages.mark("render");

    let settings = Settings::from_spec(sync.namespace, sync.name, spec);
    let prepared = prepare(desired, &kinds, &settings);
    let (mut live, to_read) = prepared.known_facts(inventory, record);
    stages.mark("prepare");
    live.extend(read_live_facts(cluster.client, &kinds, to_read).await?);
    stages.mark("read");
    let plan = prepared.plan(inventory, &live)?;
    stages.mark("plan");
    let writer = writer(cluster, sync.namespace, spec)?;
    Ok(PlannedRevision {
        plan,
        kinds,
        writer,
    })
}

/// The client a sync writes with: impersonating `spec.serviceAccountName` of the sync's
/// namespace when set, else the lockdown's default ServiceAccount (dry-runs too), else the
/// daemon's own.
pub fn writer(cluster: Cluster<'_>, namespace: &str, spec: &GitSyncSpec) -> Result<Client, Error> {
    match cluster.lockdown.service_account(spec) {
        Some(account) => impersonating(cluster.config, namespace, account).map_err(|error| {
            Error::Impersonation {
                name: account.to_owned(),
                error,
            }
        }),
        None => Ok(cluster.client.clone()),
    }
}
