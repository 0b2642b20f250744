//! Rebuilding and verifying read models from the events table — the source of truth, not
//! Kafka.
//!
//! **Replay** builds a model into a scratch schema (`replay_<model>`: empty copies of its
//! tables and of `consumer_applied`) in batches of short transactions, each run with
//! `search_path = replay_<model>, public` so the projection's own SQL lands in the scratch
//! tables. It reads with the relay's gap-safe feed (only transactions older than every running
//! one), so a transaction committing late is picked up by a later batch, never stepped over,
//! and no batch holds back the relay's horizon for long. Then, in one transaction that holds
//! the projection's advisory lock exclusively (live applications take it shared, so none is
//! in flight and new ones wait), it applies the last events, moves the live tables out and the
//! scratch tables in, and replaces the consumer's `consumer_applied` rows with the scratch
//! ones. Queries see the old model or the new one, never a half-built one.
//!
//! Nothing is missed or applied twice afterwards: the live consumer has applied only events
//! the relay published, which lie below the replay's final horizon, so the rebuilt model holds
//! all of them; events the replay applied that the consumer has not received yet arrive later
//! and are skipped by `claim` as duplicates of the swapped-in `consumer_applied`; and it
//! keeps its Kafka offsets, so everything newer still comes.
//!
//! **Verify** builds into `verify_<model>` the same way, waits until the live model has
//! applied every event, pauses it (the exclusive lock) and compares table by table.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use plumbing::consumer::HandleError;
use plumbing::feed::{Cursor, StoredEvent, envelope_of, next_batch_of};
use plumbing::projection::{AppliedSequences, Claims, Projection, lock_key};
use schemas::read_models::ReadModelName;
use sqlx::{Connection, PgConnection, PgPool};

/// A read model and the projection that builds it.
pub struct Model {
    pub name: ReadModelName,
    pub projection: Box<dyn Projection>,
}

impl Model {
    fn types(&self) -> Vec<String> {
        self.name
            .aggregate_types
            .iter()
            .map(|t| (*t).to_owned())
            .collect()
    }

    fn consumer(&self) -> &'static str {
        self.name.consumer
    }
}

/// What a replay did.
#[derive(Debug, Clone, Copy)]
pub struct Replayed {
    pub events: u64,
    pub elapsed: Duration,
}

impl Replayed {
    pub fn per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// One table's rows that differ between the rebuilt and the live model.
#[derive(Debug, Clone)]
pub struct Difference {
    pub table: &'static str,
    /// Rows only in the rebuilt model (a sample, as JSON) and how many there are.
    pub only_rebuilt: (Vec<String>, i64),
    /// Rows only in the live model.
    pub only_live: (Vec<String>, i64),
}

fn scratch_schema(kind: &str, model: &Model) -> String {
    format!("{kind}_{}", model.consumer().replace('-', "_"))
}

/// Rebuilds `model` from the events table and swaps it in. Several models may be replayed
/// at once (each on its own connection); `bars` shows their progress together.
pub async fn replay(
    pool: &PgPool,
    model: &Model,
    batch: i64,
    bars: &MultiProgress,
) -> anyhow::Result<Replayed> {
    let started = Instant::now();
    let schema = scratch_schema("replay", model);
    let mut conn = pool.acquire().await?.detach();
    prepare(&mut conn, &schema, model).await?;
    let mut applied = AppliedSequences::new();
    let (cursor, mut events) = build(&mut conn, &schema, model, batch, &mut applied, bars).await?;

    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(lock_key(model.consumer()))
        .execute(&mut *tx)
        .await?;
    events += catch_up(&mut tx, &schema, model, cursor, batch, &mut applied)
        .await?
        .1;
    let retired = scratch_schema("retired", model);
    let mut statements = vec![
        format!("DROP SCHEMA IF EXISTS {retired} CASCADE"),
        format!("CREATE SCHEMA {retired}"),
    ];
    for table in model.name.tables {
        statements.push(format!("ALTER TABLE public.{table} SET SCHEMA {retired}"));
        statements.push(format!("ALTER TABLE {schema}.{table} SET SCHEMA public"));
    }
    for statement in statements {
        sqlx::query(&statement).execute(&mut *tx).await?;
    }
    sqlx::query("DELETE FROM public.consumer_applied WHERE consumer = $1")
        .bind(model.consumer())
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!(
        "INSERT INTO public.consumer_applied
         SELECT * FROM {schema}.consumer_applied WHERE consumer = $1"
    ))
    .bind(model.consumer())
    .execute(&mut *tx)
    .await?;
    for statement in [
        format!("DROP SCHEMA {schema} CASCADE"),
        format!("DROP SCHEMA {retired} CASCADE"),
    ] {
        sqlx::query(&statement).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    conn.close().await.ok();
    let replayed = Replayed {
        events,
        elapsed: started.elapsed(),
    };
    tracing::info!(
        model = model.consumer(),
        events,
        per_second = replayed.per_second() as u64,
        "replayed and swapped in"
    );
    Ok(replayed)
}

/// Rebuilds `model` into scratch tables and returns every difference from the live model.
pub async fn verify(pool: &PgPool, model: &Model, batch: i64) -> anyhow::Result<Vec<Difference>> {
    let schema = scratch_schema("verify", model);
    let mut conn = pool.acquire().await?.detach();
    prepare(&mut conn, &schema, model).await?;
    let mut applied = AppliedSequences::new();
    let (cursor, _) = build(
        &mut conn,
        &schema,
        model,
        batch,
        &mut applied,
        &MultiProgress::new(),
    )
    .await?;
    let mut outcome = None;
    for _ in 0..5 {
        wait_live_caught_up(&mut conn, model, Duration::from_secs(60)).await?;
        let mut tx = conn.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(lock_key(model.consumer()))
            .execute(&mut *tx)
            .await?;
        // New events may have arrived between the wait and the lock; compare only a
        // model that has applied everything.
        if live_backlog(&mut tx, model).await? > 0 {
            tx.rollback().await?;
            continue;
        }
        // A rolled-back attempt must not leave its sequences behind: start from a copy.
        let mut applied = applied.clone();
        catch_up(&mut tx, &schema, model, cursor.clone(), batch, &mut applied).await?;
        let mut differences = Vec::new();
        for table in model.name.tables {
            let (rebuilt, live) = (format!("{schema}.{table}"), format!("public.{table}"));
            let only_rebuilt = rows_except(&mut tx, &rebuilt, &live).await?;
            let only_live = rows_except(&mut tx, &live, &rebuilt).await?;
            if only_rebuilt.1 > 0 || only_live.1 > 0 {
                differences.push(Difference {
                    table,
                    only_rebuilt,
                    only_live,
                });
            }
        }
        tx.rollback().await?;
        outcome = Some(differences);
        break;
    }
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut conn)
        .await?;
    conn.close().await.ok();
    outcome.context("the live model kept receiving events; verify it when the load eases")
}

/// Rows of `left` not in `right` (a sample of 20 as JSON, and the count).
async fn rows_except(
    tx: &mut PgConnection,
    left: &str,
    right: &str,
) -> anyhow::Result<(Vec<String>, i64)> {
    let query = format!("SELECT * FROM {left} EXCEPT ALL SELECT * FROM {right}");
    let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM ({query}) d"))
        .fetch_one(&mut *tx)
        .await?;
    let sample: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT row_to_json(d)::text FROM ({query}) d LIMIT 20"
    ))
    .fetch_all(&mut *tx)
    .await?;
    Ok((sample, count))
}

/// An empty scratch copy of the model's tables and of `consumer_applied`.
async fn prepare(conn: &mut PgConnection, schema: &str, model: &Model) -> anyhow::Result<()> {
    let mut statements = vec![
        format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
        format!("CREATE SCHEMA {schema}"),
    ];
    for table in model.name.tables.iter().chain(&["consumer_applied"]) {
        statements.push(format!(
            "CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL)"
        ));
    }
    for statement in statements {
        sqlx::query(&statement).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Applies every event of the model's aggregate types to the scratch schema, one short
/// transaction per batch, with a progress bar; returns where it stopped.
async fn build(
    conn: &mut PgConnection,
    schema: &str,
    model: &Model,
    batch: i64,
    applied_sequences: &mut AppliedSequences,
    bars: &MultiProgress,
) -> anyhow::Result<(Cursor, u64)> {
    let total: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = ANY($1)")
            .bind(model.types())
            .fetch_one(&mut *conn)
            .await?;
    let progress = Progress::new(model.consumer(), u64::try_from(total).unwrap_or(0), bars);
    let mut cursor = Cursor::default();
    let mut applied = 0;
    loop {
        let mut tx = conn.begin().await?;
        let (next, count) =
            apply_one_batch(&mut tx, schema, model, &cursor, batch, applied_sequences).await?;
        tx.commit().await?;
        applied += count;
        progress.advance(count);
        cursor = next;
        if count < u64::try_from(batch).unwrap_or(0) {
            break;
        }
    }
    progress.finish();
    Ok((cursor, applied))
}

/// Applies what is left after `cursor` inside the caller's transaction.
async fn catch_up(
    tx: &mut PgConnection,
    schema: &str,
    model: &Model,
    mut cursor: Cursor,
    batch: i64,
    applied_sequences: &mut AppliedSequences,
) -> anyhow::Result<(Cursor, u64)> {
    let mut applied = 0;
    loop {
        let (next, count) =
            apply_one_batch(tx, schema, model, &cursor, batch, applied_sequences).await?;
        applied += count;
        cursor = next;
        if count < u64::try_from(batch).unwrap_or(0) {
            return Ok((cursor, applied));
        }
    }
}

/// Reads one batch after `cursor` and applies it to the scratch schema in `tx`.
async fn apply_one_batch(
    tx: &mut PgConnection,
    schema: &str,
    model: &Model,
    cursor: &Cursor,
    batch: i64,
    applied: &mut AppliedSequences,
) -> anyhow::Result<(Cursor, u64)> {
    let events: Vec<StoredEvent> =
        next_batch_of(&mut *tx, cursor, batch, Some(&model.types())).await?;
    let Some(last) = events.last() else {
        return Ok((cursor.clone(), 0));
    };
    let next = Cursor::after(last);
    sqlx::query(&format!("SET LOCAL search_path TO {schema}, public"))
        .execute(&mut *tx)
        .await?;
    let envelopes: Vec<schemas::Envelope> = events.iter().map(envelope_of).collect();
    let mut claims = Claims::resume(model.consumer(), std::mem::take(applied));
    for envelope in &envelopes {
        let event = match schemas::decode(envelope) {
            Ok(event) => event,
            Err(err) => {
                // The live consumer dead-letters such an event; the replay skips it alike.
                tracing::warn!(error = %err, event_type = %envelope.event_type, "undecodable event skipped");
                continue;
            }
        };
        if !claims
            .claim(&mut *tx, envelope)
            .await
            .map_err(handle_error)?
        {
            continue;
        }
        match model.projection.apply(&mut *tx, envelope, event).await {
            Ok(()) => {}
            Err(HandleError::Poison(err)) => {
                tracing::warn!(
                    error = format!("{err:#}"),
                    "event the projection refuses skipped"
                );
            }
            Err(other) => return Err(handle_error(other)),
        }
    }
    *applied = claims.save(&mut *tx).await.map_err(handle_error)?;
    sqlx::query("SET LOCAL search_path TO public")
        .execute(&mut *tx)
        .await?;
    Ok((next, events.len() as u64))
}

fn handle_error(err: HandleError) -> anyhow::Error {
    match err {
        HandleError::Poison(e) | HandleError::Transient(e) | HandleError::Unavailable(e) => e,
    }
}

/// Events of the model's aggregates the live model has not applied.
pub async fn live_backlog(conn: &mut PgConnection, model: &Model) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM
            (SELECT aggregate_type, aggregate_id, max(sequence) AS last FROM events
              WHERE aggregate_type = ANY($2) GROUP BY 1, 2) e
         LEFT JOIN public.consumer_applied c ON c.consumer = $1
              AND c.aggregate_type = e.aggregate_type AND c.aggregate_id = e.aggregate_id
         WHERE e.last > coalesce(c.last_sequence, 0)",
    )
    .bind(model.consumer())
    .bind(model.types())
    .fetch_one(conn)
    .await?)
}

async fn wait_live_caught_up(
    conn: &mut PgConnection,
    model: &Model,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let behind = live_backlog(conn, model).await?;
        if behind == 0 {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the live {} model is {behind} aggregates behind after {timeout:?}; is the \
             projections process running?",
            model.consumer()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A progress bar on a terminal (done / total, events/s, ETA), a log line every few seconds
/// otherwise.
struct Progress {
    bar: ProgressBar,
    name: &'static str,
    terminal: bool,
    started: Instant,
    last_log: std::sync::Mutex<Instant>,
}

impl Progress {
    fn new(name: &'static str, total: u64, bars: &MultiProgress) -> Self {
        let terminal = std::io::stderr().is_terminal();
        bars.set_draw_target(if terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let bar = bars.add(ProgressBar::new(total));
        if let Ok(style) = ProgressStyle::with_template(
            "{prefix:>14} [{bar:40}] {human_pos}/{human_len} {per_sec} ETA {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(name);
        Self {
            bar,
            name,
            terminal,
            started: Instant::now(),
            last_log: std::sync::Mutex::new(Instant::now()),
        }
    }

    fn advance(&self, count: u64) {
        self.bar.inc(count);
        if self.terminal {
            return;
        }
        let mut last = self.last_log.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() >= Duration::from_secs(5) {
            *last = Instant::now();
            let done = self.bar.position();
            let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
            let left = self.bar.length().unwrap_or(done).saturating_sub(done);
            tracing::info!(
                model = self.name,
                done,
                total = self.bar.length().unwrap_or(0),
                per_second = rate as u64,
                eta_seconds = (left as f64 / rate.max(1e-9)) as u64,
                "replaying"
            );
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
        tracing::info!(
            model = self.name,
            events = self.bar.position(),
            seconds = self.started.elapsed().as_secs_f64(),
            "rebuilt from the events table"
        );
    }
}
