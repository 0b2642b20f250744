//! Turns stored rows into envelopes and publishes a batch, waiting for every acknowledgement.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context;
use plumbing::kafka::KafkaSettings;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::Mutex;

use super::feed::StoredEvent;
pub use plumbing::feed::envelope_of;

pub struct Publisher {
    kafka: KafkaSettings,
    /// Replaced after any failed batch: a producer whose batch failed may hold records in
    /// flight or be in a fatal state, and resending from the checkpoint must start clean.
    producer: Mutex<FutureProducer>,
    /// Topics known to exist; an event of a new aggregate type creates its topic first.
    ensured: Mutex<HashSet<String>>,
}

impl Publisher {
    pub fn new(kafka: KafkaSettings) -> anyhow::Result<Self> {
        Ok(Self {
            producer: Mutex::new(kafka.ordered_producer()?),
            kafka,
            ensured: Mutex::new(HashSet::new()),
        })
    }

    /// Publishes every event of `batch`; returns only when all were acknowledged.
    pub async fn publish(&self, batch: &[StoredEvent]) -> anyhow::Result<()> {
        let mut producer = self.producer.lock().await;
        let result = self.publish_with(&producer, batch).await;
        if result.is_err() {
            *producer = self.kafka.ordered_producer()?;
        }
        result
    }

    async fn publish_with(
        &self,
        producer: &FutureProducer,
        batch: &[StoredEvent],
    ) -> anyhow::Result<()> {
        let mut records = Vec::with_capacity(batch.len());
        for row in batch {
            let topic = schemas::topics::topic_for(&self.kafka.topic_prefix, &row.aggregate_type);
            self.ensure_topic(&topic).await?;
            let envelope = envelope_of(row);
            if let Err(err) = schemas::decode(&envelope) {
                // Publish anyway: holding the feed back would stall every consumer; the
                // consumers dead-letter what they cannot decode.
                metrics::counter!("relay_undecodable_events_total").increment(1);
                tracing::error!(error = %err, aggregate_type = %row.aggregate_type,
                    aggregate_id = %row.aggregate_id, sequence = row.sequence,
                    "stored event does not decode");
            }
            let payload = serde_json::to_vec(&envelope).context("serialising envelope")?;
            records.push((topic, row, envelope.metadata, payload));
        }
        // Enqueue strictly in feed order (a record the full local queue refuses is retried
        // before the next one is enqueued), then wait for every acknowledgement. Awaiting
        // `send` futures concurrently would let a retried record overtake later ones.
        let mut deliveries = Vec::with_capacity(records.len());
        for (topic, row, metadata, payload) in &records {
            let mut headers = OwnedHeaders::new()
                .insert(Header {
                    key: "event_type",
                    value: Some(row.event_type.as_str()),
                })
                .insert(Header {
                    key: "aggregate_type",
                    value: Some(row.aggregate_type.as_str()),
                });
            if let Some(correlation) = &metadata.correlation_id {
                headers = headers.insert(Header {
                    key: "correlation_id",
                    value: Some(correlation.as_str()),
                });
            }
            let mut record = FutureRecord::to(topic)
                .key(row.aggregate_id.as_str())
                .payload(payload.as_slice())
                .headers(headers);
            loop {
                match producer.send_result(record) {
                    Ok(delivery) => {
                        deliveries.push(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), refused)) => {
                        record = refused;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    Err((err, _)) => return Err(err).context("cannot enqueue record"),
                }
            }
        }
        for delivery in deliveries {
            delivery
                .await
                .context("producer dropped a delivery")?
                .map_err(|(err, _)| err)
                .context("broker did not acknowledge")?;
        }
        Ok(())
    }

    async fn ensure_topic(&self, topic: &str) -> anyhow::Result<()> {
        let mut ensured = self.ensured.lock().await;
        if !ensured.contains(topic) {
            self.kafka.ensure_topics(&[topic.to_owned()]).await?;
            ensured.insert(topic.to_owned());
        }
        Ok(())
    }
}
