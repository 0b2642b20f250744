//! Operations endpoints: `/health` (process up) everywhere, and on a separate operations
//! listener (`OPS_ADDR`, loopback by default) `/ready` (PostgreSQL and Kafka reachable, from
//! the background probe of `readiness`) and `/metrics` (Prometheus text). A public port
//! serves `/health` only: readiness and metrics tell an outsider too much and cost too much.

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::kafka::KafkaSettings;
use crate::readiness::Readiness;

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once) and returns its handle.
pub fn prometheus() -> PrometheusHandle {
    PROMETHEUS
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(handle) => handle,
            // Another recorder is installed (tests that build several apps in one process):
            // fall back to a handle that renders this builder's (empty) registry.
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        })
        .clone()
}

#[derive(Clone)]
pub struct OpsState {
    pub readiness: Readiness,
    pub metrics: PrometheusHandle,
}

impl OpsState {
    /// Starts the readiness probe of `pool` and `kafka` (until `stop` fires).
    pub fn new(pool: PgPool, kafka: KafkaSettings, stop: CancellationToken) -> OpsState {
        OpsState {
            readiness: Readiness::spawn(pool, kafka, stop),
            metrics: prometheus(),
        }
    }
}

/// What a public port serves of the operations endpoints: `/health` only.
pub fn public_router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/health", get(|| async { "ok" }))
}

/// The operations listener's routes: `/health`, `/ready`, `/metrics`.
pub fn router<S: Clone + Send + Sync + 'static>(state: OpsState) -> Router<S> {
    public_router()
        .route("/ready", get(ready))
        .route("/metrics", get(render_metrics))
        .with_state(Arc::new(state))
}

async fn ready(State(state): State<Arc<OpsState>>) -> impl IntoResponse {
    let db = state.readiness.postgres();
    let kafka = state.readiness.kafka();
    let status = if db && kafka {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(serde_json::json!({ "postgres": db, "kafka": kafka })),
    )
}

async fn render_metrics(State(state): State<Arc<OpsState>>) -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// Binds `addr` and announces the bound address (`LISTENING <addr>` on stdout, which tests
/// read when they ask for port 0).
pub async fn bind(addr: &str) -> anyhow::Result<tokio::net::TcpListener> {
    bind_announced(addr, "LISTENING").await
}

async fn bind_announced(addr: &str, tag: &str) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, listener = tag, "listening");
    println!("{tag} {local}");
    Ok(listener)
}

/// Serves `router` on `addr` until `shutdown` fires; logs the bound address (port 0 works)
/// as `listening addr=…` so tests can find it.
pub async fn serve(
    addr: String,
    router: Router,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listener = bind(&addr).await?;
    // Handlers that key on the client (login lockout) read its address.
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}

/// For a process with a public port too: binds the operations listener now (announced as
/// `OPS_LISTENING <addr>`, before the public `LISTENING` line) and serves `router` on it in
/// the background until `shutdown` fires.
pub async fn spawn_listener(
    addr: &str,
    router: Router,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = bind_announced(addr, "OPS_LISTENING").await?;
    Ok(tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "operations listener failed");
        }
    }))
}
