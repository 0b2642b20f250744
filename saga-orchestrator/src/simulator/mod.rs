//! A local payment provider modelled on card test tokens: `tok_visa` succeeds, `tok_decline`
//! declines, `tok_timeout` is accepted and never answered. Answers arrive asynchronously as
//! HMAC-signed webhooks (API.md). Charges are idempotent by payment id (one charge however
//! often it is asked), and the ledger and the outgoing webhooks live in PostgreSQL (schema
//! `payment_sim`), so a killed simulator neither charges twice nor forgets to answer.

mod ledger;
mod outbox;

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use rand::Rng;
use sqlx::PgPool;

use crate::provider::{ChargeRequest, RefundRequest};

#[derive(Debug, Clone, Parser)]
#[command(name = "payment-sim", about = "Local payment provider simulator")]
pub struct Settings {
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://ticketing:ticketing@127.0.0.1:5432/ticketing"
    )]
    pub database_url: String,
    #[arg(long, env = "PAYMENT_SIM_ADDR", default_value = "127.0.0.1:8090")]
    pub addr: String,
    /// Operations listener: `/health` and `/ledger` (which lists every charge), apart from
    /// the port the saga calls.
    #[arg(long, env = "OPS_ADDR", default_value = "127.0.0.1:9105")]
    pub ops_addr: String,
    /// Where answers are posted.
    #[arg(
        long,
        env = "PAYMENT_WEBHOOK_URL",
        default_value = "http://127.0.0.1:8080/api/payments/webhook"
    )]
    pub webhook_url: String,
    #[arg(long, env = "PAYMENT_WEBHOOK_SECRET", hide_env_values = true)]
    pub payment_webhook_secret: String,
    /// Delay before a charge is answered, in milliseconds.
    #[arg(long, env = "PAYMENT_SIM_LATENCY_MS", default_value_t = 200)]
    pub latency_ms: u64,
    /// Fraction (0..1) of charge requests answered 503 before anything is recorded.
    #[arg(long, env = "PAYMENT_SIM_FAILURE_RATE", default_value_t = 0.0)]
    pub failure_rate: f64,
}

#[derive(Clone)]
struct SimState {
    pool: PgPool,
    latency: Duration,
    failure_rate: f64,
}

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    plumbing::secrets::check("PAYMENT_WEBHOOK_SECRET", &settings.payment_webhook_secret)?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect(&settings.database_url)
        .await?;
    ledger::migrate(&pool).await?;
    let shutdown = plumbing::shutdown::on_signal();
    let sender = outbox::Sender {
        pool: pool.clone(),
        url: settings.webhook_url.clone(),
        secret: settings.payment_webhook_secret.clone().into_bytes(),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?,
    };
    let sending = tokio::spawn(sender.run(shutdown.clone()));
    let state = SimState {
        pool,
        latency: Duration::from_millis(settings.latency_ms),
        failure_rate: settings.failure_rate.clamp(0.0, 1.0),
    };
    let ops_listener =
        plumbing::ops::spawn_listener(&settings.ops_addr, ops_app(state.clone()), shutdown.clone())
            .await?;
    let served = plumbing::ops::serve(settings.addr.clone(), app(state), shutdown.clone()).await;
    shutdown.cancel();
    let _ = sending.await;
    let _ = ops_listener.await;
    served
}

fn app(state: SimState) -> Router {
    Router::new()
        .merge(plumbing::ops::public_router())
        .route("/v1/charges", post(charge))
        .route("/v1/refunds", post(refund))
        .with_state(state)
}

fn ops_app(state: SimState) -> Router {
    Router::new()
        .merge(plumbing::ops::public_router())
        .route("/ledger", get(ledger_view))
        .with_state(state)
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// A database failure: logged here with its cause, answered without it (the caller learns
/// nothing about the schema or the connection).
fn internal(err: &sqlx::Error) -> Response {
    tracing::error!(error = %err, "payment simulator storage failed");
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

async fn charge(State(state): State<SimState>, Json(request): Json<ChargeRequest>) -> Response {
    if state.failure_rate > 0.0 && rand::rng().random_bool(state.failure_rate) {
        return error(StatusCode::SERVICE_UNAVAILABLE, "simulated outage");
    }
    match ledger::charge(&state.pool, &request, state.latency).await {
        Ok(status) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "payment_id": request.payment_id, "status": status })),
        )
            .into_response(),
        Err(err) => internal(&err),
    }
}

async fn refund(State(state): State<SimState>, Json(request): Json<RefundRequest>) -> Response {
    match ledger::refund(&state.pool, &request).await {
        Ok(true) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "payment_id": request.payment_id })),
        )
            .into_response(),
        Ok(false) => error(StatusCode::CONFLICT, "nothing captured to refund"),
        Err(err) => internal(&err),
    }
}

async fn ledger_view(State(state): State<SimState>) -> Response {
    match ledger::entries(&state.pool).await {
        Ok(entries) => Json(entries).into_response(),
        Err(err) => internal(&err),
    }
}
