//! Rebuilding read models from the events table — the source of truth, not Kafka — to swap
//! them in (`replay`), to compare them with the live ones (`verify`), or to look at them as
//! they stood at a past instant (`replay --as-of … --into …`).
//!
//! **Build.** The store is read once for every selected model with the relay's gap-safe feed
//! (only transactions older than every running one, so a transaction committing late is
//! read later, never stepped over); each batch is decoded once and folded by every model
//! on its own thread, with the same `apply` and claim rule as the live consumer, into
//! complete tables in memory. The rows are then written with `COPY` into empty copies of
//! the model's tables in a scratch schema (`replay_<model>`), in chunks of short
//! transactions, and the applied sequences into its copy of `consumer_applied`.
//!
//! **Swap.** What arrived meanwhile is folded and written (one statement per table); then,
//! in one transaction that holds the model's advisory lock exclusively (live applications
//! take it shared, so none is in flight and new ones wait), the last events are applied, the
//! live tables move out and the scratch ones in, and `consumer_applied` takes the rebuilt
//! sequences. Queries see the old model or the new one, never a half-built one. Nothing is
//! missed or applied twice afterwards: the live consumer has applied only events the relay
//! published, all below the replay's final horizon, so the rebuilt model holds them; events
//! the replay applied that the consumer has not received yet are skipped by its claims
//! when they arrive; and it keeps its Kafka offsets, so everything newer still comes.
//!
//! **Verify** builds into `verify_<model>` the same way, waits until the live model has
//! applied every event, pauses it (the lock) and compares table by table.
//!
//! **Time travel** (`--as-of T --into S`) builds from the events recorded at or before T
//! (their transaction had begun by then) into schema S and leaves it there.

pub mod build;
mod progress;
pub mod rebuild;
pub mod swap;
pub mod write;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use plumbing::feed::{Cursor, Filter};
use sqlx::PgPool;

use crate::models::Registered;
use progress::Progress;
pub use swap::Difference;

/// How to rebuild.
#[derive(Debug, Clone)]
pub struct Options {
    /// Events read per statement.
    pub batch: i64,
    /// Only events recorded at or before this instant.
    pub as_of: Option<DateTime<Utc>>,
    /// Leave the rebuilt tables in this schema instead of swapping them in.
    pub into: Option<String>,
}

/// What a replay did for one model.
#[derive(Debug, Clone, Copy)]
pub struct Replayed {
    pub model: &'static str,
    pub events: u64,
    pub rows: u64,
    pub elapsed: Duration,
}

impl Replayed {
    pub fn per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn scratch_schema(kind: &str, consumer: &str) -> String {
    format!("{kind}_{}", consumer.replace('-', "_"))
}

/// A schema name an operator may give (`--into`): a plain lower-case identifier that is
/// not one the system uses.
pub fn check_schema_name(name: &str) -> anyhow::Result<()> {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let reserved = name == "public"
        || name.starts_with("pg_")
        || ["replay_", "verify_", "retired_"]
            .iter()
            .any(|p| name.starts_with(p));
    anyhow::ensure!(
        plain && !reserved,
        "{name:?} is not a schema to rebuild into: use lower-case letters, digits and _, \
         not public and not a pg_, replay_, verify_ or retired_ name"
    );
    Ok(())
}

/// Rebuilds `models` side by side from one read of the store; swaps each in, or with
/// `options.into` leaves them in that (new) schema.
pub async fn replay(
    pool: &PgPool,
    models: &[&'static dyn Registered],
    options: &Options,
) -> anyhow::Result<Vec<Replayed>> {
    let started = Instant::now();
    let mut conn = pool.acquire().await?.detach();
    if let Some(into) = &options.into {
        check_schema_name(into)?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                .bind(into)
                .fetch_one(&mut conn)
                .await?;
        anyhow::ensure!(!exists, "schema {into} exists: drop it or choose another");
    }
    let schema_of = |consumer: &str| {
        options
            .into
            .clone()
            .unwrap_or_else(|| scratch_schema("replay", consumer))
    };
    for model in models {
        let schema = schema_of(model.name().consumer);
        if options.into.is_none() {
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(&mut conn)
                .await?;
        }
        write::prepare(&mut conn, &schema, &model.tables()).await?;
        if options.into.is_some() {
            write::prepare_applied(&mut conn, &schema).await?;
        }
    }
    let (cursor, rebuilders) = build(&mut conn, models, options).await?;
    let mut tasks = Vec::new();
    for rebuilder in rebuilders {
        let (pool, options) = (pool.clone(), options.clone());
        let schema = schema_of(rebuilder.name().consumer);
        let cursor = cursor.clone();
        tasks.push(tokio::spawn(async move {
            let model = rebuilder.name().consumer;
            let kept = options.into.is_some();
            let live = (!kept).then(|| {
                let pool = pool.clone();
                tokio::spawn(async move { swap::LiveSequences::read(&pool, model).await })
            });
            let (rebuilder, written) = write::write(&pool, &schema, rebuilder, kept).await?;
            let mut conn = write::connect_into(&pool, &schema).await?;
            let mut events = rebuilder.events();
            if let Some(live) = live {
                let live = live.await??;
                events +=
                    swap::swap(&mut conn, &schema, rebuilder, live, cursor, options.batch).await?;
            }
            sqlx::Connection::close(conn).await.ok();
            let replayed = Replayed {
                model,
                events,
                rows: written.rows,
                elapsed: started.elapsed(),
            };
            tracing::info!(
                model,
                events,
                rows = written.rows,
                write_seconds = written.seconds,
                "rebuilt"
            );
            anyhow::Ok(replayed)
        }));
    }
    let mut replayed = Vec::new();
    for task in tasks {
        replayed.push(task.await??);
    }
    sqlx::Connection::close(conn).await.ok();
    Ok(replayed)
}

/// Rebuilds `models` into scratch tables and returns, per model, every difference from
/// the live one.
pub async fn verify(
    pool: &PgPool,
    models: &[&'static dyn Registered],
    batch: i64,
) -> anyhow::Result<Vec<(&'static str, Vec<Difference>)>> {
    let mut conn = pool.acquire().await?.detach();
    for model in models {
        let schema = scratch_schema("verify", model.name().consumer);
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&mut conn)
            .await?;
        write::prepare(&mut conn, &schema, &model.tables()).await?;
    }
    let options = Options {
        batch,
        as_of: None,
        into: None,
    };
    let (cursor, rebuilders) = build(&mut conn, models, &options).await?;
    let mut outcome = Vec::new();
    for rebuilder in rebuilders {
        let model = rebuilder.name().consumer;
        let schema = scratch_schema("verify", model);
        let (rebuilder, _) = write::write(pool, &schema, rebuilder, false).await?;
        let mut scratch = write::connect_into(pool, &schema).await?;
        let differences =
            swap::compare(&mut scratch, &schema, rebuilder, cursor.clone(), batch).await;
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&mut scratch)
            .await?;
        sqlx::Connection::close(scratch).await.ok();
        outcome.push((model, differences?));
    }
    Ok(outcome)
}

/// How many events `filter` selects, for the progress bar: estimated from the planner's
/// statistics (counting a large store takes seconds), counted when there are none or for
/// time travel.
async fn events_to_read(conn: &mut sqlx::PgConnection, filter: &Filter) -> anyhow::Result<i64> {
    if filter.recorded_until.is_none() {
        let estimate: Option<f64> = sqlx::query_scalar(
            "SELECT (c.reltuples * (SELECT sum(m.f) FROM pg_stats s,
                        unnest(s.most_common_vals::text::text[], s.most_common_freqs) AS m(v, f)
                     WHERE s.schemaname = 'public' AND s.tablename = 'events'
                       AND s.attname = 'aggregate_type' AND m.v = ANY($1)))::float8
               FROM pg_class c WHERE c.oid = 'public.events'::regclass AND c.reltuples > 0",
        )
        .bind(&filter.aggregate_types)
        .fetch_optional(&mut *conn)
        .await?
        .flatten();
        if let Some(estimate) = estimate {
            return Ok(estimate as i64);
        }
    }
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = ANY($1)
            AND ($2::timestamptz IS NULL OR recorded_at <= $2)",
    )
    .bind(&filter.aggregate_types)
    .bind(filter.recorded_until)
    .fetch_one(&mut *conn)
    .await?)
}

/// Folds the store into fresh rebuilders of `models`.
async fn build(
    conn: &mut sqlx::PgConnection,
    models: &[&'static dyn Registered],
    options: &Options,
) -> anyhow::Result<(Cursor, Vec<Box<dyn rebuild::Rebuilder>>)> {
    let mut types: Vec<String> = models
        .iter()
        .flat_map(|m| m.name().aggregate_types.iter().map(|t| (*t).to_owned()))
        .collect();
    types.sort();
    types.dedup();
    let filter = Filter {
        aggregate_types: Some(types),
        recorded_until: options.as_of,
    };
    let total = events_to_read(conn, &filter).await?;
    let progress = Progress::new("events", u64::try_from(total).unwrap_or(0));
    let rebuilders = models.iter().map(|m| m.rebuilder()).collect();
    let built = build::fold_store(
        conn,
        rebuilders,
        Cursor::default(),
        &filter,
        options.batch.max(1),
        &progress,
    )
    .await;
    progress.finish();
    built
}
