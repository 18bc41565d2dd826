//! What a chart's render reads besides the checkout: a chart pulled from an OCI registry or an
//! HTTP chart repository (`spec.helm.repoURL`), and values from ConfigMaps and Secrets
//! (`spec.helm.valuesFrom`); and what `chartSecretRef` grants, for the chart's dependencies too.
//! The first two change with no commit, so they are resolved **before** the
//! reconcile decides whether the applied revision is still current: their [`fingerprint`] goes
//! into `status.lastAppliedInputs`, and a sync at rest compares it, so a newer chart in the range
//! or an edited values ConfigMap renders again while nothing else ever does.
//!
//! [`resolve`] acts (the API server, `helm pull`); [`fingerprint`] and the builders of
//! [`pull`] and [`values`] are pure.
//!
//! [`fingerprint`]: ChartInputs::fingerprint

mod pull;
mod values;

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use sluice_shared::digest::sha256_hex;

use crate::render::{RenderError, RenderErrors, helm_program};
use crate::resource::HelmSpec;
pub use pull::{ChartAccess, ChartRepository, PulledChart};
pub use values::ValuesDocument;

/// A chart's inputs beyond the checkout, resolved; the files live in a scratch directory that
/// goes with this value.
#[derive(Debug, Default)]
pub struct ChartInputs {
    /// The archive pulled for `spec.helm.repoURL`.
    pub chart: Option<PulledChart>,
    /// The `valuesFrom` documents, as files, in order.
    pub values_files: Vec<PathBuf>,
    /// Digest of the `valuesFrom` documents, when there are any.
    values_digest: Option<String>,
    /// What `chartSecretRef` grants, for the chart's dependencies too.
    pub access: ChartAccess,
    /// Helm's scratch home (the pulled archive, its logins), and the values files.
    _scratch: Option<tempfile::TempDir>,
}

impl ChartInputs {
    /// What `status.lastAppliedInputs` records: `oci://host/charts/shop 1.4.3
    /// (sha256:0123456789ab); values sha256:0123456789ab`. `None` when the render reads nothing
    /// but the checkout.
    pub fn fingerprint(&self) -> Option<String> {
        let chart = self
            .chart
            .as_ref()
            .map(|c| format!("{} {} ({})", c.chart, c.version, short_digest(&c.digest)));
        let values = self
            .values_digest
            .as_ref()
            .map(|d| format!("values {}", short_digest(d)));
        let parts: Vec<String> = chart.into_iter().chain(values).collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// `sha256:` and the first 12 hex digits: enough to tell two inputs apart, and no more of a
/// digest of Secret content than that.
fn short_digest(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    format!("sha256:{}", &hex[..hex.len().min(12)])
}

/// The digest of values documents, in order (their origin included, so moving a document from
/// one object to another counts as a change).
pub fn values_digest(documents: &[ValuesDocument]) -> Option<String> {
    if documents.is_empty() {
        return None;
    }
    let parts = documents.iter().flat_map(|d| {
        [
            d.from.as_bytes(),
            b"\n".as_slice(),
            d.text.as_bytes(),
            b"\0".as_slice(),
        ]
    });
    Some(format!("sha256:{}", sha256_hex(parts)))
}

/// Resolves what `helm` (spec `helm`, of a GitSync in `namespace`) reads beyond the checkout:
/// pulls the chart when `repoURL` is set, reads `valuesFrom`. Nothing to resolve, nothing done.
pub async fn resolve(
    client: &Client,
    namespace: &str,
    helm: &HelmSpec,
    search_path: Option<&OsStr>,
    timeout: Duration,
) -> Result<ChartInputs, RenderErrors> {
    let repository = match (&helm.repo_url, &helm.chart) {
        (Some(url), Some(chart)) => Some(ChartRepository::parse(url, chart)?),
        (Some(_), None) => {
            return Err(RenderError::ChartSpec("repoURL is set but chart is not".into()).into());
        }
        (None, Some(_)) => {
            return Err(RenderError::ChartSpec(
                "chart is set but repoURL is not (a chart in the repository is the source's path)"
                    .into(),
            )
            .into());
        }
        (None, None) => None,
    };
    if repository.is_none() && helm.values_from.is_empty() && helm.chart_secret_ref.is_none() {
        return Ok(ChartInputs::default());
    }
    let scratch = tempfile::tempdir().map_err(|error| RenderError::Io {
        path: "a scratch directory for the chart".into(),
        error,
    })?;
    let access = access(client, namespace, helm, repository.as_ref()).await?;
    let chart = match &repository {
        Some(repository) => {
            let program = helm_program(search_path)?;
            let home = scratch.path().join("helm");
            Some(
                pull::pull(
                    &program,
                    &home,
                    repository,
                    helm.version.as_deref(),
                    helm.plain_http,
                    &access,
                    timeout,
                )
                .await?,
            )
        }
        None => None,
    };
    let documents = values::read(client, namespace, &helm.values_from).await?;
    let mut values_files = Vec::new();
    for (index, document) in documents.iter().enumerate() {
        let file = scratch.path().join(format!("values-from-{index}.yaml"));
        std::fs::write(&file, &document.text).map_err(|error| RenderError::Io {
            path: document.from.clone(),
            error,
        })?;
        values_files.push(file);
    }
    Ok(ChartInputs {
        chart,
        values_files,
        values_digest: values_digest(&documents),
        access,
        _scratch: Some(scratch),
    })
}

/// What `chartSecretRef` grants (nothing without one).
async fn access(
    client: &Client,
    namespace: &str,
    helm: &HelmSpec,
    repository: Option<&ChartRepository>,
) -> Result<ChartAccess, RenderError> {
    let Some(secret_ref) = &helm.chart_secret_ref else {
        return Ok(ChartAccess::default());
    };
    let fail = |reason: String| RenderError::ChartSecret {
        name: secret_ref.name.clone(),
        reason,
    };
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = api
        .get_opt(&secret_ref.name)
        .await
        .map_err(|error| fail(format!("cannot be read: {error}")))?
        .ok_or_else(|| fail("does not exist in the GitSync's namespace".into()))?;
    ChartAccess::from_secret(&crate::source::secret_data(secret), repository).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pulled(version: &str, digest: &str) -> PulledChart {
        PulledChart {
            archive: PathBuf::from("/tmp/x/shop.tgz"),
            chart: "oci://127.0.0.1:15443/charts/shop".into(),
            version: version.into(),
            digest: digest.into(),
        }
    }

    fn document(from: &str, text: &str) -> ValuesDocument {
        ValuesDocument {
            from: from.into(),
            text: text.into(),
        }
    }

    #[test]
    fn nothing_beyond_the_checkout_has_no_fingerprint() {
        assert_eq!(ChartInputs::default().fingerprint(), None);
    }

    #[test]
    fn the_fingerprint_names_the_chart_version_and_short_digests() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let inputs = ChartInputs {
            chart: Some(pulled("1.4.3", &digest)),
            values_digest: values_digest(&[document("ConfigMap a, key values.yaml", "x: 1")]),
            ..ChartInputs::default()
        };
        let fingerprint = inputs.fingerprint().unwrap();
        assert!(
            fingerprint.starts_with(
                "oci://127.0.0.1:15443/charts/shop 1.4.3 (sha256:abababababab); values sha256:"
            ),
            "{fingerprint}"
        );
        assert_eq!(fingerprint.len(), fingerprint.trim().len());
        assert!(!fingerprint.contains(&"ab".repeat(7)), "{fingerprint}");
    }

    #[test]
    fn any_change_of_a_values_document_or_its_origin_changes_the_digest() {
        let one = values_digest(&[document("ConfigMap a, key values.yaml", "x: 1")]);
        let edited = values_digest(&[document("ConfigMap a, key values.yaml", "x: 2")]);
        let moved = values_digest(&[document("Secret a, key values.yaml", "x: 1")]);
        let split = values_digest(&[
            document("ConfigMap a, key values.yaml", "x: 1"),
            document("ConfigMap b, key values.yaml", ""),
        ]);
        assert_ne!(one, edited);
        assert_ne!(one, moved);
        assert_ne!(one, split);
        assert_eq!(values_digest(&[]), None);
    }
}
