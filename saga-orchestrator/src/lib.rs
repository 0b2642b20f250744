//! saga-orchestrator: drives bookings through payment, inventory and tickets.
//!
//! `reactions` turns events into durable steps (`tasks`, in PostgreSQL, so a restart loses no
//! deadline); `worker` runs due steps, deciding with the pure `decide` from the aggregates'
//! current state; `provider` is the payment port (HTTP adapter with a circuit breaker), and
//! `simulator` the local payment provider behind it (the `payment-sim` binary).

pub mod decide;
pub mod invoicing;
pub mod payment_tokens;
pub mod provider;
pub mod reactions;
pub mod simulator;
pub mod step;
pub mod tasks;
pub mod waitlist;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use clap::Parser;
use plumbing::consumer::{self, ConsumerSettings};
use plumbing::ops::{self, OpsState};
use plumbing::settings::Infra;
use plumbing::store::AggregateStore;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "saga-orchestrator",
    about = "Drives bookings through payment and inventory"
)]
pub struct Settings {
    #[command(flatten)]
    pub infra: Infra,
    /// Operations endpoints (/health, /ready, /metrics).
    #[arg(long, env = "OPS_ADDR", default_value = "127.0.0.1:9102")]
    pub ops_addr: String,
    /// Base URL of the payment provider (the simulator locally).
    #[arg(
        long,
        env = "PAYMENT_PROVIDER_URL",
        default_value = "http://127.0.0.1:8090"
    )]
    pub payment_provider_url: String,
    /// How often due steps are looked for, in milliseconds (timer precision).
    #[arg(long, env = "SAGA_POLL_MS", default_value_t = 200)]
    pub poll_ms: u64,
    /// Attempts of a failing step before it is dead-lettered.
    #[arg(long, env = "SAGA_MAX_ATTEMPTS", default_value_t = 20)]
    pub max_attempts: i32,
    /// How long a waiting-list offer holds its places, in minutes (fractions allowed).
    #[arg(long, env = "WAITLIST_OFFER_MINUTES", default_value_t = 15.0)]
    pub waitlist_offer_minutes: f64,
}

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let pool = plumbing::db::connect(
        &settings.infra.database_url,
        settings.infra.database_max_connections,
    )
    .await?;
    let kafka = settings.infra.kafka();
    let shutdown = plumbing::shutdown::on_signal();
    let ops_router: Router =
        ops::router(OpsState::new(pool.clone(), kafka.clone(), shutdown.clone()));
    let ops_task = tokio::spawn(ops::serve(
        settings.ops_addr.clone(),
        ops_router,
        shutdown.clone(),
    ));

    // One cache per aggregate type for the whole process: the reactions keep it warm from
    // the events they consume, the worker and invoicing decide on it.
    let stores = worker::Stores {
        // Version-1 payment requests carried a card token; upcast, they carry its label.
        bookings: Arc::new(
            AggregateStore::new(pool.clone(), ()).with_upcasters(schemas::upcast::upcasters()),
        ),
        payments: Arc::new(
            AggregateStore::new(pool.clone(), ()).with_upcasters(schemas::upcast::upcasters()),
        ),
        // Sections first in a unit's lock order, as in command-api (see `with_lock_rank`).
        inventory: Arc::new(
            AggregateStore::new(pool.clone(), ())
                .with_snapshots(100)
                .with_lock_rank(10),
        ),
        shows: Arc::new(
            AggregateStore::new(pool.clone(), ()).with_upcasters(schemas::upcast::upcasters()),
        ),
        vouchers: Arc::new(AggregateStore::new(pool.clone(), ())),
        customers: Arc::new(AggregateStore::new(pool.clone(), ())),
        waitlists: Arc::new(AggregateStore::new(pool.clone(), ()).with_snapshots(100)),
    };
    let worker = worker::Worker {
        pool: pool.clone(),
        stores: stores.clone(),
        provider: Arc::new(provider::HttpProvider::new(&settings.payment_provider_url)?),
        producer: kafka.producer()?,
        kafka: kafka.clone(),
        poll: Duration::from_millis(settings.poll_ms),
        max_attempts: settings.max_attempts.max(1),
        waitlist_offer: offer_duration(settings.waitlist_offer_minutes)?,
    };
    let worker_task = tokio::spawn(worker.run(shutdown.clone()));

    let topics = ["booking", "payment", "inventory", "show", "waitlist"]
        .iter()
        .map(|t| schemas::topics::topic_for(&kafka.topic_prefix, t))
        .collect();
    let invoicing = Arc::new(invoicing::Invoicing {
        bookings: stores.bookings.clone(),
        shows: stores.shows.clone(),
        ledgers: Arc::new(AggregateStore::new(pool.clone(), ()).with_snapshots(100)),
    });
    // A failing consumer stops the process (and so the other one), so a supervisor restarts
    // it rather than leaving invoices or the saga silently behind.
    let stop_on_error = |shutdown: tokio_util::sync::CancellationToken| {
        move |result: anyhow::Result<()>| {
            if result.is_err() {
                shutdown.cancel();
            }
            result
        }
    };
    let invoicing_task = tokio::spawn({
        let settings = ConsumerSettings::new(
            kafka.clone(),
            invoicing::CONSUMER,
            vec![schemas::topics::topic_for(&kafka.topic_prefix, "booking")],
        );
        let stop = stop_on_error(shutdown.clone());
        let shutdown = shutdown.clone();
        async move { stop(consumer::run(settings, invoicing, shutdown).await) }
    });
    let reactions = Arc::new(reactions::Reactions { pool, stores });
    let consumed = stop_on_error(shutdown.clone())(
        consumer::run(
            ConsumerSettings::new(kafka, reactions::CONSUMER, topics),
            reactions,
            shutdown.clone(),
        )
        .await,
    );
    shutdown.cancel();
    let _ = worker_task.await;
    if let Ok(Err(err)) = invoicing_task.await {
        tracing::error!(error = format!("{err:#}"), "invoicing stopped");
    }
    let _ = ops_task.await;
    consumed
}

/// `WAITLIST_OFFER_MINUTES` as a duration: positive and at most a week.
fn offer_duration(minutes: f64) -> anyhow::Result<chrono::Duration> {
    anyhow::ensure!(
        minutes.is_finite() && minutes > 0.0 && minutes <= 7.0 * 24.0 * 60.0,
        "WAITLIST_OFFER_MINUTES must be above 0 and at most a week, not {minutes}"
    );
    Ok(chrono::Duration::milliseconds(
        (minutes * 60_000.0).round() as i64
    ))
}
