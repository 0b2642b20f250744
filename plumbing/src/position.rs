//! Read-your-writes: the opaque `X-Event-Position` token naming the events a command wrote,
//! and the bounded wait until the read models a query reads have applied them.
//!
//! The relay publishes in commit order, not in global-position order, so a single "applied up
//! to N" number would be wrong; every consumer records the last sequence it applied per
//! aggregate (table `consumer_applied`), and the token names (aggregate, sequence) pairs.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::time::Instant;

/// More entries than any command writes; bounds the work a hostile token can cause.
const MAX_ENTRIES: usize = 64;
const MAX_TOKEN_LEN: usize = 8 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionEntry {
    #[serde(rename = "t")]
    pub aggregate_type: String,
    #[serde(rename = "i")]
    pub aggregate_id: String,
    #[serde(rename = "s")]
    pub sequence: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position(Vec<PositionEntry>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed position token")]
pub struct MalformedPosition;

impl From<Vec<PositionEntry>> for Position {
    fn from(entries: Vec<PositionEntry>) -> Self {
        Self(entries)
    }
}

impl Position {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn entries(&self) -> &[PositionEntry] {
        &self.0
    }

    /// Combines the positions of several commands (one request may write several aggregates).
    pub fn merge(mut self, other: Position) -> Self {
        self.0.extend(other.0);
        self
    }

    pub fn encode(&self) -> String {
        // Serialising a Vec of plain structs cannot fail.
        let json = serde_json::to_vec(&self.0).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    pub fn decode(token: &str) -> Result<Self, MalformedPosition> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(MalformedPosition);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| MalformedPosition)?;
        let entries: Vec<PositionEntry> =
            serde_json::from_slice(&bytes).map_err(|_| MalformedPosition)?;
        let sane = |text: &str, max: usize| {
            !text.is_empty() && text.len() <= max && !text.chars().any(char::is_control)
        };
        let valid = entries.len() <= MAX_ENTRIES
            && entries.iter().all(|e| {
                sane(&e.aggregate_type, 64)
                    && sane(&e.aggregate_id, 256)
                    && i64::try_from(e.sequence).is_ok()
            });
        if !valid {
            return Err(MalformedPosition);
        }
        Ok(Self(entries))
    }
}

/// Whether the event store holds every event `position` names. A token naming events beyond
/// the store's head (made up by a client) would otherwise wait the whole timeout; this one
/// primary-key probe per entry lets the caller refuse it at once.
pub async fn held(pool: &PgPool, position: &Position) -> Result<bool, sqlx::Error> {
    let types: Vec<&str> = position
        .entries()
        .iter()
        .map(|e| e.aggregate_type.as_str())
        .collect();
    let ids: Vec<&str> = position
        .entries()
        .iter()
        .map(|e| e.aggregate_id.as_str())
        .collect();
    let seqs: Vec<i64> = position
        .entries()
        .iter()
        .map(|e| i64::try_from(e.sequence).unwrap_or(i64::MAX))
        .collect();
    let missing: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM unnest($1::text[], $2::text[], $3::bigint[])
                AS w(aggregate_type, aggregate_id, sequence)
          WHERE NOT EXISTS (
                SELECT 1 FROM events e
                 WHERE e.aggregate_type = w.aggregate_type AND e.aggregate_id = w.aggregate_id
                   AND e.sequence = w.sequence)",
    )
    .bind(&types)
    .bind(&ids)
    .bind(&seqs)
    .fetch_one(pool)
    .await?;
    Ok(missing == 0)
}

/// A read model as far as waiting is concerned: the consumer that builds it and the aggregate
/// types it reads (entries of other types in a token are not its business).
#[derive(Debug, Clone, Copy)]
pub struct ReadModel {
    pub consumer: &'static str,
    pub aggregate_types: &'static [&'static str],
}

/// Waits until every read model in `models` has applied the events of `position` that concern
/// it, polling until `timeout`. Returns whether it caught up (false = answer stale).
pub async fn wait_applied(
    pool: &PgPool,
    models: &[ReadModel],
    position: &Position,
    timeout: Duration,
) -> Result<bool, sqlx::Error> {
    let (mut consumers, mut types, mut ids, mut seqs) = (vec![], vec![], vec![], vec![]);
    for model in models {
        for entry in position.entries() {
            if model
                .aggregate_types
                .contains(&entry.aggregate_type.as_str())
            {
                consumers.push(model.consumer.to_owned());
                types.push(entry.aggregate_type.clone());
                ids.push(entry.aggregate_id.clone());
                seqs.push(i64::try_from(entry.sequence).unwrap_or(i64::MAX));
            }
        }
    }
    if consumers.is_empty() {
        return Ok(true);
    }
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        let missing: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
                    AS w(consumer, aggregate_type, aggregate_id, sequence)
              WHERE NOT EXISTS (
                    SELECT 1 FROM consumer_applied c
                     WHERE c.consumer = w.consumer AND c.aggregate_type = w.aggregate_type
                       AND c.aggregate_id = w.aggregate_id AND c.last_sequence >= w.sequence)",
        )
        .bind(&consumers)
        .bind(&types)
        .bind(&ids)
        .bind(&seqs)
        .fetch_one(pool)
        .await?;
        if missing == 0 {
            return Ok(true);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let position = Position::from(vec![PositionEntry {
            aggregate_type: "user".into(),
            aggregate_id: "abc".into(),
            sequence: 3,
        }]);
        assert_eq!(Position::decode(&position.encode()), Ok(position));
    }

    #[test]
    fn garbage_tokens_are_malformed() {
        assert_eq!(Position::decode("not base64!"), Err(MalformedPosition));
        assert_eq!(
            Position::decode(&URL_SAFE_NO_PAD.encode(b"{\"x\":1}")),
            Err(MalformedPosition)
        );
        assert_eq!(Position::decode(&"A".repeat(9000)), Err(MalformedPosition));
        let nul = URL_SAFE_NO_PAD.encode(br#"[{"t":"user","i":"\u0000","s":1}]"#);
        assert_eq!(Position::decode(&nul), Err(MalformedPosition));
        let huge = URL_SAFE_NO_PAD.encode(br#"[{"t":"user","i":"x","s":18446744073709551615}]"#);
        assert_eq!(Position::decode(&huge), Err(MalformedPosition));
    }
}
