//! projections: Kafka consumers that build the read models in PostgreSQL. Each projection is
//! its own consumer group, applies events idempotently (see `plumbing::projection`) and can be
//! rebuilt independently.

pub mod availability;
pub mod bookings;
pub mod catalog;
mod ids;
pub mod invoices;
pub mod replay;
pub mod sales;
pub mod user_profiles;

use std::sync::Arc;

use axum::Router;
use clap::Parser;
use plumbing::consumer::Handler;
use plumbing::consumer::{self, ConsumerSettings};
use plumbing::ops::{self, OpsState};
use plumbing::projection::ProjectionHandler;
use plumbing::settings::Infra;
use schemas::read_models::{AVAILABILITY, BOOKINGS, CATALOG, INVOICES, SALES, USER_PROFILES};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "projections",
    about = "Builds the read models from Kafka; `replay` and `verify` rebuild them from the events table"
)]
pub struct Settings {
    #[command(flatten)]
    pub infra: Infra,
    /// Operations endpoints (/health, /ready, /metrics).
    #[arg(long, env = "OPS_ADDR", default_value = "127.0.0.1:9101")]
    pub ops_addr: String,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Rebuilds read models from the events table and swaps them in atomically while the
    /// live projections keep running.
    Replay(ReplayArgs),
    /// Rebuilds read models into scratch tables and reports every difference from the live
    /// ones; exits non-zero on any.
    Verify(ReplayArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// A read model (`user-profiles`, `catalog`, `availability`, `bookings`, `sales`, `invoices`) or `all`.
    pub model: String,
    /// Events per transaction: a transaction holds back the relay's horizon while it
    /// runs, so batches stay small.
    #[arg(long, default_value_t = 250)]
    pub batch: i64,
}

/// Every read model with the projection that builds it.
pub fn models() -> Vec<replay::Model> {
    use plumbing::projection::Projection;
    let entry = |name, projection: Box<dyn Projection>| replay::Model { name, projection };
    vec![
        entry(USER_PROFILES, Box::new(user_profiles::UserProfiles)),
        entry(CATALOG, Box::new(catalog::Catalog)),
        entry(AVAILABILITY, Box::new(availability::Availability)),
        entry(BOOKINGS, Box::new(bookings::Bookings)),
        entry(SALES, Box::new(sales::Sales)),
        entry(INVOICES, Box::new(invoices::Invoices)),
    ]
}

/// The models `name` selects (`all` or one).
pub fn select(name: &str) -> anyhow::Result<Vec<replay::Model>> {
    let all = models();
    if name == "all" {
        return Ok(all);
    }
    let names: Vec<&str> = all.iter().map(|m| m.name.consumer).collect();
    let chosen: Vec<replay::Model> = all
        .into_iter()
        .filter(|m| m.name.consumer == name)
        .collect();
    anyhow::ensure!(
        !chosen.is_empty(),
        "no read model {name:?}; choose one of {names:?} or all"
    );
    Ok(chosen)
}

/// Runs the `replay` / `verify` subcommands; `Ok(false)` when verify found differences.
pub async fn run_command(infra: &Infra, command: &Command) -> anyhow::Result<bool> {
    match command {
        Command::Replay(args) => {
            let models = select(&args.model)?;
            // The models are rebuilt side by side, each in its own task on its own connection:
            // one replay is bound by its round trips (a sleep and a wake-up on each side per
            // statement), not by the CPU.
            let connections = u32::try_from(models.len()).unwrap_or(1) + 1;
            let pool = plumbing::db::connect(&infra.database_url, connections).await?;
            let bars = indicatif::MultiProgress::new();
            let started = std::time::Instant::now();
            let tasks: Vec<_> = models
                .into_iter()
                .map(|model| {
                    let (pool, bars, batch) = (pool.clone(), bars.clone(), args.batch.max(1));
                    tokio::spawn(async move {
                        let replayed = replay::replay(&pool, &model, batch, &bars).await;
                        (model.name.consumer, replayed)
                    })
                })
                .collect();
            let mut replayed = Vec::new();
            for task in tasks {
                let (name, outcome) = task.await?;
                replayed.push((name, outcome?));
            }
            for (name, replayed) in &replayed {
                println!(
                    "{}: {} events replayed in {:.2} s ({:.0} events/s), swapped in",
                    name,
                    replayed.events,
                    replayed.elapsed.as_secs_f64(),
                    replayed.per_second()
                );
            }
            let store: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
                .fetch_one(&pool)
                .await?;
            let elapsed = started.elapsed().as_secs_f64();
            println!(
                "{} read model(s) rebuilt from a store of {store} events in {elapsed:.2} s: \
                 {:.0} store events/s, {:.0} applications/s",
                replayed.len(),
                store as f64 / elapsed.max(1e-9),
                replayed.iter().map(|(_, r)| r.events).sum::<u64>() as f64 / elapsed.max(1e-9),
            );
            Ok(true)
        }
        Command::Verify(args) => {
            let pool = plumbing::db::connect(&infra.database_url, 4).await?;
            let mut clean = true;
            for model in select(&args.model)? {
                let differences = replay::verify(&pool, &model, args.batch.max(1)).await?;
                if differences.is_empty() {
                    println!("{}: no difference", model.name.consumer);
                }
                for d in differences {
                    clean = false;
                    println!(
                        "{} {}: {} rows only in the rebuilt model, {} only in the live one",
                        model.name.consumer, d.table, d.only_rebuilt.1, d.only_live.1
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
    }
}

/// Runs every projection until SIGTERM / Ctrl-C.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let pool = plumbing::db::connect(
        &settings.infra.database_url,
        settings.infra.database_max_connections,
    )
    .await?;
    let kafka = settings.infra.kafka();
    let shutdown = plumbing::shutdown::on_signal();

    let ops_router: Router = ops::router(OpsState {
        pool: pool.clone(),
        kafka: kafka.clone(),
        metrics: ops::prometheus(),
    });
    let ops_task = tokio::spawn(ops::serve(
        settings.ops_addr.clone(),
        ops_router,
        shutdown.clone(),
    ));

    let prefix = kafka.topic_prefix.clone();
    let topics = |types: &[&str]| -> Vec<String> {
        types
            .iter()
            .map(|t| schemas::topics::topic_for(&prefix, t))
            .collect()
    };
    let mut consumers = tokio::task::JoinSet::new();
    let mut spawn = |projection: Arc<dyn Handler>, name: &str, types: &[&str]| {
        let mut settings = ConsumerSettings::new(kafka.clone(), name, topics(types));
        settings.health = Some(pool.clone());
        consumers.spawn(consumer::run(settings, projection, shutdown.clone()));
    };
    spawn(
        Arc::new(ProjectionHandler::new(
            pool.clone(),
            user_profiles::UserProfiles,
        )),
        USER_PROFILES.consumer,
        USER_PROFILES.aggregate_types,
    );
    spawn(
        Arc::new(ProjectionHandler::new(pool.clone(), catalog::Catalog)),
        CATALOG.consumer,
        CATALOG.aggregate_types,
    );
    spawn(
        Arc::new(ProjectionHandler::new(
            pool.clone(),
            availability::Availability,
        )),
        AVAILABILITY.consumer,
        AVAILABILITY.aggregate_types,
    );
    spawn(
        Arc::new(ProjectionHandler::new(pool.clone(), bookings::Bookings)),
        BOOKINGS.consumer,
        BOOKINGS.aggregate_types,
    );
    spawn(
        Arc::new(ProjectionHandler::new(pool.clone(), sales::Sales)),
        SALES.consumer,
        SALES.aggregate_types,
    );
    spawn(
        Arc::new(ProjectionHandler::new(pool.clone(), invoices::Invoices)),
        INVOICES.consumer,
        INVOICES.aggregate_types,
    );
    // One failing consumer stops the process (and so the others, cleanly), so a supervisor
    // restarts it rather than leaving a read model silently behind.
    let mut result = Ok(());
    while let Some(joined) = consumers.join_next().await {
        let outcome = joined.map_err(anyhow::Error::new).and_then(|r| r);
        if let Err(err) = outcome {
            tracing::error!(error = format!("{err:#}"), "a projection consumer failed");
            shutdown.cancel();
            result = Err(err);
        }
    }
    shutdown.cancel();
    let _ = ops_task.await;
    result
}
