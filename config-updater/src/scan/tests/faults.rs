use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use oci_client::errors::{OciDistributionError, OciEnvelope, OciError, OciErrorCode};
use prometheus_client::registry::Registry;

use crate::scan::ScanError;
use crate::scan::client::{ClientOptions, RegistryClient};
use crate::scan::config::ImageName;
use crate::scan::metrics::ScanMetrics;
use crate::scan::retry::{
    BudgetLimits, RequestBudget, RetryPolicy, classify, next_slot, parse_retry_after,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn server(status: u16) -> ScanError {
    ScanError::Server {
        registry: "r".into(),
        status,
        attempts: 1,
        message: String::new(),
    }
}

fn limited(retry_after: Option<Duration>) -> ScanError {
    ScanError::RateLimited {
        registry: "r".into(),
        retry_after,
        attempts: 1,
    }
}

#[test]
fn backoff_doubles_from_half_a_second_up_to_thirty() {
    let policy = RetryPolicy::default();
    let schedule: Vec<Duration> = (1..=9).map(|n| policy.backoff(n)).collect();
    assert_eq!(
        schedule,
        [
            ms(500),
            ms(1000),
            ms(2000),
            ms(4000),
            ms(8000),
            ms(16000),
            ms(30000),
            ms(30000),
            ms(30000)
        ]
    );
    assert_eq!(policy.backoff(u32::MAX), ms(30000));
}

#[test]
fn jitter_spreads_over_the_upper_half() {
    let policy = RetryPolicy::default();
    assert_eq!(policy.delay(1, &server(503), 0.0), Some(ms(250)));
    assert_eq!(policy.delay(1, &server(503), 0.5), Some(ms(375)));
    assert_eq!(
        policy
            .delay(2, &server(503), 0.999_999)
            .map(|d| d.as_millis()),
        Some(999)
    );
    assert_eq!(policy.delay(3, &server(503), 0.0), Some(ms(1000)));
}

#[test]
fn four_tries_in_all_and_only_for_transient_faults() {
    let policy = RetryPolicy::default();
    let down = ScanError::Unreachable {
        registry: "r".into(),
        attempts: 1,
        reason: "refused".into(),
    };
    assert!(policy.delay(3, &down, 0.0).is_some());
    assert_eq!(
        policy.delay(4, &down, 0.0),
        None,
        "the fourth failure is the last"
    );
    for permanent in [
        ScanError::Unauthorized {
            registry: "r".into(),
            repository: "x".into(),
        },
        ScanError::NotFound {
            registry: "r".into(),
            repository: "x".into(),
        },
        ScanError::Malformed {
            registry: "r".into(),
            reason: "json".into(),
        },
        ScanError::Rejected {
            registry: "r".into(),
            status: 400,
            message: String::new(),
        },
    ] {
        assert_eq!(policy.delay(1, &permanent, 0.0), None, "{permanent:?}");
    }
}

#[test]
fn retry_after_is_a_floor_and_a_long_one_ends_the_scan() {
    let policy = RetryPolicy::default();
    assert_eq!(
        policy.delay(1, &limited(Some(Duration::from_secs(7))), 0.9),
        Some(Duration::from_secs(7))
    );
    assert_eq!(
        policy.delay(1, &limited(Some(ms(10))), 0.0),
        Some(ms(250)),
        "never sooner than the backoff"
    );
    assert_eq!(policy.delay(1, &limited(None), 0.0), Some(ms(250)));
    let long = limited(Some(Duration::from_secs(3600)));
    assert_eq!(policy.delay(1, &long, 0.0), None);
    assert_eq!(
        long.retry_after(),
        Some(Duration::from_secs(3600)),
        "the scheduler defers by it"
    );
    assert!(long.to_string().contains("retry after 3600s"), "{long}");
}

#[test]
fn retry_after_parses_seconds_and_http_dates() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
    assert_eq!(
        parse_retry_after("120", now),
        Some(Duration::from_secs(120))
    );
    assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
        Some(Duration::ZERO),
        "past: now"
    );
    for bad in ["", "soon", "-5", "1.5"] {
        assert_eq!(parse_retry_after(bad, now), None, "{bad}");
    }
}

fn envelope(code: OciErrorCode) -> OciDistributionError {
    OciDistributionError::RegistryError {
        envelope: OciEnvelope {
            errors: vec![OciError {
                code,
                message: "m".into(),
                detail: serde_json::Value::Null,
            }],
        },
        url: "https://r/v2/x/tags/list".into(),
    }
}

fn status(code: u16) -> OciDistributionError {
    OciDistributionError::ServerError {
        code,
        url: "u".into(),
        message: "body".into(),
    }
}

#[test]
fn oci_client_errors_are_classified() {
    let reason = |e: OciDistributionError| classify(&e, "r", "x").reason();
    assert_eq!(
        reason(OciDistributionError::UnauthorizedError { url: "u".into() }),
        "Unauthorized"
    );
    assert_eq!(
        reason(OciDistributionError::AuthenticationFailure("no".into())),
        "Unauthorized"
    );
    assert_eq!(reason(envelope(OciErrorCode::Unauthorized)), "Unauthorized");
    assert_eq!(reason(envelope(OciErrorCode::Denied)), "Unauthorized");
    assert_eq!(reason(envelope(OciErrorCode::NameUnknown)), "NotFound");
    assert_eq!(reason(envelope(OciErrorCode::ManifestUnknown)), "NotFound");
    assert_eq!(
        reason(envelope(OciErrorCode::Toomanyrequests)),
        "RateLimited"
    );
    assert_eq!(reason(envelope(OciErrorCode::TagInvalid)), "Rejected");
    assert_eq!(reason(status(401)), "Unauthorized");
    assert_eq!(reason(status(403)), "Unauthorized");
    assert_eq!(reason(status(404)), "NotFound");
    assert_eq!(reason(status(429)), "RateLimited");
    assert_eq!(reason(status(502)), "ServerError");
    assert_eq!(reason(status(503)), "ServerError");
    assert_eq!(reason(status(418)), "Rejected");
    let json = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
    assert_eq!(reason(OciDistributionError::JsonError(json)), "Malformed");
    assert_eq!(
        reason(OciDistributionError::SpecViolationError("x".into())),
        "Malformed"
    );
    assert!(classify(&status(503), "r", "x").is_transient());
    assert!(!classify(&status(404), "r", "x").is_transient());
}

#[test]
fn start_slots_are_spaced() {
    let now = tokio::time::Instant::now();
    let gap = ms(100);
    let (first, next) = next_slot(now, now, gap);
    assert_eq!((first, next), (now, now + gap));
    let (second, next) = next_slot(now, next, gap);
    assert_eq!((second, next), (now + gap, now + gap * 2));
    // An idle budget starts at once.
    let later = now + Duration::from_secs(5);
    assert_eq!(next_slot(later, next, gap).0, later);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

#[test]
fn the_budget_spaces_requests_and_holds_off() {
    runtime().block_on(async {
        let budget = RequestBudget::new(BudgetLimits {
            max_concurrent: 2,
            min_interval: ms(30),
        });
        let start = tokio::time::Instant::now();
        for _ in 0..3 {
            drop(budget.acquire().await);
        }
        assert!(start.elapsed() >= ms(60), "{:?}", start.elapsed());
        budget.hold_off(ms(100)).await;
        let before = tokio::time::Instant::now();
        drop(budget.acquire().await);
        assert!(before.elapsed() >= ms(90), "{:?}", before.elapsed());
    });
}

fn fast_client(metrics: &ScanMetrics) -> RegistryClient {
    RegistryClient::new(
        ImageName::parse("127.0.0.1:1/app").unwrap(),
        ClientOptions {
            insecure: true,
            retry: RetryPolicy {
                base: ms(1),
                cap: ms(4),
                ..RetryPolicy::default()
            },
            budget: Arc::new(RequestBudget::new(BudgetLimits {
                max_concurrent: 1,
                min_interval: Duration::ZERO,
            })),
            metrics: Some(metrics.clone()),
            ..Default::default()
        },
    )
    .unwrap()
}

#[test]
fn the_retry_loop_retries_5xx_then_succeeds_and_counts_requests() {
    let metrics = ScanMetrics::default();
    let client = fast_client(&metrics);
    let count = |tally: &AtomicU32| tally.load(Ordering::Relaxed);
    runtime().block_on(async {
        let tally = AtomicU32::new(0);
        let mut answers = vec![Ok(7), Err(status(503)), Err(status(502))];
        let got = client
            .call_oci(&tally, || std::future::ready(answers.pop().unwrap()))
            .await;
        assert_eq!((got, count(&tally)), (Ok(7), 3));

        let tally = AtomicU32::new(0);
        let err = client
            .call_oci(&tally, || std::future::ready(Err::<(), _>(status(429))))
            .await
            .unwrap_err();
        assert_eq!(count(&tally), 4);
        assert_eq!(
            err,
            ScanError::RateLimited {
                registry: "127.0.0.1:1".into(),
                retry_after: None,
                attempts: 4
            }
        );

        let tally = AtomicU32::new(0);
        let err = client
            .call_oci(&tally, || std::future::ready(Err::<(), _>(status(404))))
            .await
            .unwrap_err();
        assert_eq!(
            (err.reason(), count(&tally)),
            ("NotFound", 1),
            "a 404 is not retried"
        );
    });
    assert_eq!(metrics.count("127.0.0.1:1", "ok"), 1);
    assert_eq!(metrics.count("127.0.0.1:1", "server_error"), 2);
    assert_eq!(metrics.count("127.0.0.1:1", "rate_limited"), 4);
    assert_eq!(metrics.count("127.0.0.1:1", "not_found"), 1);
}

#[test]
fn the_retry_loop_waits_at_least_retry_after() {
    let client = fast_client(&ScanMetrics::default());
    runtime().block_on(async {
        let started = tokio::time::Instant::now();
        let mut tries = 0;
        let err = client
            .retrying(|| {
                tries += 1;
                std::future::ready(Err::<(), _>(limited(Some(ms(60)))))
            })
            .await
            .unwrap_err();
        assert_eq!(tries, 4);
        assert_eq!(err.reason(), "RateLimited");
        // Three waits of at least the 60 ms the registry asked for (the backoff here is 1-4 ms).
        assert!(started.elapsed() >= ms(180), "{:?}", started.elapsed());
    });
}

#[test]
fn requests_are_exported_as_sluice_registry_requests_total() {
    let mut registry = Registry::with_prefix("sluice");
    let metrics = ScanMetrics::register(&mut registry);
    metrics.observe("ghcr.io", Ok(()));
    metrics.observe("ghcr.io", Err(&limited(None)));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains(r#"sluice_registry_requests_total{registry="ghcr.io",outcome="ok"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"sluice_registry_requests_total{registry="ghcr.io",outcome="rate_limited"} 1"#
        ),
        "{text}"
    );
}

#[test]
fn error_messages_say_what_to_do() {
    let text = |e: ScanError| e.to_string();
    assert!(
        text(ScanError::Unauthorized {
            registry: "r".into(),
            repository: "x".into()
        })
        .contains("Secret")
    );
    assert!(
        text(ScanError::NotFound {
            registry: "r".into(),
            repository: "x".into()
        })
        .contains("image name")
    );
    assert!(
        text(ScanError::Tls {
            registry: "r".into(),
            reason: "bad".into()
        })
        .contains("certSecretRef")
    );
    assert!(
        text(ScanError::Unreachable {
            registry: "r".into(),
            attempts: 4,
            reason: "refused".into()
        })
        .contains("after 4 attempt(s)")
    );
}
