//! The gap-safe feed over the events table.
//!
//! A `global_position` is drawn at insert but visible only at commit, so "position > last"
//! skips rows whose transaction commits after a later-numbered one. The feed therefore only
//! reads rows of transactions older than every transaction still running
//! (`pg_snapshot_xmin(pg_current_snapshot())`) and orders by (transaction id, position) with a
//! composite cursor: once a transaction id is below the xmin, no new row can ever appear at or
//! before it in that order.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// `xid8` as text (sqlx has no xid8 type); bound back with `$1::text::xid8`.
    pub transaction_id: String,
    pub global_position: i64,
}

impl Cursor {
    pub async fn load(conn: &mut PgConnection, name: &str) -> Result<Self, sqlx::Error> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT transaction_id::text, global_position FROM relay_checkpoint WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
        Ok(match row {
            Some((transaction_id, global_position)) => Self {
                transaction_id,
                global_position,
            },
            None => Self {
                transaction_id: "0".into(),
                global_position: 0,
            },
        })
    }

    pub async fn save(&self, conn: &mut PgConnection, name: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO relay_checkpoint (name, transaction_id, global_position)
             VALUES ($1, $2::text::xid8, $3)
             ON CONFLICT (name) DO UPDATE
                SET transaction_id = EXCLUDED.transaction_id,
                    global_position = EXCLUDED.global_position,
                    updated_at = now()",
        )
        .bind(name)
        .bind(&self.transaction_id)
        .bind(self.global_position)
        .execute(conn)
        .await?;
        Ok(())
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredEvent {
    pub transaction_id: String,
    pub global_position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
}

pub async fn next_batch(
    conn: &mut PgConnection,
    after: &Cursor,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    // The horizon is read in its own statement, before the rows: every transaction below it
    // had finished then, so the next statement's snapshot certainly sees all of its rows.
    // Reading it inside the row query would tie correctness to which snapshot that function
    // reports, and a horizon newer than the rows' snapshot would let the cursor step over a
    // transaction that committed in between (observed as a skipped event under load).
    let horizon: String =
        sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
            .fetch_one(&mut *conn)
            .await?;
    sqlx::query_as(
        "SELECT transaction_id::text AS transaction_id, global_position, aggregate_type,
                aggregate_id, sequence, event_type, event_version, payload, metadata, recorded_at
           FROM events
          WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
            AND transaction_id < $4::text::xid8
          ORDER BY transaction_id, global_position
          LIMIT $3",
    )
    .bind(&after.transaction_id)
    .bind(after.global_position)
    .bind(limit)
    .bind(horizon)
    .fetch_all(conn)
    .await
}
