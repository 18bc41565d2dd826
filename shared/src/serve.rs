//! The daemons' small HTTP endpoint: Prometheus metrics on `/metrics`,
//! liveness on `/healthz`, readiness on `/readyz`.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clap::Args;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::naming::METRICS_NAMESPACE;

const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `--metrics-addr` flag; `DEFAULT_PORT` is the port listened on, on all
/// addresses, when neither the flag nor `SLUICE_METRICS_ADDR` is given.
#[derive(Args, Clone, Debug)]
pub struct ServeArgs<const DEFAULT_PORT: u16> {
    /// Address to serve /metrics, /healthz and /readyz on
    #[arg(
        long,
        env = "SLUICE_METRICS_ADDR",
        value_name = "ADDR",
        default_value = SocketAddr::from((Ipv4Addr::UNSPECIFIED, DEFAULT_PORT)).to_string()
    )]
    pub metrics_addr: SocketAddr,
}

/// Whether the daemon is ready for work, as answered on `/readyz`. Clones
/// share the same state.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The endpoint could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("metrics and health endpoint failed")]
    Serve(#[source] std::io::Error),
}

/// A metrics registry whose metric names start with `sluice_`, holding
/// `sluice_build_info{component, version} 1`.
pub fn registry(component: &str, version: &str) -> Registry {
    let mut registry = Registry::with_prefix(METRICS_NAMESPACE);
    let build = Info::new(vec![
        ("component".to_owned(), component.to_owned()),
        ("version".to_owned(), version.to_owned()),
    ]);
    registry.register("build", "Build of the running Sluice component", build);
    registry
        .sub_registry_with_label(("component".into(), component.to_owned().into()))
        .register(
            "working",
            "What this replica works: 1 while it holds its daemon's Lease or runs alone, the \
             shards it holds when sharded, 0 on a standby",
            crate::leader::working().clone(),
        );
    registry
}

#[derive(Clone)]
struct Endpoint {
    registry: Arc<Registry>,
    readiness: Readiness,
}

/// Routes `/metrics`, `/healthz` and `/readyz`.
pub fn router(registry: Arc<Registry>, readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(Endpoint {
            registry,
            readiness,
        })
}

/// Serves `router` on `addr` until `shutdown` completes, then finishes the
/// requests in flight.
pub async fn serve(
    addr: SocketAddr,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServeError::Serve)
}

async fn metrics(State(endpoint): State<Endpoint>) -> Response {
    let mut body = String::new();
    match encode(&mut body, &endpoint.registry) {
        Ok(()) => ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], body).into_response(),
        Err(error) => {
            tracing::error!(%error, "cannot encode metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn ready(State(endpoint): State<Endpoint>) -> (StatusCode, &'static str) {
    if endpoint.readiness.is_ready() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use clap::Parser;
    use tower::ServiceExt;

    use super::*;

    async fn get(router: &Router, path: &str) -> (StatusCode, String, Option<String>) {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|value| value.to_str().unwrap().to_owned());
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (
            status,
            String::from_utf8(body.to_vec()).unwrap(),
            content_type,
        )
    }

    #[tokio::test]
    async fn metrics_are_openmetrics_text() {
        let router = router(
            Arc::new(registry("test-daemon", "1.2.3")),
            Readiness::default(),
        );
        let (status, body, content_type) = get(&router, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type.as_deref(), Some(OPENMETRICS_CONTENT_TYPE));
        assert!(
            body.contains(r#"sluice_build_info{component="test-daemon",version="1.2.3"} 1"#),
            "{body}"
        );
        assert!(body.ends_with("# EOF\n"), "{body}");
    }

    #[tokio::test]
    async fn healthz_is_always_ok() {
        let router = router(Arc::new(Registry::default()), Readiness::default());
        assert_eq!(get(&router, "/healthz").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn readyz_follows_readiness() {
        let readiness = Readiness::default();
        let router = router(Arc::new(Registry::default()), readiness.clone());
        assert_eq!(
            get(&router, "/readyz").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        readiness.set(true);
        assert_eq!(get(&router, "/readyz").await.0, StatusCode::OK);
    }

    #[test]
    fn metrics_addr_default_comes_from_the_type() {
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs<9090>,
        }
        // SLUICE_METRICS_ADDR, if set in the test's environment, takes precedence.
        if std::env::var_os("SLUICE_METRICS_ADDR").is_none() {
            let cli = Cli::try_parse_from(["test"]).unwrap();
            assert_eq!(cli.serve.metrics_addr, "0.0.0.0:9090".parse().unwrap());
        }
        let cli = Cli::try_parse_from(["test", "--metrics-addr", "127.0.0.1:1"]).unwrap();
        assert_eq!(cli.serve.metrics_addr, "127.0.0.1:1".parse().unwrap());
    }
}
