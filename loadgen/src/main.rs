//! loadgen: drives the real HTTP and WebSocket API of a running platform and reports
//! throughput, latency percentiles (HDR histograms), end-to-end latency to the WebSocket
//! frame, relay and projection lag, and correctness (no seat sold twice, sold = tickets,
//! nothing held after the TTL). `pgbench` with an equivalent write runs first as the
//! same-machine reference. `compose/bench.sh <scenario>` starts everything and runs it;
//! BENCHMARKS.md has the figures.

mod api;
mod checks;
mod drive;
mod pgbench;
mod record;
mod scenarios;
mod setup;
mod statements;
mod watch;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "loadgen", about = "Load generator and benchmark scenarios")]
struct Cli {
    #[command(flatten)]
    target: Target,
    #[command(subcommand)]
    scenario: Scenario,
}

/// Where the platform runs.
#[derive(Debug, Clone, Args)]
pub struct Target {
    #[arg(long, env = "LOADGEN_API", default_value = "http://127.0.0.1:8080")]
    pub api: String,
    #[arg(long, env = "LOADGEN_WS", default_value = "http://127.0.0.1:8081")]
    pub notifier: String,
    /// The notifier's operations listener (`/stats`), which is not on its public port.
    #[arg(
        long,
        env = "LOADGEN_NOTIFIER_OPS",
        default_value = "http://127.0.0.1:9104"
    )]
    pub notifier_ops: String,
    /// The platform's database: read for lag and correctness checks, and pgbench's target.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://ticketing:ticketing@127.0.0.1:5432/ticketing"
    )]
    pub database_url: String,
    /// The bootstrap admin, to grant the organizer role.
    #[arg(
        long,
        env = "BOOTSTRAP_ADMIN_EMAIL",
        default_value = "admin@example.com"
    )]
    pub admin_email: String,
    #[arg(
        long,
        env = "BOOTSTRAP_ADMIN_PASSWORD",
        default_value = "change me please",
        hide_env_values = true
    )]
    pub admin_password: String,
    /// Hold TTL the platform runs with; the "nothing held" check waits this long past the
    /// last hold (plus the payment timeout).
    #[arg(long, env = "HOLD_TTL_SECONDS", default_value_t = 600)]
    pub hold_ttl_seconds: u64,
    #[arg(long, env = "PAYMENT_TIMEOUT_SECONDS", default_value_t = 120)]
    pub payment_timeout_seconds: u64,
    /// Skip the pgbench reference (e.g. in CI's small correctness run).
    #[arg(long)]
    pub no_pgbench: bool,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Many events and sections, every virtual user on its own seats.
    Uncontended(scenarios::onsale::UncontendedArgs),
    /// Buyers on one seated section (5,000 on 1,000 seats by default).
    HotSection(scenarios::onsale::HotSectionArgs),
    /// The 21,200-place arena, 80% of buyers on two sections, 90% of payments succeed.
    MixedOnsale(scenarios::onsale::MixedArgs),
    /// ≥ 10,000 WebSocket connections subscribed to a hot-section event.
    Fanout(scenarios::onsale::FanoutArgs),
    /// 100,000 users join one waiting room; joins/s and admission-rate accuracy.
    Queue(scenarios::queue::QueueArgs),
    /// 100,000 requests naming ids that do not exist; command-api's memory must stay flat.
    RandomIds(scenarios::random_ids::RandomIdsArgs),
    /// Only the pgbench reference at a given concurrency.
    Pgbench(scenarios::PgbenchArgs),
    /// Grows the event store with copies (fresh ids) of the streams already in it, for the
    /// replay benchmark.
    CloneStore(scenarios::clone_store::CloneStoreArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    plumbing::telemetry::init("loadgen");
    let cli = Cli::parse();
    let outcome = match cli.scenario {
        Scenario::Uncontended(args) => scenarios::onsale::uncontended(&cli.target, args).await,
        Scenario::HotSection(args) => scenarios::onsale::hot_section(&cli.target, args).await,
        Scenario::MixedOnsale(args) => scenarios::onsale::mixed(&cli.target, args).await,
        Scenario::Fanout(args) => scenarios::onsale::fanout(&cli.target, args).await,
        Scenario::Queue(args) => scenarios::queue::run(&cli.target, args).await,
        Scenario::RandomIds(args) => scenarios::random_ids::run(&cli.target, args).await,
        Scenario::Pgbench(args) => scenarios::pgbench_only(&cli.target, args).await,
        Scenario::CloneStore(args) => scenarios::clone_store::run(&cli.target, args).await,
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("CORRECTNESS CHECK FAILED");
            ExitCode::from(2)
        }
        Err(err) => {
            eprintln!("loadgen failed: {err:#}");
            ExitCode::FAILURE
        }
    }
}
