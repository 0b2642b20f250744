//! saga-orchestrator: the booking / payment / inventory process managers with durable timers.
//!
//! The process managers arrive with the booking issue; today the process connects, migrates
//! and serves its operations endpoints so the topology and its health checks are complete.

use clap::Parser;
use plumbing::ops::{self, OpsState};
use plumbing::settings::Infra;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "saga-orchestrator",
    about = "Drives bookings through payment and inventory"
)]
pub struct Settings {
    #[command(flatten)]
    pub infra: Infra,
    /// Operations endpoints (/health, /ready, /metrics).
    #[arg(long, env = "OPS_ADDR", default_value = "127.0.0.1:9102")]
    pub ops_addr: String,
}

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let pool = plumbing::db::connect(&settings.infra.database_url, 4).await?;
    let shutdown = plumbing::shutdown::on_signal();
    let router = ops::router(OpsState {
        pool,
        kafka: settings.infra.kafka(),
        metrics: ops::prometheus(),
    });
    ops::serve(settings.ops_addr, router, shutdown).await
}
