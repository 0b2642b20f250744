//! relay binary: publishes the events table to Kafka (see `command_api::relay`).

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    plumbing::telemetry::init("relay");
    command_api::relay::run(command_api::settings::RelaySettings::parse()).await
}
