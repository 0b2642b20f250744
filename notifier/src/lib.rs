//! notifier: Kafka → WebSocket rooms and email.
//!
//! The WebSocket fan-out and email arrive with the notifier issue; today the process connects
//! and serves its operations endpoints on the notifier port so the topology is complete.

use clap::Parser;
use plumbing::ops::{self, OpsState};
use plumbing::settings::Infra;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "notifier",
    about = "Pushes events to WebSocket clients and sends email"
)]
pub struct Settings {
    #[command(flatten)]
    pub infra: Infra,
    /// WebSocket and operations endpoints.
    #[arg(long, env = "NOTIFIER_ADDR", default_value = "127.0.0.1:8081")]
    pub http_addr: String,
}

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let pool = plumbing::db::connect(&settings.infra.database_url, 4).await?;
    let shutdown = plumbing::shutdown::on_signal();
    let router = ops::router(OpsState {
        pool,
        kafka: settings.infra.kafka(),
        metrics: ops::prometheus(),
    });
    ops::serve(settings.http_addr, router, shutdown).await
}
