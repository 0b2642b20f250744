//! Idempotent application of events to PostgreSQL read models (and any other consumer whose
//! effect lives in PostgreSQL): the effect and the consumer's per-aggregate applied sequence
//! are written in one transaction, and an event at or below that sequence is skipped.

use std::collections::HashMap;

use async_trait::async_trait;
use schemas::{DecodedEvent, Envelope};
use sqlx::{PgConnection, PgPool};

use crate::consumer::{HandleError, Handler};

#[async_trait]
pub trait Projection: Send + Sync {
    /// The consumer name: key of `consumer_applied`, and the Kafka group id.
    fn name(&self) -> &'static str;

    /// Applies, in order and inside the caller's transaction, the events of a batch that
    /// `claim` let through (every one of them: events of aggregates the projection does not
    /// care about are simply ignored, and still recorded as applied).
    async fn apply(
        &self,
        tx: &mut PgConnection,
        events: Vec<(&Envelope, DecodedEvent)>,
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
        let mut claims = Claims::lock(&mut tx, self.projection.name(), envelopes).await?;
        let mut claimed = Vec::with_capacity(envelopes.len());
        for envelope in envelopes {
            let event = schemas::decode(envelope).map_err(|e| HandleError::Poison(e.into()))?;
            if claims.claim(&mut tx, envelope).await? {
                claimed.push((envelope, event));
            }
            // else a redelivery: the effect is already there
        }
        // The whole batch at once, so the projection can write each of its tables once.
        if !claimed.is_empty() {
            self.projection.apply(&mut tx, claimed).await?;
        }
        claims.save(&mut tx).await?;
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
    let sequence = sequence_of(envelope)?;
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
    skipped(consumer, envelope, last, sequence);
    Ok(false)
}

/// The last applied sequence per (aggregate type, aggregate id).
pub type AppliedSequences = HashMap<(String, String), i64>;

/// `claim` for a batch of events: the applied sequences of every aggregate in the batch are
/// locked and read with two statements, decided in memory event by event, and written back
/// with one — instead of one statement per event (the claims were a fifth of everything
/// PostgreSQL executed under load). A one-event batch uses `claim` itself, one statement.
pub struct Claims {
    consumer: String,
    /// None for a one-event batch.
    last: Option<AppliedSequences>,
    /// Aggregates whose sequence moved.
    changed: Vec<(String, String)>,
}

impl Claims {
    /// Locks the applied sequences of the batch's aggregates for the caller's transaction.
    pub async fn lock(
        tx: &mut PgConnection,
        consumer: &str,
        envelopes: &[Envelope],
    ) -> Result<Self, HandleError> {
        let mut claims = Claims {
            consumer: consumer.to_owned(),
            last: None,
            changed: Vec::new(),
        };
        if envelopes.len() < 2 {
            return Ok(claims);
        }
        let mut keys: Vec<(&str, &str)> = envelopes
            .iter()
            .map(|e| (e.aggregate_type.as_str(), e.aggregate_id.as_str()))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let (types, ids): (Vec<&str>, Vec<&str>) = keys.into_iter().unzip();
        // Rows to lock exist first (as in `claim`), and both statements take them in one
        // order, so two instances overlapping during a rebalance wait rather than deadlock.
        sqlx::query(
            "INSERT INTO consumer_applied (consumer, aggregate_type, aggregate_id, last_sequence)
             SELECT $1, t, i, 0 FROM unnest($2::text[], $3::text[]) AS k(t, i) ORDER BY t, i
             ON CONFLICT (consumer, aggregate_type, aggregate_id) DO NOTHING",
        )
        .bind(consumer)
        .bind(&types)
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
        // Per key through the primary key (a lateral lookup, so no plan cached while the
        // table was small can turn it into a scan of every consumer's rows).
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT k.t, k.i, c.last_sequence
               FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS k(t, i, n)
              CROSS JOIN LATERAL (
                    SELECT last_sequence FROM consumer_applied
                     WHERE consumer = $1 AND aggregate_type = k.t AND aggregate_id = k.i
                       FOR UPDATE) c
              ORDER BY k.n",
        )
        .bind(consumer)
        .bind(&types)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        claims.last = Some(rows.into_iter().map(|(t, i, s)| ((t, i), s)).collect());
        Ok(claims)
    }

    /// Claims decided against sequences the caller already knows — a replay, the only
    /// writer of its scratch table, carries them from batch to batch (`save` hands them
    /// back) instead of locking and reading them again.
    pub fn resume(consumer: &str, known: AppliedSequences) -> Self {
        Claims {
            consumer: consumer.to_owned(),
            last: Some(known),
            changed: Vec::new(),
        }
    }

    /// Whether `envelope` is its aggregate's next event, as `claim` decides; the batch's
    /// events must be claimed in their order.
    pub async fn claim(
        &mut self,
        tx: &mut PgConnection,
        envelope: &Envelope,
    ) -> Result<bool, HandleError> {
        let Some(last) = self.last.as_mut() else {
            return claim(tx, &self.consumer, envelope).await;
        };
        let sequence = sequence_of(envelope)?;
        let key = (
            envelope.aggregate_type.clone(),
            envelope.aggregate_id.clone(),
        );
        let applied = last.get(&key).copied().unwrap_or(0);
        if !next_in_line(applied, sequence) {
            skipped(&self.consumer, envelope, applied, sequence);
            return Ok(false);
        }
        last.insert(key.clone(), sequence);
        self.changed.push(key);
        Ok(true)
    }

    /// Writes the sequences the batch moved; returns every sequence it knows.
    pub async fn save(mut self, tx: &mut PgConnection) -> Result<AppliedSequences, HandleError> {
        let Some(last) = self.last else {
            return Ok(AppliedSequences::new());
        };
        self.changed.sort_unstable();
        self.changed.dedup();
        if self.changed.is_empty() {
            return Ok(last);
        }
        let sequences: Vec<i64> = self.changed.iter().map(|key| last[key]).collect();
        let (types, ids): (Vec<String>, Vec<String>) = self.changed.into_iter().unzip();
        // An upsert of rows that exist: each one found through the primary key.
        sqlx::query(
            "INSERT INTO consumer_applied (consumer, aggregate_type, aggregate_id, last_sequence)
             SELECT $1, t, i, s FROM unnest($2::text[], $3::text[], $4::bigint[]) AS k(t, i, s)
             ON CONFLICT (consumer, aggregate_type, aggregate_id) DO UPDATE
                SET last_sequence = EXCLUDED.last_sequence, updated_at = now()",
        )
        .bind(&self.consumer)
        .bind(&types)
        .bind(&ids)
        .bind(&sequences)
        .execute(&mut *tx)
        .await?;
        Ok(last)
    }
}

/// The claim rule: an event applies when it is its aggregate's next one after `applied`
/// (anything at or below was applied; anything further ahead waits for the missing ones).
pub fn next_in_line(applied: i64, sequence: i64) -> bool {
    sequence == applied + 1
}

fn sequence_of(envelope: &Envelope) -> Result<i64, HandleError> {
    i64::try_from(envelope.sequence)
        .map_err(|e| HandleError::Poison(anyhow::Error::new(e).context("sequence out of range")))
}

/// Counts (and for an event ahead of a missing one, logs) an event `claim` refuses.
fn skipped(consumer: &str, envelope: &Envelope, last: i64, sequence: i64) {
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
}
