//! saga-orchestrator binary.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    plumbing::telemetry::init("saga-orchestrator");
    saga_orchestrator::run(saga_orchestrator::Settings::parse()).await
}
