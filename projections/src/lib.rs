//! projections: Kafka consumers that build the read models in PostgreSQL. Each projection is
//! its own consumer group, applies events idempotently (see `plumbing::projection`) and can be
//! rebuilt independently.

pub mod user_profiles;

use std::sync::Arc;

use axum::Router;
use clap::Parser;
use plumbing::consumer::{self, ConsumerSettings};
use plumbing::ops::{self, OpsState};
use plumbing::projection::{Projection, ProjectionHandler};
use plumbing::settings::Infra;

#[derive(Debug, Clone, Parser)]
#[command(name = "projections", about = "Builds the read models from Kafka")]
pub struct Settings {
    #[command(flatten)]
    pub infra: Infra,
    /// Operations endpoints (/health, /ready, /metrics).
    #[arg(long, env = "OPS_ADDR", default_value = "127.0.0.1:9101")]
    pub ops_addr: String,
}

/// Runs every projection until SIGTERM / Ctrl-C.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let pool = plumbing::db::connect(
        &settings.infra.database_url,
        settings.infra.database_max_connections,
    )
    .await?;
    let kafka = settings.infra.kafka();
    let shutdown = plumbing::shutdown::on_signal();

    let ops_router: Router = ops::router(OpsState {
        pool: pool.clone(),
        kafka: kafka.clone(),
        metrics: ops::prometheus(),
    });
    let ops_task = tokio::spawn(ops::serve(
        settings.ops_addr.clone(),
        ops_router,
        shutdown.clone(),
    ));

    let profiles = user_profiles::UserProfiles;
    let consumer_settings = ConsumerSettings::new(
        kafka.clone(),
        profiles.name(),
        vec![schemas::topics::topic_for(&kafka.topic_prefix, "user")],
    );
    let handler = Arc::new(ProjectionHandler::new(pool.clone(), profiles));
    let result = consumer::run(consumer_settings, handler, shutdown.clone()).await;
    shutdown.cancel();
    let _ = ops_task.await;
    result
}
