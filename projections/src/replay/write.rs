//! Writing rebuilt models into their schema: empty copies of the live tables without their
//! indexes, then every row with `COPY` in chunks of their own short transactions (a long one
//! would hold back the relay's horizon), every table side by side, then the indexes.

use std::time::Instant;

use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::mpsc;

use super::rebuild::Rebuilder;
use crate::fold::copy::CopyEncoder;
use crate::fold::io::Changes;
use crate::fold::sql;

/// Empty copies of `tables` in `schema`, without their indexes: `write` builds them once the
/// tables are filled, far cheaper than maintaining them row by row.
pub async fn prepare(conn: &mut PgConnection, schema: &str, tables: &[&str]) -> anyhow::Result<()> {
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .execute(&mut *conn)
        .await?;
    for table in tables {
        sqlx::query(&format!(
            "CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL EXCLUDING INDEXES)"
        ))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A `consumer_applied` in `schema`, for a rebuild kept there to show what it applied.
pub async fn prepare_applied(conn: &mut PgConnection, schema: &str) -> anyhow::Result<()> {
    sqlx::query(&format!(
        "CREATE TABLE IF NOT EXISTS {schema}.consumer_applied
             (LIKE public.consumer_applied INCLUDING ALL)"
    ))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Gives `schema.table` the indexes and key constraints of the live table, with their names.
async fn index(conn: &mut PgConnection, schema: &str, table: &str) -> anyhow::Result<()> {
    let live: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT pg_get_indexdef(i.indexrelid), c.conname::text, pg_get_constraintdef(c.oid)
           FROM pg_index i
           LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x')
          WHERE i.indrelid = to_regclass($1)",
    )
    .bind(format!("public.{table}"))
    .fetch_all(&mut *conn)
    .await?;
    for (definition, constraint, constraint_definition) in live {
        let statement = match (constraint, constraint_definition) {
            (Some(name), Some(definition)) => {
                format!("ALTER TABLE {schema}.{table} ADD CONSTRAINT {name} {definition}")
            }
            _ => definition.replacen(
                &format!(" ON public.{table} "),
                &format!(" ON {schema}.{table} "),
                1,
            ),
        };
        anyhow::ensure!(
            statement.contains(&format!("{schema}.{table}")),
            "cannot rebuild an index of {table}: {statement}"
        );
        sqlx::query(&statement).execute(&mut *conn).await?;
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

/// `COPY` rows per transaction.
const CHUNK_ROWS: usize = 50_000;

/// Writes a rebuild into `schema` for the first time: every table on a connection of its
/// own from `pool`, its rows sent with `COPY` as they are encoded, then its indexes built;
/// with `applied`, the applied sequences into the schema's `consumer_applied` too.
pub async fn write(
    pool: &PgPool,
    schema: &str,
    rebuilder: Box<dyn Rebuilder>,
    applied: bool,
) -> anyhow::Result<(Box<dyn Rebuilder>, Written)> {
    let started = Instant::now();
    let mut rebuilder = rebuilder;
    let names: Vec<&'static str> = rebuilder.tables().iter().map(|t| t.table()).collect();
    let (mut encoders, mut queues, mut writers) = (Vec::new(), Vec::new(), Vec::new());
    for table in names {
        let mut conn = connect_into(pool, schema).await?;
        encoders.push(CopyEncoder::for_table(&mut conn, table).await?);
        let (queue, chunks) = mpsc::channel::<Changes>(2);
        queues.push(queue);
        writers.push(tokio::spawn(write_table(
            conn,
            schema.to_owned(),
            table,
            chunks,
        )));
    }
    // Encoding is CPU work: off the async workers, one thread per table, each handing its
    // chunks to its table's writer as they are ready.
    let (mut rebuilder, encoded) = tokio::task::spawn_blocking(move || {
        let encoded: anyhow::Result<()> = std::thread::scope(|scope| {
            let threads: Vec<_> = rebuilder
                .tables()
                .into_iter()
                .zip(encoders.iter().zip(queues))
                .map(|(table, (encoder, queue))| {
                    scope.spawn(move || {
                        table.drain_changes(Some(encoder), CHUNK_ROWS, &mut |changes| {
                            queue.blocking_send(changes).is_ok()
                        })
                    })
                })
                .collect();
            for thread in threads {
                thread
                    .join()
                    .map_err(|_| anyhow::anyhow!("encoding a table panicked"))??;
            }
            Ok(())
        });
        (rebuilder, encoded)
    })
    .await?;
    let mut rows = 0;
    for writer in writers {
        rows += writer.await??;
    }
    encoded?;
    if applied {
        let mut conn = connect_into(pool, schema).await?;
        let encoder = CopyEncoder::for_table(&mut conn, "consumer_applied").await?;
        let changes = rebuilder.applied().take_changes(Some(&encoder))?;
        rows += write_changes(&mut conn, "consumer_applied", &changes).await?;
        conn.close().await.ok();
    }
    Ok((
        rebuilder,
        Written {
            rows,
            seconds: started.elapsed().as_secs_f64(),
        },
    ))
}

/// Writes the chunks of one table as they come, then builds its indexes.
async fn write_table(
    mut conn: PgConnection,
    schema: String,
    table: &'static str,
    mut chunks: mpsc::Receiver<Changes>,
) -> anyhow::Result<u64> {
    let started = Instant::now();
    let mut rows = 0;
    while let Some(changes) = chunks.recv().await {
        rows += write_changes(&mut conn, table, &changes).await?;
    }
    let copied = started.elapsed();
    index(&mut conn, &schema, table).await?;
    tracing::debug!(
        table,
        rows,
        copy_seconds = copied.as_secs_f64(),
        index_seconds = (started.elapsed() - copied).as_secs_f64(),
        "written"
    );
    conn.close().await.ok();
    Ok(rows)
}

/// Writes one part of a table's changes: its `COPY` rows in one transaction, then its
/// upserts and deletes in one statement.
async fn write_changes(
    conn: &mut PgConnection,
    table: &str,
    changes: &Changes,
) -> anyhow::Result<u64> {
    if let Some(statement) = &changes.copy_statement {
        let mut tx = conn.begin().await?;
        sql::copy_in(&mut tx, statement, &changes.copy).await?;
        tx.commit().await?;
    }
    sql::write(conn, table, changes).await?;
    Ok((changes.copy_rows + changes.upserts.len() + changes.deletes.len()) as u64)
}
