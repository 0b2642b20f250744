//! projections: the read models (`models`, one module each: rows, fold, queries), the fold
//! engine that applies them (`fold`), the Kafka consumers that keep them current — one
//! consumer group per model, applying events idempotently (see `plumbing::projection`) —
//! and the CLI that rebuilds them from the events table (`replay`).

pub mod cli;
pub mod fold;
pub mod models;
pub mod replay;

use axum::Router;
use clap::Parser;
use plumbing::consumer::{self, ConsumerSettings};
use plumbing::ops::{self, OpsState};
use plumbing::settings::Infra;

pub use cli::{Command, ReplayArgs, run_command};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "projections",
    about = "Builds the read models from Kafka; `replay` and `verify` rebuild them from the events table"
)]
pub struct Settings {
    #[command(flatten)]
    pub infra: Infra,
    /// Operations endpoints (/health, /ready, /metrics).
    #[arg(long, env = "OPS_ADDR", default_value = "127.0.0.1:9101")]
    pub ops_addr: String,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Runs a consumer for every registered model until SIGTERM / Ctrl-C.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let pool = plumbing::db::connect(
        &settings.infra.database_url,
        settings.infra.database_max_connections,
    )
    .await?;
    let kafka = settings.infra.kafka();
    let shutdown = plumbing::shutdown::on_signal();

    let ops_router: Router =
        ops::router(OpsState::new(pool.clone(), kafka.clone(), shutdown.clone()));
    let ops_task = tokio::spawn(ops::serve(
        settings.ops_addr.clone(),
        ops_router,
        shutdown.clone(),
    ));

    let mut consumers = tokio::task::JoinSet::new();
    for model in models::ALL {
        let name = model.name();
        let topics = name
            .aggregate_types
            .iter()
            .map(|t| schemas::topics::topic_for(&kafka.topic_prefix, t))
            .collect();
        let mut consumer = ConsumerSettings::new(kafka.clone(), name.consumer, topics);
        consumer.health = Some(pool.clone());
        consumers.spawn(consumer::run(
            consumer,
            model.handler(pool.clone()),
            shutdown.clone(),
        ));
    }
    // One failing consumer stops the process (and so the others, cleanly), so a supervisor
    // restarts it rather than leaving a read model silently behind.
    let mut result = Ok(());
    while let Some(joined) = consumers.join_next().await {
        let outcome = joined.map_err(anyhow::Error::new).and_then(|r| r);
        if let Err(err) = outcome {
            tracing::error!(error = format!("{err:#}"), "a projection consumer failed");
            shutdown.cancel();
            result = Err(err);
        }
    }
    shutdown.cancel();
    let _ = ops_task.await;
    result
}
