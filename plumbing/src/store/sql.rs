//! The event store's statements. Every write is ONE statement (so it needs no explicit
//! transaction and costs one round trip and one commit): the conditional multi-stream append
//! checks that no stream a unit decided on has moved, inserts every stream's events and moves
//! the snapshots forward, and when a stream did move it inserts nothing and returns the newer
//! events instead, so the caller catches up and decides again without a second read.

use cqrs_es::persist::{PersistenceError, SerializedEvent};
use serde_json::Value;
use sqlx::{PgPool, Row};

/// A stream as a decision saw it: its events up to `version` (0 = none).
#[derive(Debug, Clone)]
pub(crate) struct Expected {
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    pub version: usize,
}

/// A snapshot to store with the events: the stream, its state after them, the version that
/// state includes and a running count of the stream's snapshots (informational).
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    pub version: usize,
    pub number: usize,
    pub state: Value,
}

/// Reads the stored snapshot of a stream: (state, version it includes, its number).
pub(crate) async fn snapshot(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Option<(Value, usize, usize)>, PersistenceError> {
    let row = sqlx::query(
        "SELECT payload, last_sequence, current_snapshot FROM snapshots
          WHERE aggregate_type = $1 AND aggregate_id = $2",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_optional(pool)
    .await
    .map_err(from_sqlx)?;
    row.map(|row| {
        let payload: Value = row.try_get("payload").map_err(from_sqlx)?;
        let version: i64 = row.try_get("last_sequence").map_err(from_sqlx)?;
        let number: i64 = row.try_get("current_snapshot").map_err(from_sqlx)?;
        Ok((payload, to_usize(version)?, to_usize(number)?))
    })
    .transpose()
}

/// The events of every stream in `streams` after the version given for it, in stream and
/// sequence order: one statement however many streams.
///
/// The lookups are `LATERAL` so that the plan is an index probe per stream whatever the
/// statistics: the pools plan each statement once (`plan_cache_mode=force_generic_plan`),
/// and a plain join planned while `events` was still empty became a hash join over a
/// sequential scan of the whole table, kept for the connection's life (3 ms a call after
/// 20 s of a hot on-sale, half of PostgreSQL's time).
pub(crate) async fn newer(
    pool: &PgPool,
    streams: &[Expected],
) -> Result<Vec<SerializedEvent>, PersistenceError> {
    if streams.is_empty() {
        return Ok(Vec::new());
    }
    let (types, ids, versions) = columns(streams)?;
    let rows = sqlx::query(
        "SELECT e.aggregate_type, e.aggregate_id, e.sequence, e.event_type, e.event_version,
                e.payload, e.metadata
           FROM unnest($1::text[], $2::text[], $3::bigint[]) AS x(aggregate_type, aggregate_id, version)
          CROSS JOIN LATERAL (
                SELECT * FROM events e
                 WHERE e.aggregate_type = x.aggregate_type
                   AND e.aggregate_id = x.aggregate_id AND e.sequence > x.version
          ) e
          ORDER BY e.aggregate_type, e.aggregate_id, e.sequence",
    )
    .bind(&types)
    .bind(&ids)
    .bind(&versions)
    .fetch_all(pool)
    .await
    .map_err(from_sqlx)?;
    rows.iter().map(stored).collect()
}

/// Appends `events` (every stream's, in the order given: identity values, so global
/// positions, follow it) and `snapshots`, provided no stream of `expected` has events after
/// the version given. Returns those newer events when some stream moved — then nothing was
/// written — and an empty list when the append happened. A writer racing between the check
/// and the insert still loses on the primary key: `OptimisticLockError`.
pub(crate) async fn append(
    pool: &PgPool,
    expected: &[Expected],
    events: &[SerializedEvent],
    snapshots: &[Snapshot],
) -> Result<Vec<SerializedEvent>, PersistenceError> {
    let (x_types, x_ids, x_versions) = columns(expected)?;
    let mut types = Vec::with_capacity(events.len());
    let mut ids = Vec::with_capacity(events.len());
    let mut sequences = Vec::with_capacity(events.len());
    let mut event_types = Vec::with_capacity(events.len());
    let mut versions = Vec::with_capacity(events.len());
    let mut payloads = Vec::with_capacity(events.len());
    let mut metadata = Vec::with_capacity(events.len());
    for event in events {
        types.push(event.aggregate_type.as_str());
        ids.push(event.aggregate_id.as_str());
        sequences.push(i64::try_from(event.sequence).map_err(unknown)?);
        event_types.push(event.event_type.as_str());
        versions.push(event.event_version.as_str());
        payloads.push(event.payload.to_string());
        metadata.push(event.metadata.to_string());
    }
    let mut s_types = Vec::with_capacity(snapshots.len());
    let mut s_ids = Vec::with_capacity(snapshots.len());
    let mut s_versions = Vec::with_capacity(snapshots.len());
    let mut s_numbers = Vec::with_capacity(snapshots.len());
    let mut s_states = Vec::with_capacity(snapshots.len());
    for snapshot in snapshots {
        s_types.push(snapshot.aggregate_type);
        s_ids.push(snapshot.aggregate_id.as_str());
        s_versions.push(i64::try_from(snapshot.version).map_err(unknown)?);
        s_numbers.push(i64::try_from(snapshot.number).map_err(unknown)?);
        s_states.push(snapshot.state.to_string());
    }
    // Snapshots only ever move forward and never conflict: the events' primary key is the
    // concurrency control. A writer whose snapshot count is stale still stores its newer
    // state, or leaves a newer one in place.
    let rows = sqlx::query(
        "WITH expected AS (
             SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
                 AS x(aggregate_type, aggregate_id, version)
         ), newer AS (
             SELECT e.aggregate_type, e.aggregate_id, e.sequence, e.event_type, e.event_version,
                    e.payload, e.metadata
               FROM expected x
              CROSS JOIN LATERAL (
                    SELECT * FROM events e
                     WHERE e.aggregate_type = x.aggregate_type
                       AND e.aggregate_id = x.aggregate_id AND e.sequence > x.version
              ) e
         ), appended AS (
             INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                                 event_version, payload, metadata)
             SELECT t, i, s, et, ev, p::json, m::json
               FROM unnest($4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[],
                           $9::text[], $10::text[]) WITH ORDINALITY AS r(t, i, s, et, ev, p, m, n)
              WHERE NOT EXISTS (SELECT 1 FROM newer)
              ORDER BY n
             RETURNING 1
         ), snapshotted AS (
             INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence,
                                    current_snapshot, payload)
             SELECT t, i, v, n, p::json
               FROM unnest($11::text[], $12::text[], $13::bigint[], $14::bigint[], $15::text[])
                   AS s(t, i, v, n, p)
              WHERE EXISTS (SELECT 1 FROM appended)
             ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE
                SET last_sequence = EXCLUDED.last_sequence,
                    current_snapshot = EXCLUDED.current_snapshot, payload = EXCLUDED.payload
              WHERE snapshots.last_sequence < EXCLUDED.last_sequence
         )
         SELECT * FROM newer ORDER BY aggregate_type, aggregate_id, sequence",
    )
    .bind(&x_types)
    .bind(&x_ids)
    .bind(&x_versions)
    .bind(&types)
    .bind(&ids)
    .bind(&sequences)
    .bind(&event_types)
    .bind(&versions)
    .bind(&payloads)
    .bind(&metadata)
    .bind(&s_types)
    .bind(&s_ids)
    .bind(&s_versions)
    .bind(&s_numbers)
    .bind(&s_states)
    .fetch_all(pool)
    .await
    .map_err(from_sqlx)?;
    rows.iter().map(stored).collect()
}

type Columns<'a> = (Vec<&'static str>, Vec<&'a str>, Vec<i64>);

fn columns(streams: &[Expected]) -> Result<Columns<'_>, PersistenceError> {
    let mut types = Vec::with_capacity(streams.len());
    let mut ids = Vec::with_capacity(streams.len());
    let mut versions = Vec::with_capacity(streams.len());
    for stream in streams {
        types.push(stream.aggregate_type);
        ids.push(stream.aggregate_id.as_str());
        versions.push(i64::try_from(stream.version).map_err(unknown)?);
    }
    Ok((types, ids, versions))
}

fn stored(row: &sqlx::postgres::PgRow) -> Result<SerializedEvent, PersistenceError> {
    let sequence: i64 = row.try_get("sequence").map_err(from_sqlx)?;
    Ok(SerializedEvent::new(
        row.try_get("aggregate_id").map_err(from_sqlx)?,
        to_usize(sequence)?,
        row.try_get("aggregate_type").map_err(from_sqlx)?,
        row.try_get("event_type").map_err(from_sqlx)?,
        row.try_get("event_version").map_err(from_sqlx)?,
        row.try_get("payload").map_err(from_sqlx)?,
        row.try_get("metadata").map_err(from_sqlx)?,
    ))
}

fn to_usize(value: i64) -> Result<usize, PersistenceError> {
    usize::try_from(value).map_err(unknown)
}

/// A unique violation is another writer's event at one of our sequences: a conflict the
/// store retries. A lost connection is reported as such (the outcome may be unknown).
pub(crate) fn from_sqlx(err: sqlx::Error) -> PersistenceError {
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
