//! Idempotent application of events to PostgreSQL read models (and any other consumer whose
//! effect lives in PostgreSQL): the effect and the consumer's per-aggregate applied sequence
//! are written in one transaction, and an event at or below that sequence is skipped.

use async_trait::async_trait;
use schemas::{DecodedEvent, Envelope};
use sqlx::{PgConnection, PgPool};

use crate::consumer::{HandleError, Handler};

#[async_trait]
pub trait Projection: Send + Sync {
    /// The consumer name: key of `consumer_applied`, and the Kafka group id.
    fn name(&self) -> &'static str;

    /// Applies one event inside the caller's transaction. Events of aggregates the
    /// projection does not care about are simply ignored (and still recorded as applied).
    async fn apply(
        &self,
        tx: &mut PgConnection,
        envelope: &Envelope,
        event: DecodedEvent,
    ) -> Result<(), HandleError>;
}

pub struct ProjectionHandler<P> {
    pool: PgPool,
    projection: P,
}

impl<P: Projection> ProjectionHandler<P> {
    pub fn new(pool: PgPool, projection: P) -> Self {
        Self { pool, projection }
    }
}

#[async_trait]
impl<P: Projection> Handler for ProjectionHandler<P> {
    async fn handle(&self, envelope: &Envelope) -> Result<(), HandleError> {
        self.handle_batch(std::slice::from_ref(envelope)).await
    }

    /// One transaction for the whole batch: one commit (one WAL flush) instead of one per
    /// event. Any failure rolls every event back and the runtime retries them one by one.
    async fn handle_batch(&self, envelopes: &[Envelope]) -> Result<(), HandleError> {
        let mut tx = self.pool.begin().await?;
        // Shared with every other application of this projection; a replay's swap takes it
        // exclusively, so it never interleaves with a live application.
        sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
            .bind(lock_key(self.projection.name()))
            .execute(&mut *tx)
            .await?;
        for envelope in envelopes {
            let event = schemas::decode(envelope).map_err(|e| HandleError::Poison(e.into()))?;
            if claim(&mut tx, self.projection.name(), envelope).await? {
                self.projection.apply(&mut tx, envelope, event).await?;
            }
            // else a redelivery: the effect is already there
        }
        tx.commit().await?;
        Ok(())
    }
}

/// The advisory-lock key of a projection: shared by its live applications, exclusive for a
/// replay's swap and a verification.
pub fn lock_key(consumer: &str) -> i64 {
    crate::db::advisory_key("projection", consumer)
}

/// Records `envelope` as applied by `consumer` if it is the aggregate's next event. Returns
/// false for a duplicate, and for an event that arrived ahead of a missing one (it will be
/// resent). Must run in the transaction that performs the effect.
pub async fn claim(
    tx: &mut PgConnection,
    consumer: &str,
    envelope: &Envelope,
) -> Result<bool, HandleError> {
    let sequence = i64::try_from(envelope.sequence)
        .map_err(|e| HandleError::Poison(anyhow::Error::new(e).context("sequence out of range")))?;
    // One statement on the common path. An aggregate's first event inserts its row (a later
    // event finding no row inserts 0 and is refused below); the next event advances it. The
    // upsert locks the row, so two consumers overlapping during a rebalance serialise even on
    // an aggregate's first event, and the second one sees the first one's sequence.
    let advanced: Option<i64> = sqlx::query_scalar(
        "INSERT INTO consumer_applied AS applied (consumer, aggregate_type, aggregate_id, last_sequence)
         VALUES ($1, $2, $3, CASE WHEN $4::bigint = 1 THEN 1 ELSE 0 END)
         ON CONFLICT (consumer, aggregate_type, aggregate_id) DO UPDATE
            SET last_sequence = $4::bigint, updated_at = now()
          WHERE applied.last_sequence = $4::bigint - 1
         RETURNING last_sequence",
    )
    .bind(consumer)
    .bind(&envelope.aggregate_type)
    .bind(&envelope.aggregate_id)
    .bind(sequence)
    .fetch_optional(&mut *tx)
    .await?;
    if advanced == Some(sequence) {
        return Ok(true);
    }
    let last: i64 = sqlx::query_scalar(
        "SELECT last_sequence FROM consumer_applied
          WHERE consumer = $1 AND aggregate_type = $2 AND aggregate_id = $3",
    )
    .bind(consumer)
    .bind(&envelope.aggregate_type)
    .bind(&envelope.aggregate_id)
    .fetch_one(&mut *tx)
    .await?;
    if sequence <= last {
        metrics::counter!("consumer_duplicates_skipped_total", "consumer" => consumer.to_owned())
            .increment(1);
    } else {
        // An event of this aggregate is missing before this one. That happens when a relay
        // dies after some records of a batch reached the broker and others did not: the next
        // relay resends everything from its checkpoint, in order, so the missing events — and
        // this one again — arrive later in the partition. Applying this one now would make
        // the missing ones look like duplicates and lose them; skip it and wait for the resend.
        tracing::warn!(consumer, last, sequence, aggregate_id = %envelope.aggregate_id,
            "event ahead of its aggregate's sequence; waiting for the resend");
        metrics::counter!("consumer_out_of_order_skipped_total", "consumer" => consumer.to_owned())
            .increment(1);
    }
    Ok(false)
}

/// Decoded aggregate events of another type reaching a projection are a wiring mistake.
pub fn unexpected(envelope: &Envelope) -> HandleError {
    HandleError::Poison(anyhow::anyhow!(
        "unexpected {} event {}",
        envelope.aggregate_type,
        envelope.event_type
    ))
}
