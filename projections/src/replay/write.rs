//! Writing rebuilt models into their schema: empty copies of the live tables, then every
//! row with `COPY` in chunks of their own short transactions (a long one would hold back the
//! relay's horizon), changed rows with one statement per table.

use std::time::Instant;

use sqlx::{Connection, PgConnection, PgPool};

use super::rebuild::Rebuilder;
use crate::fold::copy::CopyEncoder;
use crate::fold::io::Changes;
use crate::fold::sql;

/// Bytes of `COPY` text per transaction.
const COPY_CHUNK: usize = 16 << 20;

/// Empty copies of `tables` and of `consumer_applied` in `schema`, created if missing.
pub async fn prepare(conn: &mut PgConnection, schema: &str, tables: &[&str]) -> anyhow::Result<()> {
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .execute(&mut *conn)
        .await?;
    for table in tables.iter().chain(&["consumer_applied"]) {
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {schema}.{table} (LIKE public.{table} INCLUDING ALL)"
        ))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A connection of its own whose search path starts with `schema`, so the engine's
/// unqualified statements land there.
pub async fn connect_into(pool: &PgPool, schema: &str) -> anyhow::Result<PgConnection> {
    let mut conn = pool.acquire().await?.detach();
    sqlx::query(&format!("SET search_path TO {schema}, public"))
        .execute(&mut conn)
        .await?;
    Ok(conn)
}

/// What a write did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Written {
    pub rows: u64,
    pub seconds: f64,
}

/// Writes what `rebuilder` changed since its last write into `conn`'s schema: new rows
/// with `COPY`, the rest with one statement per table; then refreshes the planner's
/// statistics of the tables (they are about to be queried).
pub async fn write(
    conn: &mut PgConnection,
    rebuilder: Box<dyn Rebuilder>,
) -> anyhow::Result<(Box<dyn Rebuilder>, Written)> {
    let started = Instant::now();
    let mut rebuilder = rebuilder;
    let mut encoders = Vec::new();
    for table in rebuilder.tables() {
        encoders.push(CopyEncoder::for_table(conn, table.table()).await?);
    }
    let applied_encoder = CopyEncoder::for_table(conn, "consumer_applied").await?;
    // Encoding is CPU work: off the async workers.
    let (rebuilder, changes) = tokio::task::spawn_blocking(move || {
        let mut changes: Vec<(&'static str, Changes)> = Vec::new();
        let mut outcome = Ok(());
        for (table, encoder) in rebuilder.tables().into_iter().zip(&encoders) {
            match table.take_changes(Some(encoder)) {
                Ok(c) => changes.push((table.table(), c)),
                Err(e) => outcome = Err(e),
            }
        }
        match rebuilder.applied().take_changes(Some(&applied_encoder)) {
            Ok(c) => changes.push(("consumer_applied", c)),
            Err(e) => outcome = Err(e),
        }
        outcome.map(|()| (rebuilder, changes))
    })
    .await??;
    let mut rows = 0;
    for (table, changes) in &changes {
        rows += write_changes(conn, table, changes).await?;
        if changes.copy_rows > 0 {
            sqlx::query(&format!("ANALYZE {table}"))
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok((
        rebuilder,
        Written {
            rows,
            seconds: started.elapsed().as_secs_f64(),
        },
    ))
}

/// Writes one table's changes, `COPY` text in chunks of their own transactions.
async fn write_changes(
    conn: &mut PgConnection,
    table: &str,
    changes: &Changes,
) -> anyhow::Result<u64> {
    if let Some(statement) = &changes.copy_statement {
        let mut rest = changes.copy.as_slice();
        while !rest.is_empty() {
            let cut = match rest.get(COPY_CHUNK..) {
                Some(after) => {
                    COPY_CHUNK
                        + after
                            .iter()
                            .position(|b| *b == b'\n')
                            .map_or(after.len(), |p| p + 1)
                }
                None => rest.len(),
            };
            let (chunk, tail) = rest.split_at(cut);
            let mut tx = conn.begin().await?;
            sql::copy_in(&mut tx, statement, chunk).await?;
            tx.commit().await?;
            rest = tail;
        }
    }
    sql::write(conn, table, changes).await?;
    Ok((changes.copy_rows + changes.upserts.len() + changes.deletes.len()) as u64)
}
