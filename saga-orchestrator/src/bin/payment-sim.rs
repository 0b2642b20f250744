//! payment-sim binary: the local payment provider (see `saga_orchestrator::simulator`).

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    plumbing::telemetry::init("payment-sim");
    saga_orchestrator::simulator::run(saga_orchestrator::simulator::Settings::parse()).await
}
