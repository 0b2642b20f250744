//! Appending an aggregate's events (and its snapshot) in one transaction with one statement
//! for all the events. postgres-es inserts one row per round trip, so a group-commit batch
//! of a hundred holds on a hot section made a hundred round trips while holding the
//! section's lock; here it is one.

use cqrs_es::persist::{PersistenceError, SerializedEvent};
use serde_json::Value;
use sqlx::PgPool;

/// A snapshot to store with the events: the aggregate id, its state after them, and its
/// number (a count kept by the writer, informational).
pub type SnapshotUpdate = (String, Value, usize);

pub async fn append(
    pool: &PgPool,
    aggregate_type: &str,
    events: &[SerializedEvent],
    snapshot: Option<SnapshotUpdate>,
) -> Result<(), PersistenceError> {
    let mut ids = Vec::with_capacity(events.len());
    let mut sequences = Vec::with_capacity(events.len());
    let mut types = Vec::with_capacity(events.len());
    let mut versions = Vec::with_capacity(events.len());
    let mut payloads = Vec::with_capacity(events.len());
    let mut metadata = Vec::with_capacity(events.len());
    for event in events {
        ids.push(event.aggregate_id.as_str());
        sequences.push(i64::try_from(event.sequence).map_err(unknown)?);
        types.push(event.event_type.as_str());
        versions.push(event.event_version.as_str());
        payloads.push(event.payload.to_string());
        metadata.push(event.metadata.to_string());
    }
    let mut tx = pool.begin().await.map_err(from_sqlx)?;
    // Identity values follow the rows' order, so global positions follow the sequences.
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT $1, i, s, t, v, p::json, m::json
           FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[])
                WITH ORDINALITY AS e(i, s, t, v, p, m, n)
          ORDER BY n",
    )
    .bind(aggregate_type)
    .bind(&ids)
    .bind(&sequences)
    .bind(&types)
    .bind(&versions)
    .bind(&payloads)
    .bind(&metadata)
    .execute(&mut *tx)
    .await
    .map_err(from_sqlx)?;
    if let Some((aggregate_id, state, number)) = snapshot {
        // Only ever moves forward, and never conflicts: the events' primary key is the
        // concurrency control. A writer whose cached snapshot number is stale (another
        // process snapshotted meanwhile) still stores its newer state, or leaves a newer one.
        sqlx::query(
            "INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE
                SET last_sequence = EXCLUDED.last_sequence,
                    current_snapshot = EXCLUDED.current_snapshot, payload = EXCLUDED.payload
              WHERE snapshots.last_sequence < EXCLUDED.last_sequence",
        )
        .bind(aggregate_type)
        .bind(&aggregate_id)
        .bind(sequences.last().copied().unwrap_or_default())
        .bind(i64::try_from(number).map_err(unknown)?)
        .bind(&state)
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?;
    }
    tx.commit().await.map_err(from_sqlx)
}

/// A unique violation is another writer's event at one of our sequences (or its first
/// snapshot): a conflict the store retries. Anything else is not.
fn from_sqlx(err: sqlx::Error) -> PersistenceError {
    match &err {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
            PersistenceError::OptimisticLockError
        }
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => {
            PersistenceError::ConnectionError(Box::new(err))
        }
        _ => PersistenceError::UnknownError(Box::new(err)),
    }
}

fn unknown(err: impl std::error::Error + Send + Sync + 'static) -> PersistenceError {
    PersistenceError::UnknownError(Box::new(err))
}
