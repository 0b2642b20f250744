//! The `replay`, `verify` and `migrate` subcommands: arguments and what they print. All three
//! run as the schema owner (they create tables, or grant on them).

use std::time::Instant;

use chrono::{DateTime, Utc};
use plumbing::settings::Infra;

use crate::models;
use crate::replay::{self, Options};

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Rebuilds read models from the events table and swaps them in atomically while the
    /// live projections keep running; with --as-of and --into, rebuilds them as they stood
    /// at an instant into a schema of their own.
    Replay(ReplayArgs),
    /// Rebuilds read models into scratch tables and reports every difference from the live
    /// ones; exits non-zero on any.
    Verify(VerifyArgs),
    /// Applies pending migrations as the schema owner (DATABASE_URL), then grants the
    /// application role its privileges (DML only; events append-only), so the services
    /// can run as that role.
    Migrate(MigrateArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    /// The application role the services connect as.
    #[arg(long, env = "DATABASE_APP_ROLE")]
    pub grant_to: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// A read model (`user-profiles`, `catalog`, `availability`, `bookings`, `sales`,
    /// `invoices`) or `all`.
    pub model: String,
    /// Events read from the store per statement.
    #[arg(long, default_value_t = 10_000)]
    pub batch: i64,
    /// Rebuild from the events recorded at or before this instant (RFC 3339, e.g.
    /// 2026-11-26T19:02:13Z); needs --into.
    #[arg(long, requires = "into")]
    pub as_of: Option<DateTime<Utc>>,
    /// Leave the rebuilt tables (and their `consumer_applied` rows) in this new schema
    /// instead of swapping them in.
    #[arg(long)]
    pub into: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// A read model or `all`.
    pub model: String,
    /// Events read from the store per statement.
    #[arg(long, default_value_t = 10_000)]
    pub batch: i64,
}

/// Runs a subcommand; `Ok(false)` when verify found differences.
pub async fn run_command(infra: &Infra, command: &Command) -> anyhow::Result<bool> {
    match command {
        Command::Replay(args) => replay(infra, args).await.map(|()| true),
        Command::Verify(args) => verify(infra, args).await,
        Command::Migrate(args) => migrate(infra, args).await.map(|()| true),
    }
}

async fn migrate(infra: &Infra, args: &MigrateArgs) -> anyhow::Result<()> {
    let pool = plumbing::db::connect(&infra.database_url, 2).await?;
    anyhow::ensure!(
        plumbing::privileges::may_migrate(&pool).await?,
        "this role may not create tables: run migrations as the schema owner"
    );
    println!("migrations applied");
    if let Some(role) = &args.grant_to {
        plumbing::privileges::grant_application_role(&pool, role).await?;
        println!("granted the application privileges to {role}");
    }
    Ok(())
}

async fn replay(infra: &Infra, args: &ReplayArgs) -> anyhow::Result<()> {
    let models = models::select(&args.model)?;
    // Each model writes on its own connection, beside the one reading the store.
    let pool = plumbing::db::connect(&infra.database_url, u32::try_from(models.len())? + 4).await?;
    let started = Instant::now();
    let options = Options {
        batch: args.batch.max(1),
        as_of: args.as_of,
        into: args.into.clone(),
    };
    let replayed = replay::replay(&pool, &models, &options).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let outcome = match (&args.into, &args.as_of) {
        (Some(into), Some(at)) => format!("rebuilt as of {} into schema {into}", at.to_rfc3339()),
        (Some(into), None) => format!("rebuilt into schema {into}"),
        _ => "swapped in".to_owned(),
    };
    for r in &replayed {
        println!(
            "{}: {} events replayed in {:.2} s ({:.0} events/s), {} rows, {outcome}",
            r.model,
            r.events,
            r.elapsed.as_secs_f64(),
            r.per_second(),
            r.rows,
        );
    }
    let store: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await?;
    println!(
        "{} read model(s) rebuilt from a store of {store} events in {elapsed:.2} s: \
         {:.0} store events/s, {:.0} applications/s",
        replayed.len(),
        store as f64 / elapsed.max(1e-9),
        replayed.iter().map(|r| r.events).sum::<u64>() as f64 / elapsed.max(1e-9),
    );
    Ok(())
}

async fn verify(infra: &Infra, args: &VerifyArgs) -> anyhow::Result<bool> {
    let models = models::select(&args.model)?;
    let pool = plumbing::db::connect(&infra.database_url, 6).await?;
    let mut clean = true;
    for (model, differences) in replay::verify(&pool, &models, args.batch.max(1)).await? {
        if differences.is_empty() {
            println!("{model}: no difference");
        }
        for d in differences {
            clean = false;
            println!(
                "{model} {}: {} rows only in the rebuilt model, {} only in the live one",
                d.table, d.only_rebuilt.1, d.only_live.1
            );
            for row in d.only_rebuilt.0 {
                println!("  rebuilt: {row}");
            }
            for row in d.only_live.0 {
                println!("  live:    {row}");
            }
        }
    }
    Ok(clean)
}
