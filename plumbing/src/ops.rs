//! Operations endpoints every process serves: `/health` (process up), `/ready` (PostgreSQL
//! and Kafka reachable) and `/metrics` (Prometheus text).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;

use crate::kafka::KafkaSettings;

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
    pub pool: PgPool,
    pub kafka: KafkaSettings,
    pub metrics: PrometheusHandle,
}

pub fn router<S>(state: OpsState) -> Router<S> {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .route("/metrics", get(render_metrics))
        .with_state(Arc::new(state))
}

async fn ready(State(state): State<Arc<OpsState>>) -> impl IntoResponse {
    let db = sqlx::query("SELECT 1").execute(&state.pool).await.is_ok();
    let kafka = state.kafka.reachable(Duration::from_secs(2)).await;
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
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, "listening");
    println!("LISTENING {local}");
    Ok(listener)
}

/// Serves `router` on `addr` until `shutdown` fires; logs the bound address (port 0 works)
/// as `listening addr=…` so tests can find it.
pub async fn serve(
    addr: String,
    router: Router,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let listener = bind(&addr).await?;
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}
