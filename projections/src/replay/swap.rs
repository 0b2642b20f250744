//! Finishing a rebuild: catching up with what arrived while it was built, then either
//! swapping it in (replay) or comparing it with the live model (verify), in one transaction
//! that holds the model's advisory lock exclusively — live applications take it shared, so
//! none is in flight and new ones wait.

use foldhash::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use plumbing::feed::{Cursor, Filter, next_raw};
use plumbing::position::ReadModel;
use plumbing::projection::lock_key;
use sqlx::{Connection, PgConnection, PgPool};

use super::build::decode;
use super::rebuild::Rebuilder;
use crate::fold::{copy, sql};

/// Folds the model's events after `cursor` (in the caller's transaction, if any) and
/// writes what changed with one statement per table; returns the new cursor and how many
/// events it read.
async fn catch_up(
    conn: &mut PgConnection,
    rebuilder: &mut Box<dyn Rebuilder>,
    mut cursor: Cursor,
    batch: i64,
) -> anyhow::Result<(Cursor, u64)> {
    let filter = Filter {
        aggregate_types: Some(types(rebuilder.name())),
        recorded_until: None,
    };
    let mut read = 0;
    loop {
        let raw = next_raw(&mut *conn, &cursor, batch, &filter).await?;
        let Some(last) = raw.last() else { break };
        cursor = Cursor {
            transaction_id: last.transaction_id.clone(),
            global_position: last.global_position,
        };
        let count = raw.len();
        read += count as u64;
        rebuilder.fold(&decode(raw));
        if count < usize::try_from(batch).unwrap_or(usize::MAX) {
            break;
        }
    }
    for table in rebuilder.tables() {
        let changes = table.take_changes(None)?;
        sql::write(conn, table.table(), &changes).await?;
    }
    Ok((cursor, read))
}

fn types(name: ReadModel) -> Vec<String> {
    name.aggregate_types
        .iter()
        .map(|t| (*t).to_owned())
        .collect()
}

/// Catches up without the lock, so the locked part has little left to do.
async fn approach(
    conn: &mut PgConnection,
    mut rebuilder: Box<dyn Rebuilder>,
    cursor: Cursor,
    batch: i64,
) -> anyhow::Result<(Box<dyn Rebuilder>, Cursor)> {
    let (cursor, _) = catch_up(conn, &mut rebuilder, cursor, batch).await?;
    Ok((rebuilder, cursor))
}

/// Swaps the model rebuilt in `schema` (`conn`'s search path) in for the live one; returns
/// the events applied after `cursor`.
pub async fn swap(
    conn: &mut PgConnection,
    schema: &str,
    rebuilder: Box<dyn Rebuilder>,
    live: LiveSequences,
    cursor: Cursor,
    batch: i64,
) -> anyhow::Result<u64> {
    let (mut rebuilder, cursor) = approach(conn, rebuilder, cursor, batch).await?;
    let name = rebuilder.name();
    let tables: Vec<&'static str> = rebuilder.tables().iter().map(|t| t.table()).collect();
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(lock_key(name.consumer))
        .execute(&mut *tx)
        .await?;
    let locked = Instant::now();
    let (_, tail) = catch_up(&mut tx, &mut rebuilder, cursor, batch).await?;
    let retired = format!("retired_{}", name.consumer.replace('-', "_"));
    let mut statements = vec![
        format!("DROP SCHEMA IF EXISTS {retired} CASCADE"),
        format!("CREATE SCHEMA {retired}"),
    ];
    for table in &tables {
        statements.push(format!("ALTER TABLE public.{table} SET SCHEMA {retired}"));
        statements.push(format!("ALTER TABLE {schema}.{table} SET SCHEMA public"));
    }
    for statement in statements {
        sqlx::query(&statement).execute(&mut *tx).await?;
    }
    let caught_up = locked.elapsed();
    replace_applied(&mut tx, &mut rebuilder, &live).await?;
    tracing::debug!(
        model = name.consumer,
        catch_up_seconds = caught_up.as_secs_f64(),
        applied_seconds = (locked.elapsed() - caught_up).as_secs_f64(),
        "swapping"
    );
    for statement in [
        format!("DROP SCHEMA {schema} CASCADE"),
        format!("DROP SCHEMA {retired} CASCADE"),
    ] {
        sqlx::query(&statement).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(tail)
}

/// The live model's applied sequences, read before the swap's lock (while the rebuild is
/// written).
pub struct LiveSequences(HashMap<String, HashMap<String, i64>>);

impl LiveSequences {
    pub async fn read(pool: &PgPool, consumer: &str) -> anyhow::Result<Self> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT aggregate_type, aggregate_id, last_sequence FROM public.consumer_applied
              WHERE consumer = $1",
        )
        .bind(consumer)
        .fetch_all(pool)
        .await?;
        let mut by_type: HashMap<String, HashMap<String, i64>> = HashMap::default();
        for (t, id, last) in rows {
            by_type.entry(t).or_default().insert(id, last);
        }
        Ok(Self(by_type))
    }

    fn get(&self, aggregate_type: &str, aggregate_id: &str) -> Option<i64> {
        self.0.get(aggregate_type)?.get(aggregate_id).copied()
    }
}

/// Makes the live `consumer_applied` rows of the model the rebuilt ones, writing only rows
/// that differ from what was read before the lock. That is enough: the live consumer has
/// applied only events the relay published, all below the rebuild's final horizon, and
/// only ever moves a sequence forward — so a row that equalled the rebuilt one then still
/// does, and any other is written whatever it became meanwhile.
async fn replace_applied(
    tx: &mut PgConnection,
    rebuilder: &mut Box<dyn Rebuilder>,
    live: &LiveSequences,
) -> anyhow::Result<()> {
    let consumer = rebuilder.name().consumer;
    let applied = rebuilder.applied();
    let mut changed: Vec<(&str, &str, i64)> = applied
        .sequences()
        .filter(|(t, id, last)| live.get(t, id) != Some(*last))
        .collect();
    // In key order: the index takes them in order too.
    changed.sort_unstable();
    let ours: HashMap<(&str, &str), i64> =
        applied.sequences().map(|(t, i, s)| ((t, i), s)).collect();
    let (gone_types, gone_ids): (Vec<&str>, Vec<&str>) = live
        .0
        .iter()
        .flat_map(|(t, ids)| ids.keys().map(move |id| (t.as_str(), id.as_str())))
        .filter(|key| !ours.contains_key(key))
        .unzip();
    sqlx::query(
        "DELETE FROM public.consumer_applied c USING unnest($2::text[], $3::text[]) AS k(t, i)
          WHERE c.consumer = $1 AND c.aggregate_type = k.t AND c.aggregate_id = k.i",
    )
    .bind(consumer)
    .bind(&gone_types)
    .bind(&gone_ids)
    .execute(&mut *tx)
    .await?;
    // Rows of aggregates the live model had never seen go in with `COPY`, far cheaper than an
    // upsert each; should the live consumer have claimed one since the snapshot, the `COPY`
    // fails on its key and they are upserted instead.
    let (fresh, known): (Vec<_>, Vec<_>) = changed
        .into_iter()
        .partition(|(t, id, _)| live.get(t, id).is_none());
    let copied = {
        let mut savepoint = tx.begin().await?;
        match copy_applied(&mut savepoint, consumer, &fresh).await {
            Ok(()) => savepoint.commit().await.map(|()| true)?,
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
                savepoint.rollback().await?;
                false
            }
            Err(e) => return Err(e.into()),
        }
    };
    let upserts = if copied {
        known
    } else {
        [known, fresh].concat()
    };
    for chunk in upserts.chunks(50_000) {
        let types: Vec<&str> = chunk.iter().map(|c| c.0).collect();
        let ids: Vec<&str> = chunk.iter().map(|c| c.1).collect();
        let lasts: Vec<i64> = chunk.iter().map(|c| c.2).collect();
        sqlx::query(
            "INSERT INTO public.consumer_applied
                    (consumer, aggregate_type, aggregate_id, last_sequence, updated_at)
             SELECT $1, t, i, s, now() FROM unnest($2::text[], $3::text[], $4::bigint[]) AS k(t, i, s)
             ON CONFLICT (consumer, aggregate_type, aggregate_id) DO UPDATE
                SET last_sequence = EXCLUDED.last_sequence, updated_at = EXCLUDED.updated_at",
        )
        .bind(consumer)
        .bind(&types)
        .bind(&ids)
        .bind(&lasts)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// `COPY`s new `consumer_applied` rows of `consumer`.
async fn copy_applied(
    tx: &mut PgConnection,
    consumer: &str,
    rows: &[(&str, &str, i64)],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut text = Vec::with_capacity(rows.len() * 80);
    for (aggregate_type, aggregate_id, last) in rows {
        for field in [consumer, aggregate_type, aggregate_id] {
            copy::escape(field, &mut text);
            text.push(b'\t');
        }
        text.extend_from_slice(format!("{last}\tnow\n").as_bytes());
    }
    sql::copy_in(
        tx,
        "COPY public.consumer_applied
             (consumer, aggregate_type, aggregate_id, last_sequence, updated_at) FROM STDIN",
        &text,
    )
    .await?;
    Ok(())
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

/// Compares the model rebuilt in `schema` with the live one once the live one has applied
/// every event, pausing it (the lock) while comparing.
pub async fn compare(
    conn: &mut PgConnection,
    schema: &str,
    rebuilder: Box<dyn Rebuilder>,
    cursor: Cursor,
    batch: i64,
) -> anyhow::Result<Vec<Difference>> {
    let (mut rebuilder, cursor) = approach(conn, rebuilder, cursor, batch).await?;
    let name = rebuilder.name();
    let tables: Vec<&'static str> = rebuilder.tables().iter().map(|t| t.table()).collect();
    for _ in 0..5 {
        wait_live_caught_up(conn, name, Duration::from_secs(60)).await?;
        let mut tx = conn.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(lock_key(name.consumer))
            .execute(&mut *tx)
            .await?;
        // New events may have arrived between the wait and the lock; compare only a
        // model that has applied everything.
        if live_backlog(&mut tx, name).await? > 0 {
            tx.rollback().await?;
            continue;
        }
        catch_up(&mut tx, &mut rebuilder, cursor, batch).await?;
        let mut differences = Vec::new();
        for &table in &tables {
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
        return Ok(differences);
    }
    None.context("the live model kept receiving events; verify it when the load eases")
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

/// Aggregates of the model's types whose last event the live model has not applied.
pub async fn live_backlog(conn: &mut PgConnection, name: ReadModel) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM
            (SELECT aggregate_type, aggregate_id, max(sequence) AS last FROM public.events
              WHERE aggregate_type = ANY($2) GROUP BY 1, 2) e
         LEFT JOIN public.consumer_applied c ON c.consumer = $1
              AND c.aggregate_type = e.aggregate_type AND c.aggregate_id = e.aggregate_id
         WHERE e.last > coalesce(c.last_sequence, 0)",
    )
    .bind(name.consumer)
    .bind(types(name))
    .fetch_one(conn)
    .await?)
}

async fn wait_live_caught_up(
    conn: &mut PgConnection,
    name: ReadModel,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let behind = live_backlog(conn, name).await?;
        if behind == 0 {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the live {} model is {behind} aggregates behind after {timeout:?}; is the \
             projections process running?",
            name.consumer
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
