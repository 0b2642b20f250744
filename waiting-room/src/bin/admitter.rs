//! admitter binary: admits waiting-room users at each event's rate (see
//! `waiting_room::admitter`). Run several for failover; one is active at a time.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    plumbing::telemetry::init("admitter");
    waiting_room::admitter::run(waiting_room::admitter::AdmitterSettings::parse()).await
}
