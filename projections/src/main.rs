//! projections binary: builds the read models from Kafka; `projections replay <model|all>`
//! and `projections verify <model|all>` rebuild them from the events table.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    plumbing::telemetry::init("projections");
    let settings = projections::Settings::parse();
    match &settings.command {
        None => projections::run(settings).await.map(|()| ExitCode::SUCCESS),
        Some(command) => Ok(
            if projections::run_command(&settings.infra, command).await? {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            },
        ),
    }
}
