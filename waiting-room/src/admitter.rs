//! The admitter: moves each queue's admission cursor at the queue's `admit_per_minute`.
//!
//! - **Smooth**: every tick (100 ms by default) a queue earns `admit_per_minute / 60` credits
//!   per second elapsed and admits as many whole places as it has credits, so 600 a minute is
//!   one place every 100 ms rather than 600 at the top of each minute. Credit is capped at one
//!   second's worth: an admitter that was down (or a queue that was empty) does not make up
//!   for lost time with a burst.
//! - **Exactly once, in order**: one step is one transaction that advances the cursor only
//!   from the value it read (compare-and-set) and stamps exactly the ordinals it passed, so a
//!   step either happens whole or not at all, and a stale or second admitter cannot admit a
//!   place twice.
//! - **One active admitter**: it holds a session advisory lock on a dedicated connection and
//!   runs every step through that connection; standbys poll for the lock and take over when
//!   the active one dies (its connection closes, PostgreSQL releases the lock).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use clap::Parser;
use plumbing::ops::{self, OpsState};
use plumbing::settings::Infra;
use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::ADMITTED_CHANNEL;

/// Advisory-lock key of the admitter ("admit" in ASCII).
const LOCK_KEY: i64 = 0x61_64_6d_69_74;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "admitter",
    about = "Admits waiting-room users at each event's rate"
)]
pub struct AdmitterSettings {
    #[command(flatten)]
    pub infra: Infra,
    /// Operations endpoints (/health, /ready, /metrics).
    #[arg(long, env = "OPS_ADDR", default_value = "127.0.0.1:9106")]
    pub ops_addr: String,
    /// How often queues are looked at; smaller is smoother.
    #[arg(long, env = "ADMITTER_TICK_MS", default_value_t = 100)]
    pub tick_ms: u64,
}

pub async fn run(settings: AdmitterSettings) -> anyhow::Result<()> {
    let pool = plumbing::db::connect(&settings.infra.database_url, 4).await?;
    let shutdown = plumbing::shutdown::on_signal();
    let ops_state = OpsState::new(pool.clone(), settings.infra.kafka(), shutdown.clone());
    let ops_addr = settings.ops_addr.clone();
    let ops_shutdown = shutdown.clone();
    tokio::spawn(async move {
        if let Err(err) = ops::serve(ops_addr, ops::router(ops_state), ops_shutdown).await {
            tracing::error!(error = %err, "operations server failed");
        }
    });
    let tick = Duration::from_millis(settings.tick_ms.max(1));
    while !shutdown.is_cancelled() {
        if let Err(err) = lead(&pool, tick, &shutdown).await {
            metrics::gauge!("admitter_active").set(0.0);
            tracing::warn!(
                error = format!("{err:#}"),
                "admitter interrupted; starting over"
            );
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
    tracing::info!("admitter stopped");
    Ok(())
}

/// Waits to become the active admitter, then admits until shutdown or an error.
async fn lead(pool: &PgPool, tick: Duration, shutdown: &CancellationToken) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?.detach();
    let mut waiting_logged = false;
    loop {
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(LOCK_KEY)
            .fetch_one(&mut conn)
            .await?;
        if locked {
            break;
        }
        if !waiting_logged {
            tracing::info!("another admitter is active; standing by");
            waiting_logged = true;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
    tracing::info!("active admitter");
    metrics::gauge!("admitter_active").set(1.0);

    let mut credits = Credits::default();
    let mut last = Instant::now();
    while !shutdown.is_cancelled() {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(tick) => {}
        }
        let now = Instant::now();
        let elapsed = now - last;
        last = now;
        let backlog = queues_with_waiting(&mut conn).await?;
        credits.retain(&backlog);
        for queue in backlog {
            let places = credits.earn(&queue, elapsed);
            if places == 0 {
                continue;
            }
            let admitted = admit(&mut conn, &queue, places).await?;
            credits.spend(queue.event_id, admitted);
        }
    }
    conn.close().await.ok();
    Ok(())
}

/// A queue with people waiting, as read at the start of a tick.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Queue {
    event_id: Uuid,
    admit_per_minute: i32,
    admission_minutes: i32,
    admitted_through: i64,
}

async fn queues_with_waiting(conn: &mut PgConnection) -> sqlx::Result<Vec<Queue>> {
    sqlx::query_as(
        "SELECT event_id, admit_per_minute, admission_minutes, admitted_through
         FROM waiting_rooms
         WHERE joined > admitted_through AND now() >= admit_from AND now() < admit_until",
    )
    .fetch_all(conn)
    .await
}

/// Admission credit per queue: the smoothing of the module docs.
#[derive(Debug, Default)]
struct Credits(HashMap<Uuid, f64>);

impl Credits {
    /// Forgets queues that have nobody waiting: they start afresh when people arrive.
    fn retain(&mut self, backlog: &[Queue]) {
        self.0
            .retain(|event, _| backlog.iter().any(|q| q.event_id == *event));
    }

    /// Adds what `elapsed` earns and returns the whole places that may be admitted now. A
    /// queue seen for the first time may admit one place at once.
    fn earn(&mut self, queue: &Queue, elapsed: Duration) -> i64 {
        let per_second = f64::from(queue.admit_per_minute.max(1)) / 60.0;
        let cap = per_second.max(1.0);
        let credit = self.0.entry(queue.event_id).or_insert(1.0);
        *credit = (*credit + per_second * elapsed.as_secs_f64()).min(cap);
        credit.floor() as i64
    }

    fn spend(&mut self, event_id: Uuid, places: i64) {
        if let Some(credit) = self.0.get_mut(&event_id) {
            *credit = (*credit - places as f64).max(0.0);
        }
    }
}

/// Admits up to `places` waiting places of `queue` in one transaction; returns how many.
async fn admit(conn: &mut PgConnection, queue: &Queue, places: i64) -> anyhow::Result<i64> {
    let mut tx = conn.begin().await?;
    // Compare-and-set on the cursor read at the start of the tick: if it moved meanwhile,
    // this step does nothing and the next tick starts from the new value.
    let through: Option<i64> = sqlx::query_scalar(
        "UPDATE waiting_rooms SET admitted_through = LEAST(joined, admitted_through + $2)
         WHERE event_id = $1 AND admitted_through = $3
         RETURNING admitted_through",
    )
    .bind(queue.event_id)
    .bind(places)
    .bind(queue.admitted_through)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(through) = through else {
        tx.rollback().await?;
        return Ok(0);
    };
    let from = queue.admitted_through;
    let stamped = sqlx::query(
        "WITH admitted AS (
            UPDATE waiting_room_places
               SET admitted_at = now(),
                   admitted_until = now() + make_interval(mins => $4)
             WHERE event_id = $1 AND ordinal > $2 AND ordinal <= $3
             RETURNING user_id, ordinal, admitted_at)
         INSERT INTO waiting_room_admissions (event_id, user_id, ordinal, admitted_at)
         SELECT $1, user_id, ordinal, admitted_at FROM admitted ORDER BY ordinal",
    )
    .bind(queue.event_id)
    .bind(from)
    .bind(through)
    .bind(queue.admission_minutes)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    // Every ordinal in (from, through] is a waiting place (see the migration); anything else
    // is a broken invariant, and admitting part of a range would skip someone.
    anyhow::ensure!(
        i64::try_from(stamped)? == through - from,
        "queue {}: ordinals {}..={} should be {} waiting places, found {stamped}",
        queue.event_id,
        from + 1,
        through,
        through - from
    );
    let payload = serde_json::json!({"event_id": queue.event_id, "from": from, "through": through});
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(ADMITTED_CHANNEL)
        .bind(payload.to_string())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    metrics::counter!("waiting_room_admissions_total").increment(stamped);
    Ok(through - from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(admit_per_minute: i32) -> Queue {
        Queue {
            event_id: Uuid::nil(),
            admit_per_minute,
            admission_minutes: 10,
            admitted_through: 0,
        }
    }

    #[test]
    fn credit_accrues_smoothly_at_the_rate() {
        let mut credits = Credits::default();
        let q = queue(600); // ten a second
        let mut admitted = credits.earn(&q, Duration::ZERO);
        assert_eq!(admitted, 1, "the first place at once");
        credits.spend(q.event_id, admitted);
        for _ in 0..100 {
            let places = credits.earn(&q, Duration::from_millis(100));
            credits.spend(q.event_id, places);
            assert!(places <= 1, "a 100 ms tick at 10/s admits at most one");
            admitted += places;
        }
        // The first place at once, then 10 s at ten a second (give or take float rounding).
        assert!((100..=101).contains(&admitted), "admitted {admitted}");
    }

    #[test]
    fn credit_is_capped_at_one_second() {
        let mut credits = Credits::default();
        let q = queue(600);
        assert_eq!(credits.earn(&q, Duration::from_secs(60)), 10);
    }

    #[test]
    fn a_slow_rate_waits_for_a_whole_place() {
        let mut credits = Credits::default();
        let q = queue(6); // one every ten seconds
        assert_eq!(credits.earn(&q, Duration::ZERO), 1, "the first at once");
        credits.spend(q.event_id, 1);
        assert_eq!(credits.earn(&q, Duration::from_secs(5)), 0);
        assert_eq!(credits.earn(&q, Duration::from_secs(5)), 1);
    }
}
