//! `clone-store`: grows an event store made through the API to a given size for the replay
//! benchmark (issue: "every read model rebuilt from ≥ 1,000,000 events"). Producing a million
//! events through HTTP takes over an hour on the 2-core machine; copying the streams a real
//! run produced, with fresh ids, gives the same mix of event types and stream lengths in
//! seconds.
//!
//! Each copy maps every UUID in an event (aggregate id, payload, metadata) to a UUIDv5 of the
//! copy number and the original, so the streams of one copy reference each other exactly as
//! the originals do — a booking its show, a hold its booking. User ids are kept: the copies'
//! bookings belong to the run's buyers, and streams keyed by a user (accounts, an
//! organizer's invoice ledger) are not copied, as their sequences would collide.

use std::collections::HashSet;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::Target;

#[derive(Debug, Args)]
pub struct CloneStoreArgs {
    /// Copy until the events table holds at least this many events.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: i64,
}

/// One stored event.
#[derive(sqlx::FromRow)]
struct Row {
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: Value,
    metadata: Value,
}

pub async fn run(target: &Target, args: CloneStoreArgs) -> anyhow::Result<bool> {
    let pool = plumbing::db::connect(&target.database_url, 2).await?;
    let users: HashSet<Uuid> = sqlx::query_scalar::<_, String>(
        "SELECT DISTINCT aggregate_id FROM events WHERE aggregate_type = 'user'",
    )
    .fetch_all(&pool)
    .await?
    .iter()
    .filter_map(|id| id.parse().ok())
    .collect();
    let template = load_template(&pool, &users).await?;
    anyhow::ensure!(
        !template.is_empty(),
        "no event to copy: run a scenario first (compose/bench.sh replay does)"
    );
    let started = Instant::now();
    let mut total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await?;
    let mut copy: u32 = 0;
    while total < args.events {
        copy += 1;
        total += insert_copy(&pool, &template, copy, &users).await?;
        println!(
            "copy {copy}: {total} events in the store ({:.0} s)",
            started.elapsed().as_secs_f64()
        );
    }
    println!(
        "the store holds {total} events ({copy} copies of {} template events)",
        template.len()
    );
    Ok(true)
}

/// The events of every stream that has an id to map, in the order they were written.
async fn load_template(pool: &PgPool, users: &HashSet<Uuid>) -> anyhow::Result<Vec<Row>> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version,
                payload::jsonb AS payload, metadata::jsonb AS metadata
           FROM events ORDER BY transaction_id, global_position",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|row| map_ids(&row.aggregate_id, 1, users) != row.aggregate_id)
        .collect())
}

/// Writes copy number `copy` of the template in one transaction; returns its event count.
async fn insert_copy(
    pool: &PgPool,
    template: &[Row],
    copy: u32,
    users: &HashSet<Uuid>,
) -> anyhow::Result<i64> {
    let mut tx = pool.begin().await?;
    for chunk in template.chunks(5_000) {
        let mut columns = Columns::default();
        for row in chunk {
            columns.types.push(&row.aggregate_type);
            columns.ids.push(map_ids(&row.aggregate_id, copy, users));
            columns.sequences.push(row.sequence);
            columns.event_types.push(&row.event_type);
            columns.versions.push(&row.event_version);
            columns
                .payloads
                .push(map_value(&row.payload, copy, users).to_string());
            columns
                .metadata
                .push(map_value(&row.metadata, copy, users).to_string());
        }
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             SELECT t, i, s, e, v, p::json, m::json
               FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[])
                    AS c(t, i, s, e, v, p, m)",
        )
        .bind(&columns.types)
        .bind(&columns.ids)
        .bind(&columns.sequences)
        .bind(&columns.event_types)
        .bind(&columns.versions)
        .bind(&columns.payloads)
        .bind(&columns.metadata)
        .execute(&mut *tx)
        .await
        .context("cannot insert a copy")?;
    }
    tx.commit().await?;
    Ok(template.len() as i64)
}

/// One chunk of a copy, column by column (bound as arrays).
#[derive(Default)]
struct Columns<'a> {
    types: Vec<&'a str>,
    ids: Vec<String>,
    sequences: Vec<i64>,
    event_types: Vec<&'a str>,
    versions: Vec<&'a str>,
    payloads: Vec<String>,
    metadata: Vec<String>,
}

fn map_value(value: &Value, copy: u32, users: &HashSet<Uuid>) -> Value {
    match value {
        Value::String(s) => Value::String(map_ids(s, copy, users)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| map_value(v, copy, users)).collect())
        }
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (map_ids(k, copy, users), map_value(v, copy, users)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `text` with every hyphenated UUID in it other than a user's replaced by the copy's own.
fn map_ids(text: &str, copy: u32, users: &HashSet<Uuid>) -> String {
    const LEN: usize = 36;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while rest.len() >= LEN {
        let candidate = rest
            .get(..LEN)
            .filter(|c| c.as_bytes()[8] == b'-')
            .and_then(|c| Uuid::try_parse(c).ok());
        match candidate {
            Some(id) if !users.contains(&id) => {
                let namespace = Uuid::from_u128(u128::from(copy));
                out.push_str(&Uuid::new_v5(&namespace, id.as_bytes()).to_string());
                rest = &rest[LEN..];
            }
            Some(id) => {
                out.push_str(&id.to_string());
                rest = &rest[LEN..];
            }
            None => {
                let next = rest.chars().next().map_or(1, char::len_utf8);
                out.push_str(&rest[..next]);
                rest = &rest[next..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_every_uuid_but_users_consistently() {
        let user = Uuid::new_v4();
        let show = Uuid::new_v4();
        let users = HashSet::from([user]);
        let inventory = map_ids(&format!("{show}:s0"), 3, &users);
        let copied_show = map_ids(&show.to_string(), 3, &users);
        assert_eq!(inventory, format!("{copied_show}:s0"));
        assert_ne!(copied_show, show.to_string());
        assert_eq!(map_ids(&user.to_string(), 3, &users), user.to_string());
        assert_ne!(map_ids(&show.to_string(), 4, &users), copied_show);
        assert_eq!(map_ids("s0:R0:1 ünïcode", 3, &users), "s0:R0:1 ünïcode");
    }
}
