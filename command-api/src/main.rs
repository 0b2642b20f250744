//! command-api binary: parse settings, start logging, serve.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    plumbing::telemetry::init("command-api");
    command_api::run(command_api::settings::Settings::parse()).await
}
