//! notifier binary.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    plumbing::telemetry::init("notifier");
    notifier::run(notifier::Settings::parse()).await
}
