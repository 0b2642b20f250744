//! projections binary: builds the read models from Kafka.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    plumbing::telemetry::init("projections");
    projections::run(projections::Settings::parse()).await
}
