//! projections binary: builds the read models from Kafka; `projections replay <model|all>`
//! and `projections verify <model|all>` rebuild them from the events table; `projections
//! migrate [--grant-to ROLE]` applies migrations as the schema owner.

use std::process::ExitCode;

use clap::Parser;

// The replay folds millions of rows in memory on several threads and allocates for every
// key it touches: jemalloc's per-thread caches cost far less per allocation than glibc's
// arenas (malloc and free were a quarter of the replay's profile).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
