//! projections: Kafka consumers that build the read models in PostgreSQL. Each projection is
//! its own consumer group, applies events idempotently (see `plumbing::projection`) and can be
//! rebuilt independently.

pub mod availability;
pub mod bookings;
pub mod catalog;
mod ids;
pub mod user_profiles;

use std::sync::Arc;

use axum::Router;
use clap::Parser;
use plumbing::consumer::Handler;
use plumbing::consumer::{self, ConsumerSettings};
use plumbing::ops::{self, OpsState};
use plumbing::projection::ProjectionHandler;
use plumbing::settings::Infra;
use schemas::read_models::{AVAILABILITY, BOOKINGS, CATALOG, USER_PROFILES};

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

    let prefix = kafka.topic_prefix.clone();
    let topics = |types: &[&str]| -> Vec<String> {
        types
            .iter()
            .map(|t| schemas::topics::topic_for(&prefix, t))
            .collect()
    };
    let mut consumers = tokio::task::JoinSet::new();
    let mut spawn = |projection: Arc<dyn Handler>, name: &str, types: &[&str]| {
        let settings = ConsumerSettings::new(kafka.clone(), name, topics(types));
        consumers.spawn(consumer::run(settings, projection, shutdown.clone()));
    };
    spawn(
        Arc::new(ProjectionHandler::new(
            pool.clone(),
            user_profiles::UserProfiles,
        )),
        USER_PROFILES.consumer,
        USER_PROFILES.aggregate_types,
    );
    spawn(
        Arc::new(ProjectionHandler::new(pool.clone(), catalog::Catalog)),
        CATALOG.consumer,
        CATALOG.aggregate_types,
    );
    spawn(
        Arc::new(ProjectionHandler::new(
            pool.clone(),
            availability::Availability,
        )),
        AVAILABILITY.consumer,
        AVAILABILITY.aggregate_types,
    );
    spawn(
        Arc::new(ProjectionHandler::new(pool.clone(), bookings::Bookings)),
        BOOKINGS.consumer,
        BOOKINGS.aggregate_types,
    );
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
