//! A consumer's health, measured every few seconds by its runtime: the highest global
//! position it has applied, its lag in messages (the assigned partitions' high watermarks
//! minus its positions) and the size of its dead-letter topic. Exported as Prometheus gauges
//! labelled by group and, when the consumer has a database, written to `consumer_health` for
//! `GET /api/admin/projections`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use rdkafka::Offset;
use rdkafka::consumer::{Consumer, StreamConsumer};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

const EVERY: Duration = Duration::from_secs(5);
const KAFKA_TIMEOUT: Duration = Duration::from_secs(3);

pub struct Reporter {
    pub consumer: Arc<StreamConsumer>,
    pub name: String,
    pub group_id: String,
    pub dead_letter_topic: String,
    pub applied_position: Arc<AtomicI64>,
    pub pool: Option<PgPool>,
}

#[derive(Debug, Clone, Copy)]
struct Measured {
    lag: i64,
    dead_lettered: i64,
}

impl Reporter {
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(EVERY) => {}
            }
            let consumer = self.consumer.clone();
            let dead_letter_topic = self.dead_letter_topic.clone();
            // librdkafka's watermark queries block; keep them off the async workers.
            let measured =
                tokio::task::spawn_blocking(move || measure(&consumer, &dead_letter_topic)).await;
            let Ok(Some(measured)) = measured else {
                continue;
            };
            let applied = self.applied_position.load(Ordering::Relaxed);
            let group = self.group_id.clone();
            metrics::gauge!("consumer_lag_messages", "group" => group.clone())
                .set(measured.lag as f64);
            metrics::gauge!("consumer_dead_letter_messages", "group" => group.clone())
                .set(measured.dead_lettered as f64);
            metrics::gauge!("consumer_applied_position", "group" => group).set(applied as f64);
            if let Some(pool) = &self.pool {
                let written = sqlx::query(
                    "INSERT INTO consumer_health
                        (consumer, applied_position, lag_messages, dead_lettered, reported_at)
                     VALUES ($1, $2, $3, $4, now())
                     ON CONFLICT (consumer) DO UPDATE
                        SET applied_position = greatest(consumer_health.applied_position,
                                                        EXCLUDED.applied_position),
                            lag_messages = EXCLUDED.lag_messages,
                            dead_lettered = EXCLUDED.dead_lettered,
                            reported_at = EXCLUDED.reported_at",
                )
                .bind(&self.name)
                .bind(applied)
                .bind(measured.lag)
                .bind(measured.dead_lettered)
                .execute(pool)
                .await;
                if let Err(err) = written {
                    tracing::warn!(error = %err, "cannot record consumer health");
                }
            }
        }
    }
}

fn measure(consumer: &StreamConsumer, dead_letter_topic: &str) -> Option<Measured> {
    let positions = consumer.position().ok()?;
    let mut lag = 0;
    for element in positions.elements() {
        let Ok((_, high)) =
            consumer.fetch_watermarks(element.topic(), element.partition(), KAFKA_TIMEOUT)
        else {
            continue;
        };
        // Nothing consumed yet in this partition since the assignment: count none rather
        // than guess (the next report has a position).
        if let Offset::Offset(position) = element.offset() {
            lag += (high - position).max(0);
        }
    }
    let metadata = consumer
        .fetch_metadata(Some(dead_letter_topic), KAFKA_TIMEOUT)
        .ok()?;
    let mut dead_lettered = 0;
    for topic in metadata.topics() {
        for partition in topic.partitions() {
            if let Ok((low, high)) =
                consumer.fetch_watermarks(topic.name(), partition.id(), KAFKA_TIMEOUT)
            {
                dead_lettered += (high - low).max(0);
            }
        }
    }
    Some(Measured { lag, dead_lettered })
}
