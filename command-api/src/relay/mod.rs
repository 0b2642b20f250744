//! The relay: publishes the events table to Kafka in commit order, at least once.
//!
//! Guarantees: every committed event is published (the feed never skips a late-committing
//! transaction, see `feed`); per-aggregate order is preserved (same key → same partition,
//! idempotent producer); the checkpoint moves only after the broker acknowledged the whole
//! batch, so a crash resends (byte-identical envelopes) and never loses. One relay is active at
//! a time: it holds a session advisory lock on a dedicated connection and writes its
//! checkpoint through that same connection, so a relay that lost its lock cannot move the
//! checkpoint; standbys poll for the lock and take over.

mod feed;
mod publish;

use std::time::Duration;

use anyhow::Context;
use axum::Router;
use plumbing::ops::{self, OpsState};
use sqlx::{Connection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::settings::RelaySettings;
use feed::{Checkpoint, Cursor};
use publish::Publisher;

pub async fn run(settings: RelaySettings) -> anyhow::Result<()> {
    let pool = plumbing::db::connect(&settings.infra.database_url, 4).await?;
    let kafka = settings.infra.kafka();
    kafka
        .ensure_topics(&schemas::topics::all_topics(&kafka.topic_prefix))
        .await?;
    let publisher = Publisher::new(kafka.clone())?;
    let shutdown = plumbing::shutdown::on_signal();

    let ops_state = OpsState::new(pool.clone(), kafka, shutdown.clone());
    let ops_router: Router = ops::router(ops_state);
    let ops_addr = settings.ops_addr.clone();
    let ops_shutdown = shutdown.clone();
    tokio::spawn(async move {
        if let Err(err) = ops::serve(ops_addr, ops_router, ops_shutdown).await {
            tracing::error!(error = %err, "operations server failed");
        }
    });

    while !shutdown.is_cancelled() {
        if let Err(err) = lead(&pool, &publisher, &settings, &shutdown).await {
            metrics::gauge!("relay_active").set(0.0);
            tracing::warn!(
                error = format!("{err:#}"),
                "relay interrupted; starting over"
            );
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
    tracing::info!("relay stopped");
    Ok(())
}

/// Waits to become the active relay, then publishes until shutdown or an error.
async fn lead(
    pool: &PgPool,
    publisher: &Publisher,
    settings: &RelaySettings,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?.detach();
    let lock_key = plumbing::db::advisory_key("relay", &settings.name);
    let mut waiting_logged = false;
    loop {
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(lock_key)
            .fetch_one(&mut conn)
            .await?;
        if locked {
            break;
        }
        if !waiting_logged {
            tracing::info!("another relay is active; standing by");
            waiting_logged = true;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
    tracing::info!(name = %settings.name, "active relay");
    metrics::gauge!("relay_active").set(1.0);

    let mut cursor = Checkpoint::load(&mut conn, &settings.name).await?;
    let idle = Duration::from_millis(settings.idle_poll_ms);
    while !shutdown.is_cancelled() {
        let batch = feed::next_batch(&mut conn, &cursor, settings.batch_size).await?;
        let Some(last) = batch.last() else {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(idle) => {}
            }
            continue;
        };
        let next = Cursor::after(last);
        let lag = (chrono::Utc::now() - last.recorded_at)
            .num_milliseconds()
            .max(0) as f64
            / 1000.0;
        publisher
            .publish(&batch)
            .await
            .context("publishing a batch")?;
        Checkpoint::save(&next, &mut conn, &settings.name).await?;
        metrics::counter!("relay_events_published_total").increment(batch.len() as u64);
        metrics::gauge!("relay_lag_seconds").set(lag);
        cursor = next;
    }
    conn.close().await.ok();
    Ok(())
}
