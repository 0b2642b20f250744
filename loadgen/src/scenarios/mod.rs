//! One function per scenario of BENCHMARKS.md.

pub mod clone_store;
pub mod onsale;
pub mod queue;
pub mod random_ids;

use clap::Args;

use crate::Target;

#[derive(Debug, Args)]
pub struct PgbenchArgs {
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
}

pub async fn pgbench_only(target: &Target, args: PgbenchArgs) -> anyhow::Result<bool> {
    let pool = plumbing::db::connect(&target.database_url, 4).await?;
    crate::pgbench::reference(&pool, &target.database_url, args.clients, args.seconds).await?;
    Ok(true)
}

/// A short unique name for this run's accounts and events.
pub fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_owned()
}
