//! The shell: one [`RegistryClient`] per image repository, sending every request through the
//! registry's [`RequestBudget`] with retries, and the three operations built on it.
//!
//! Tag lists are fetched by hand ([`super::http_pages`]): oci-client's `list_tags` hides
//! `Retry-After`, `Link` and the challenge headers. Manifests go through oci-client, whose auth
//! works like this: given `RegistryAuth::Basic` or `Anonymous`, its first request for a
//! repository asks `GET /v2/` for `WWW-Authenticate` (`Client::_auth`). A `Bearer realm=…,
//! service=…` challenge makes it fetch a token from the realm with scope `repository:<repo>:pull`
//! (with the basic credentials, if any) and cache it per registry, repository and operation until
//! it expires; a `Basic` challenge makes it send the credentials as HTTP basic; no challenge, no
//! auth. When the registry sends no challenge (an open registry), nothing is cached, so oci-client
//! repeats that small `GET /v2/` before every manifest call; `requests` does not see that probe.
//!
//! oci-client also keeps the first credentials it sees per registry, so a client is never shared
//! between two sets of credentials: it is built per image repository, with its auth inside.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::{
    IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE,
};
use oci_client::secrets::RegistryAuth;
use regex::RegexSet;

use super::ScanError;
use super::auth::Credentials;
use super::config::{ImageName, ValidAccess};
use super::http_pages::HttpLister;
use super::metrics::{ScanMetrics, outcome};
use super::pager::{Listing, PAGE_SIZE, Page, PageSource, list_pages};
use super::retry::{BudgetLimits, RequestBudget, RetryPolicy, classify};
use super::tags::{CachedTags, TagCache, TagList, sift};

/// How to build a [`RegistryClient`].
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub credentials: Credentials,
    /// Plain HTTP.
    pub insecure: bool,
    /// A PEM bundle to trust besides the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Shared by every client of the same registry.
    pub budget: Arc<RequestBudget>,
    pub retry: RetryPolicy,
    pub metrics: Option<ScanMetrics>,
    pub page_size: usize,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            credentials: Credentials::Anonymous,
            insecure: false,
            ca_pem: None,
            budget: Arc::new(RequestBudget::new(BudgetLimits::default())),
            retry: RetryPolicy::default(),
            metrics: None,
            page_size: PAGE_SIZE,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
        }
    }
}

/// oci-client for one image repository, with its auth, budget, retries and metrics.
pub struct RegistryClient {
    oci: std::sync::OnceLock<oci_client::Client>,
    oci_setup: OciSetup,
    lister: HttpLister,
    image: ImageName,
    auth: RegistryAuth,
    budget: Arc<RequestBudget>,
    retry: RetryPolicy,
    metrics: Option<ScanMetrics>,
    page_size: usize,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No auth here: Debug output ends up in logs.
        f.debug_struct("RegistryClient")
            .field("image", &self.image.to_string())
            .field("retry", &self.retry)
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

/// What an oci-client for a repository is built from.
struct OciSetup {
    insecure: bool,
    ca_pem: Option<Vec<u8>>,
    connect_timeout: Duration,
    read_timeout: Duration,
}

impl OciSetup {
    fn build(&self) -> Result<oci_client::Client, ScanError> {
        let mut config = ClientConfig {
            protocol: if self.insecure {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            connect_timeout: Some(self.connect_timeout),
            read_timeout: Some(self.read_timeout),
            ..Default::default()
        };
        if let Some(pem) = self.ca_pem.clone() {
            config.extra_root_certificates.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data: pem,
            });
        }
        oci_client::Client::try_from(config).map_err(|e| ScanError::InvalidCa {
            reason: e.to_string(),
        })
    }
}

impl RegistryClient {
    /// The oci-client of this repository, built on first use.
    fn oci(&self) -> Result<&oci_client::Client, ScanError> {
        if let Some(oci) = self.oci.get() {
            return Ok(oci);
        }
        let built = self.oci_setup.build()?;
        Ok(self.oci.get_or_init(|| built))
    }

    pub fn new(image: ImageName, options: ClientOptions) -> Result<Self, ScanError> {
        ensure_crypto_provider();
        if let Some(pem) = &options.ca_pem
            && !String::from_utf8_lossy(pem).contains("-----BEGIN CERTIFICATE-----")
        {
            return Err(ScanError::InvalidCa {
                reason: "no PEM certificate in it".to_owned(),
            });
        }
        // oci-client is only needed for manifests (digest pinning): built on first use, as each
        // build loads the platform's root certificates (about 100 KB a client, 100 repositories
        // scanned at once held 9 MiB of them).
        let oci_setup = OciSetup {
            insecure: options.insecure,
            ca_pem: options.ca_pem.clone(),
            connect_timeout: options.connect_timeout,
            read_timeout: options.read_timeout,
        };
        let lister = HttpLister::new(
            image.api_host(),
            &image.registry,
            options.insecure,
            options.ca_pem.as_deref(),
            options.credentials.clone(),
            options.connect_timeout,
            options.read_timeout,
        )?;
        Ok(RegistryClient {
            oci: std::sync::OnceLock::new(),
            oci_setup,
            lister,
            auth: super::auth::to_registry_auth(&options.credentials),
            image,
            budget: options.budget,
            retry: options.retry,
            metrics: options.metrics,
            page_size: options.page_size.max(1),
        })
    }

    pub fn image(&self) -> &ImageName {
        &self.image
    }

    /// Runs `attempt` within the budget, retrying transient faults on the policy's schedule. A
    /// 429 holds the whole registry back for the wait.
    pub(super) async fn retrying<T, F, Fut>(&self, mut attempt: F) -> Result<T, ScanError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ScanError>>,
    {
        let mut failed = 0;
        loop {
            let permit = self.budget.acquire().await;
            let result = attempt().await;
            drop(permit);
            let mut error = match result {
                Ok(value) => return Ok(value),
                Err(e) => e,
            };
            failed += 1;
            error.set_attempts(failed);
            let Some(wait) = self.retry.delay(failed, &error, fastrand::f64()) else {
                return Err(error);
            };
            if matches!(error, ScanError::RateLimited { .. }) {
                self.budget.hold_off(wait).await;
            }
            tracing::debug!(image = %self.image, attempt = failed, wait_ms = wait.as_millis() as u64, %error, "retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// An oci-client operation, retried; each try counted in `tally` and in the metrics.
    pub(super) async fn call_oci<T, F, Fut>(
        &self,
        tally: &AtomicU32,
        mut op: F,
    ) -> Result<T, ScanError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, OciDistributionError>>,
    {
        self.retrying(|| {
            let request = op();
            async move {
                tally.fetch_add(1, Ordering::Relaxed);
                let result = request
                    .await
                    .map_err(|e| classify(&e, &self.image.registry, &self.image.repository));
                self.note(outcome(result.as_ref().map(|_| ())));
                result
            }
        })
        .await
    }

    fn note(&self, outcome: &str) {
        if let Some(metrics) = &self.metrics {
            metrics.observe_outcome(&self.image.registry, outcome);
        }
    }
}

/// reqwest under oci-client is built with `rustls-tls-no-provider` (kube already brings ring, and
/// two providers make rustls refuse to choose): install ring as the process default unless someone
/// installed a provider already.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: a provider is installed either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Tag-list pages of one repository, by hand, through the client's budget and retries.
struct HttpPages<'a> {
    client: &'a RegistryClient,
    tally: AtomicU32,
}

impl<'a> HttpPages<'a> {
    fn new(client: &'a RegistryClient) -> Self {
        HttpPages {
            client,
            tally: AtomicU32::new(0),
        }
    }

    fn requests(&self) -> u32 {
        self.tally.load(Ordering::Relaxed)
    }
}

impl PageSource for HttpPages<'_> {
    fn page(
        &mut self,
        n: usize,
        last: Option<&str>,
    ) -> impl Future<Output = Result<Page, ScanError>> + Send {
        let client = self.client;
        let tally = &self.tally;
        async move {
            client
                .retrying(|| async move {
                    let mut sent = |outcome: &'static str| {
                        tally.fetch_add(1, Ordering::Relaxed);
                        client.note(outcome);
                    };
                    client
                        .lister
                        .page(&client.image.repository, n, last, &mut sent)
                        .await
                })
                .await
        }
    }
}

/// Lists every tag of the client's repository, following pages to the end; keeps valid tags not
/// matching `exclusions`.
pub async fn list_all_tags(
    client: &RegistryClient,
    exclusions: Option<&RegexSet>,
) -> Result<TagList, ScanError> {
    let mut source = HttpPages::new(client);
    let listing = list_pages(
        &mut source,
        client.page_size,
        None,
        &client.image.registry,
        &client.image.repository,
    )
    .await?;
    let Listing::Complete {
        raw,
        pages,
        malformed,
    } = listing
    else {
        unreachable!("without a cached fingerprint the pager never answers Unchanged")
    };
    let mut list = sift(&raw, exclusions);
    list.malformed += malformed;
    list.pages = pages;
    list.requests = source.requests();
    Ok(list)
}

/// One scan's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanOutcome {
    /// The stored list (from the cache when unchanged); `list.requests` is this scan's count.
    pub list: TagList,
    /// Whether the stored list differs from the previous scan's (true on the first scan).
    pub changed: bool,
    pub fetched_at: SystemTime,
}

impl ScanOutcome {
    pub fn requests(&self) -> u32 {
        self.list.requests
    }
}

/// Scans the repository `access` names, using and updating `cache`.
///
/// An unchanged repository whose tags fit in one page costs one request (once any token is
/// cached). A longer list is paged in full every time: the registries here send no `ETag` on tag
/// lists, and nothing else vouches for the later pages; `changed` then comes from comparing
/// fingerprints. On failure the cache keeps the last good listing.
pub async fn scan(
    client: &RegistryClient,
    access: &ValidAccess,
    cache: &mut TagCache,
) -> Result<ScanOutcome, ScanError> {
    let key = access.image.to_string();
    let shortcut = cache
        .get(&key)
        .filter(|c| c.single_page_with(&access.exclusion_patterns))
        .map(|c| c.list.raw_fingerprint.clone());
    let mut source = HttpPages::new(client);
    let listing = list_pages(
        &mut source,
        client.page_size,
        shortcut.as_deref(),
        &access.image.registry,
        &access.image.repository,
    )
    .await?;
    let fetched_at = SystemTime::now();
    let requests = source.requests();
    match listing {
        Listing::Unchanged => {
            let mut entry = cache
                .get(&key)
                .cloned()
                .expect("a shortcut comes from a cached entry");
            entry.fetched_at = fetched_at;
            let mut list = entry.list.clone();
            list.requests = requests;
            list.pages = 1;
            cache.put(key, entry);
            Ok(ScanOutcome {
                list,
                changed: false,
                fetched_at,
            })
        }
        Listing::Complete {
            raw,
            pages,
            malformed,
        } => {
            let mut list = sift(&raw, access.exclusions.as_ref());
            list.malformed += malformed;
            list.pages = pages;
            list.requests = requests;
            let changed = cache
                .get(&key)
                .is_none_or(|c| c.list.fingerprint != list.fingerprint);
            cache.put(
                key,
                CachedTags {
                    list: list.clone(),
                    fetched_at,
                    exclusions: access.exclusion_patterns.clone(),
                },
            );
            Ok(ScanOutcome {
                list,
                changed,
                fetched_at,
            })
        }
    }
}

/// A tag's manifest as served, for digest pinning (`policy::pick_index_digest`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedDigest {
    /// `sha256:…` of `manifest` (checked against `Docker-Content-Digest` by oci-client).
    pub digest: String,
    /// The document's own `mediaType`, empty when it has none. oci-client does not return the
    /// response's `Content-Type`; `pick_index_digest` falls back to the document's shape.
    pub media_type: String,
    pub manifest: Vec<u8>,
    pub requests: u32,
}

/// Fetches the manifest `tag` points at: an index for a multi-arch tag, so the index digest is
/// what gets pinned.
pub async fn resolve_digest(
    client: &RegistryClient,
    tag: &str,
) -> Result<ResolvedDigest, ScanError> {
    const ACCEPT: &[&str] = &[
        OCI_IMAGE_INDEX_MEDIA_TYPE,
        IMAGE_MANIFEST_LIST_MEDIA_TYPE,
        OCI_IMAGE_MEDIA_TYPE,
        IMAGE_MANIFEST_MEDIA_TYPE,
    ];
    let reference = client.image.reference(tag);
    let tally = AtomicU32::new(0);
    let oci = client.oci()?;
    let (bytes, digest) = client
        .call_oci(&tally, || {
            oci.pull_manifest_raw(&reference, &client.auth, ACCEPT)
        })
        .await?;
    let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
        .map_err(|e| ScanError::Malformed {
            registry: client.image.registry.clone(),
            reason: format!("the manifest of {tag} is not JSON: {e}"),
        })?
        .get("mediaType")
        .and_then(|m| m.as_str())
        .unwrap_or_default()
        .to_owned();
    Ok(ResolvedDigest {
        digest,
        media_type,
        manifest: bytes.to_vec(),
        requests: tally.load(Ordering::Relaxed),
    })
}
