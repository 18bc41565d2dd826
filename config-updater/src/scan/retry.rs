//! Faults: classifying oci-client's errors, the backoff schedule, `Retry-After`, and the
//! per-registry request budget (a concurrency limit plus a minimum spacing between requests).

use std::time::{Duration, SystemTime};

use oci_client::errors::{OciDistributionError, OciEnvelope, OciErrorCode};
use tokio::sync::{Mutex, Semaphore, SemaphorePermit};
use tokio::time::Instant;

use super::ScanError;

/// When and how often to try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub max_attempts: u32,
    /// The wait after the first failure; doubles each time.
    pub base: Duration,
    /// No backoff wait is longer.
    pub cap: Duration,
    /// A `Retry-After` longer than this is not slept through inside a scan: the scan fails with
    /// `RateLimited { retry_after }` and the scheduler defers the next one.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before the next try after `failed` tries (1-based) ended in `error`, or `None` to
    /// stop. `jitter` in `[0, 1)` spreads the exponential part over its upper half ("equal
    /// jitter"), so clients rate-limited together do not come back together. A known
    /// `Retry-After` is a floor: never come back sooner than the registry asked.
    pub fn delay(&self, failed: u32, error: &ScanError, jitter: f64) -> Option<Duration> {
        if !error.is_transient() || failed >= self.max_attempts {
            return None;
        }
        let exponential = self.backoff(failed);
        let jitter = jitter.clamp(0.0, 1.0);
        let jittered = exponential / 2 + exponential.mul_f64(jitter / 2.0);
        match error.retry_after() {
            Some(after) if after > self.max_retry_after => None,
            Some(after) => Some(after.max(jittered)),
            None => Some(jittered),
        }
    }

    /// `base * 2^(failed-1)`, at most `cap` (without jitter).
    pub fn backoff(&self, failed: u32) -> Duration {
        let shift = failed.saturating_sub(1).min(20);
        self.base.saturating_mul(1 << shift).min(self.cap)
    }
}

/// Parses a `Retry-After` value: delay-seconds (`120`) or an HTTP date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`), relative to `now`. A date in the past means "now".
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Sorts an oci-client error into the faults a scan reports (with one attempt counted).
pub fn classify(error: &OciDistributionError, registry: &str, repository: &str) -> ScanError {
    let at = Scanned {
        registry,
        repository,
    };
    match error {
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => at.unauthorized(),
        OciDistributionError::ImageManifestNotFoundError(_) => at.not_found(),
        OciDistributionError::RegistryError { envelope, .. } => at.refused(envelope),
        OciDistributionError::ServerError { code, message, .. } => at.status(*code, message),
        OciDistributionError::RequestError(e) => at.request_failed(e),
        OciDistributionError::IoError(e) => ScanError::Unreachable {
            registry: registry.to_owned(),
            attempts: 1,
            reason: e.to_string(),
        },
        OciDistributionError::JsonError(_)
        | OciDistributionError::ManifestEncodingError(_)
        | OciDistributionError::ManifestParsingError(_)
        | OciDistributionError::VersionedParsingError(_)
        | OciDistributionError::RegistryTokenDecodeError(_)
        | OciDistributionError::SpecViolationError(_)
        | OciDistributionError::DigestError(_)
        | OciDistributionError::RegistryNoDigestError => at.malformed(error.to_string()),
        other => ScanError::Other {
            registry: registry.to_owned(),
            reason: other.to_string(),
        },
    }
}

/// The repository a failed request was for, and the faults [`classify`] names it in.
struct Scanned<'a> {
    registry: &'a str,
    repository: &'a str,
}

impl Scanned<'_> {
    fn unauthorized(&self) -> ScanError {
        ScanError::Unauthorized {
            registry: self.registry.to_owned(),
            repository: self.repository.to_owned(),
        }
    }

    fn not_found(&self) -> ScanError {
        ScanError::NotFound {
            registry: self.registry.to_owned(),
            repository: self.repository.to_owned(),
        }
    }

    fn malformed(&self, reason: String) -> ScanError {
        ScanError::Malformed {
            registry: self.registry.to_owned(),
            reason,
        }
    }

    fn rate_limited(&self) -> ScanError {
        ScanError::RateLimited {
            registry: self.registry.to_owned(),
            retry_after: None,
            attempts: 1,
        }
    }

    /// An error envelope (`{"errors": [{"code": …}]}`): its codes say which fault.
    fn refused(&self, envelope: &OciEnvelope) -> ScanError {
        let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
        let any = |wanted: &dyn Fn(&OciErrorCode) -> bool| codes.iter().any(|c| wanted(c));
        if any(&|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied)) {
            self.unauthorized()
        } else if any(&|c| matches!(c, OciErrorCode::Toomanyrequests)) {
            self.rate_limited()
        } else if any(&|c| {
            matches!(
                c,
                OciErrorCode::NameUnknown | OciErrorCode::ManifestUnknown | OciErrorCode::NotFound
            )
        }) {
            self.not_found()
        } else {
            ScanError::Rejected {
                registry: self.registry.to_owned(),
                status: 400,
                message: envelope.to_string(),
            }
        }
    }

    /// An HTTP status without an error envelope.
    fn status(&self, code: u16, message: &str) -> ScanError {
        let message: String = message.chars().take(200).collect();
        match code {
            401 | 403 => self.unauthorized(),
            404 => self.not_found(),
            429 => self.rate_limited(),
            500..=599 => ScanError::Server {
                registry: self.registry.to_owned(),
                status: code,
                attempts: 1,
                message,
            },
            _ => ScanError::Rejected {
                registry: self.registry.to_owned(),
                status: code,
                message,
            },
        }
    }

    /// No answer to read: TLS, an undecodable body, or the connection itself.
    fn request_failed(&self, error: &reqwest::Error) -> ScanError {
        match transport_fault(self.registry, error) {
            ScanError::Unreachable { reason, .. } if error.is_decode() => self.malformed(reason),
            fault => fault,
        }
    }
}

/// A request to `registry` that got no answer: a certificate problem is [`ScanError::Tls`],
/// anything else [`ScanError::Unreachable`] (one attempt), with reqwest's whole error chain.
pub(crate) fn transport_fault(registry: &str, error: &reqwest::Error) -> ScanError {
    let chain = error_chain(error);
    if chain.to_ascii_lowercase().contains("certificate") {
        ScanError::Tls {
            registry: registry.to_owned(),
            reason: chain,
        }
    } else {
        ScanError::Unreachable {
            registry: registry.to_owned(),
            attempts: 1,
            reason: chain,
        }
    }
}

/// `error: cause: cause…`, as reqwest hides the useful part (connection refused, certificate)
/// in its sources.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    std::iter::successors(Some(error), |e| e.source())
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

/// How many requests may be in flight to one registry, and how far apart they start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BudgetLimits {
    pub max_concurrent: usize,
    pub min_interval: Duration,
}

impl Default for BudgetLimits {
    fn default() -> Self {
        BudgetLimits {
            max_concurrent: 4,
            min_interval: Duration::from_millis(20),
        }
    }
}

/// The start time a request gets when the next free slot is `next_free`, and the slot after it.
pub fn next_slot(now: Instant, next_free: Instant, min_interval: Duration) -> (Instant, Instant) {
    let start = now.max(next_free);
    (start, start + min_interval)
}

/// One registry's request budget, shared by every scan of that registry.
#[derive(Debug)]
pub struct RequestBudget {
    permits: Semaphore,
    next_free: Mutex<Instant>,
    min_interval: Duration,
}

impl RequestBudget {
    pub fn new(limits: BudgetLimits) -> Self {
        RequestBudget {
            permits: Semaphore::new(limits.max_concurrent.max(1)),
            next_free: Mutex::new(Instant::now()),
            min_interval: limits.min_interval,
        }
    }

    /// Waits for a concurrency permit and for this request's start slot.
    pub async fn acquire(&self) -> SemaphorePermit<'_> {
        let permit = self
            .permits
            .acquire()
            .await
            .expect("the budget's semaphore is never closed");
        let start = {
            let mut next_free = self.next_free.lock().await;
            let (start, after) = next_slot(Instant::now(), *next_free, self.min_interval);
            *next_free = after;
            start
        };
        tokio::time::sleep_until(start).await;
        permit
    }

    /// Holds every request to this registry back for `wait` (after a 429).
    pub async fn hold_off(&self, wait: Duration) {
        let mut next_free = self.next_free.lock().await;
        *next_free = (*next_free).max(Instant::now() + wait);
    }
}
