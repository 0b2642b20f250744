//! The gap-safe feed over the events table, shared by the relay (events → Kafka) and the
//! projections' replay (events → read models).
//!
//! A `global_position` is drawn at insert but visible only at commit, so "position > last"
//! skips rows whose transaction commits after a later-numbered one. The feed therefore only
//! reads rows of transactions older than every transaction still running
//! (`pg_snapshot_xmin(pg_current_snapshot())`) and orders by (transaction id, position) with a
//! composite cursor: once a transaction id is below the xmin, no new row can ever appear at or
//! before it in that order.

use chrono::{DateTime, Utc};
use schemas::envelope::{event_id, redact};
use schemas::{Envelope, EventMetadata};
use serde_json::Value;
use sqlx::PgConnection;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// `xid8` as text (sqlx has no xid8 type); bound back with `$1::text::xid8`.
    pub transaction_id: String,
    pub global_position: i64,
}

impl Default for Cursor {
    /// Before the first event.
    fn default() -> Self {
        Self {
            transaction_id: "0".into(),
            global_position: 0,
        }
    }
}

impl Cursor {
    /// The cursor just after `event`.
    pub fn after(event: &StoredEvent) -> Self {
        Self {
            transaction_id: event.transaction_id.clone(),
            global_position: event.global_position,
        }
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

/// The next `limit` events after `after`, in commit-safe order.
pub async fn next_batch(
    conn: &mut PgConnection,
    after: &Cursor,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let horizon = horizon(conn).await?;
    // `ORDER BY` names the table's columns: the output column `transaction_id` is text, and
    // text order puts xid 100002 before 99991 — sorting by it once skipped events whenever
    // a batch straddled a power of ten of the transaction counter.
    sqlx::query_as(
        "SELECT transaction_id::text AS transaction_id, global_position, aggregate_type,
                aggregate_id, sequence, event_type, event_version, payload, metadata, recorded_at
           FROM events
          WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
            AND transaction_id < $4::text::xid8
          ORDER BY events.transaction_id, events.global_position
          LIMIT $3",
    )
    .bind(&after.transaction_id)
    .bind(after.global_position)
    .bind(limit)
    .bind(horizon)
    .fetch_all(conn)
    .await
}

/// The horizon below which every transaction has finished.
///
/// It is read in its own statement, before the rows: every transaction below it had
/// finished then, so the next statement's snapshot certainly sees all of its rows. Reading
/// it inside the row query would tie correctness to which snapshot that function reports,
/// and a horizon newer than the rows' snapshot would let the cursor step over a transaction
/// that committed in between (observed as a skipped event under load).
async fn horizon(conn: &mut PgConnection) -> Result<String, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
        .fetch_one(&mut *conn)
        .await
}

/// Which events a reader of the feed wants (the replay: its models' aggregate types, and
/// for time travel only those recorded by an instant).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub aggregate_types: Option<Vec<String>>,
    /// Only events recorded at or before this instant (their transaction had begun).
    pub recorded_until: Option<DateTime<Utc>>,
}

/// A stored event with its payload as the stored JSON text, for readers that decode it
/// themselves (`schemas::decode::decode_stored`) instead of through an envelope.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RawEvent {
    pub transaction_id: String,
    pub global_position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// Externally tagged: `{"EventType": {...}}`.
    pub payload: String,
}

/// `next_batch` for a reader that wants only what `filter` selects, undecoded.
pub async fn next_raw(
    conn: &mut PgConnection,
    after: &Cursor,
    limit: i64,
    filter: &Filter,
) -> Result<Vec<RawEvent>, sqlx::Error> {
    let horizon = horizon(conn).await?;
    sqlx::query_as(
        "SELECT transaction_id::text AS transaction_id, global_position, aggregate_type,
                aggregate_id, sequence, event_type, event_version, payload::text AS payload
           FROM events
          WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
            AND transaction_id < $4::text::xid8
            AND ($5::text[] IS NULL OR aggregate_type = ANY($5))
            AND ($6::timestamptz IS NULL OR recorded_at <= $6)
          ORDER BY events.transaction_id, events.global_position
          LIMIT $3",
    )
    .bind(&after.transaction_id)
    .bind(after.global_position)
    .bind(limit)
    .bind(horizon)
    .bind(&filter.aggregate_types)
    .bind(filter.recorded_until)
    .fetch_all(conn)
    .await
}

/// The Kafka envelope of a stored event, exactly as the relay publishes it.
pub fn envelope_of(row: &StoredEvent) -> Envelope {
    let sequence = u64::try_from(row.sequence).unwrap_or_default();
    // Stored events are externally tagged ({"Type": {...}}); the envelope carries the inner
    // object beside its event_type.
    let mut payload = match &row.payload {
        serde_json::Value::Object(map) if map.len() == 1 && map.contains_key(&row.event_type) => {
            map[&row.event_type].clone()
        }
        other => other.clone(),
    };
    redact(&row.aggregate_type, &row.event_type, &mut payload);
    Envelope {
        event_id: event_id(&row.aggregate_type, &row.aggregate_id, sequence),
        aggregate_type: row.aggregate_type.clone(),
        aggregate_id: row.aggregate_id.clone(),
        sequence,
        global_position: row.global_position,
        event_type: row.event_type.clone(),
        event_version: row.event_version.clone(),
        occurred_at: row.recorded_at,
        payload,
        metadata: EventMetadata::from_stored(&row.metadata),
    }
}
