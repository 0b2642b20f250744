//! Joining a queue. A hot on-sale sends tens of thousands of joins to one event within
//! seconds, and every join must take the next ordinal under that queue's row lock. One
//! transaction per join would make the row lock — held until the commit is durable — the
//! bottleneck, so joins go through one batching task per process: it takes every request
//! waiting in its channel (up to `MAX_BATCH`) and places them all in one transaction. While a
//! batch commits the next one gathers, so batches grow with the load and the commit rate
//! stays flat. Nothing waits for a timer: a lone join is committed at once.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context;
use chrono::{DateTime, Utc};
use schemas::api::queue::QueuePlace;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::RoomSettings;
use crate::places::place_of;

/// Joins placed in one transaction at most.
const MAX_BATCH: usize = 1_000;

struct JoinRequest {
    event_id: Uuid,
    user_id: Uuid,
    settings: RoomSettings,
    reply: oneshot::Sender<Result<QueuePlace, String>>,
}

/// Handle on the process's batching task; cheap to clone.
#[derive(Clone)]
pub struct Joiner {
    requests: mpsc::Sender<JoinRequest>,
}

impl Joiner {
    /// Starts the batching task on the current runtime.
    pub fn spawn(pool: PgPool) -> Self {
        let (requests, receiver) = mpsc::channel(MAX_BATCH * 4);
        tokio::spawn(run(pool, receiver));
        Self { requests }
    }

    /// Joins `user_id` to the queue of `event_id` (idempotent: a user already waiting keeps
    /// their place, an admitted one their admission; an expired one goes to the back).
    pub async fn join(
        &self,
        event_id: Uuid,
        user_id: Uuid,
        settings: RoomSettings,
    ) -> anyhow::Result<QueuePlace> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(JoinRequest {
                event_id,
                user_id,
                settings,
                reply,
            })
            .await
            .ok()
            .context("the join task stopped")?;
        answer
            .await
            .context("the join task stopped")?
            .map_err(|e| anyhow::anyhow!(e))
    }
}

async fn run(pool: PgPool, mut receiver: mpsc::Receiver<JoinRequest>) {
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        metrics::histogram!("waiting_room_join_batch_size").record(batch.len() as f64);
        let keys: Vec<(Uuid, Uuid, RoomSettings)> = batch
            .iter()
            .map(|r| (r.event_id, r.user_id, r.settings))
            .collect();
        match place_batch(&pool, &keys).await {
            Ok(places) => {
                for request in batch {
                    let place = places
                        .get(&(request.event_id, request.user_id))
                        .cloned()
                        .ok_or_else(|| "the join was not placed".to_owned());
                    // A caller that went away does not need its answer.
                    let _ = request.reply.send(place);
                }
            }
            Err(err) => {
                tracing::warn!(error = format!("{err:#}"), "a batch of joins failed");
                let message = format!("{err:#}");
                for request in batch {
                    let _ = request.reply.send(Err(message.clone()));
                }
            }
        }
    }
}

#[derive(sqlx::FromRow)]
struct Existing {
    user_id: Uuid,
    ordinal: i64,
    admitted_until: Option<DateTime<Utc>>,
}

/// Places every (event, user) of the batch in one transaction; returns each one's place.
async fn place_batch(
    pool: &PgPool,
    batch: &[(Uuid, Uuid, RoomSettings)],
) -> anyhow::Result<HashMap<(Uuid, Uuid), QueuePlace>> {
    // Per event, the users in arrival order without repeats; events in id order so that two
    // processes' batches lock the queue rows in the same order and never deadlock.
    let mut events: BTreeMap<Uuid, (RoomSettings, Vec<Uuid>)> = BTreeMap::new();
    for (event_id, user_id, settings) in batch {
        let (_, users) = events
            .entry(*event_id)
            .or_insert_with(|| (*settings, Vec::new()));
        if !users.contains(user_id) {
            users.push(*user_id);
        }
    }

    let mut tx = pool.begin().await?;
    let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&mut *tx)
        .await?;
    let mut placed = HashMap::new();
    for (event_id, (settings, users)) in events {
        // Creates the queue on its first join and locks its row either way: ordinals are
        // handed out under this lock, which the admitter takes too.
        let (joined, admitted_through): (i64, i64) = sqlx::query_as(
            "INSERT INTO waiting_rooms
                (event_id, admit_per_minute, admission_minutes, admit_from, admit_until)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (event_id) DO UPDATE
                SET admit_per_minute = EXCLUDED.admit_per_minute,
                    admission_minutes = EXCLUDED.admission_minutes,
                    admit_from = EXCLUDED.admit_from,
                    admit_until = EXCLUDED.admit_until
             RETURNING joined, admitted_through",
        )
        .bind(event_id)
        .bind(i32::try_from(settings.admit_per_minute).unwrap_or(i32::MAX))
        .bind(i32::try_from(settings.admission_minutes).unwrap_or(i32::MAX))
        .bind(settings.admit_from)
        .bind(settings.admit_until)
        .fetch_one(&mut *tx)
        .await?;

        let existing: Vec<Existing> = sqlx::query_as(
            "SELECT user_id, ordinal, admitted_until FROM waiting_room_places
             WHERE event_id = $1 AND user_id = ANY($2)",
        )
        .bind(event_id)
        .bind(&users)
        .fetch_all(&mut *tx)
        .await?;
        let existing: HashMap<Uuid, Existing> =
            existing.into_iter().map(|e| (e.user_id, e)).collect();

        let mut next = joined;
        let mut new_users = Vec::new();
        let mut new_ordinals = Vec::new();
        for user_id in users {
            let current = existing.get(&user_id);
            let keeps_place = current.is_some_and(|e| e.admitted_until.is_none_or(|u| u > now));
            let place = match current {
                Some(e) if keeps_place => {
                    place_of(e.ordinal, admitted_through, e.admitted_until, now)
                }
                // New, or an expired admission: a fresh place at the back.
                _ => {
                    next += 1;
                    new_users.push(user_id);
                    new_ordinals.push(next);
                    place_of(next, admitted_through, None, now)
                }
            };
            placed.insert((event_id, user_id), place);
        }
        if new_users.is_empty() {
            continue;
        }
        sqlx::query(
            "INSERT INTO waiting_room_places (event_id, user_id, ordinal, joined_at)
             SELECT $1, u, o, $4 FROM UNNEST($2::uuid[], $3::bigint[]) AS t(u, o)
             ON CONFLICT (event_id, user_id) DO UPDATE
                SET ordinal = EXCLUDED.ordinal, joined_at = EXCLUDED.joined_at,
                    admitted_at = NULL, admitted_until = NULL",
        )
        .bind(event_id)
        .bind(&new_users)
        .bind(&new_ordinals)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE waiting_rooms SET joined = $2 WHERE event_id = $1")
            .bind(event_id)
            .bind(next)
            .execute(&mut *tx)
            .await?;
        metrics::counter!("waiting_room_joins_total").increment(new_users.len() as u64);
    }
    tx.commit().await?;
    Ok(placed)
}
