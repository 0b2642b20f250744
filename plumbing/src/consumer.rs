//! The at-least-once consumer runtime shared by projections, saga and notifier.
//!
//! Guarantees: a message's offset is stored only after its handler reported the effect
//! durable (or after it was dead-lettered), so a crash at any point redelivers rather than
//! loses; transient failures are retried with exponential backoff and jitter; a poison
//! message, or one still failing after every retry, goes to the group's dead-letter topic with
//! the error and the original record, and the partition moves on. SIGTERM finishes the
//! message in flight, commits the stored offsets synchronously and leaves the group.
//! Non-guarantee: exactly-once delivery; handlers dedupe (see `projection`).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use futures::FutureExt;
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use schemas::Envelope;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::kafka::KafkaSettings;

/// How a handler failed, which decides what the runtime does next.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// A dependency is down (connection refused, pool exhausted): retried without limit —
    /// dead-lettering would turn an outage into lost events.
    #[error("unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// Might succeed on another try (deadlock, serialisation failure, a timeout): retried
    /// with backoff, then dead-lettered.
    #[error("transient: {0:#}")]
    Transient(anyhow::Error),
    /// Will never succeed (undecodable, breaks the contract): dead-letter at once.
    #[error("poison: {0:#}")]
    Poison(anyhow::Error),
}

impl HandleError {
    pub fn is_retryable(&self) -> bool {
        !matches!(self, HandleError::Poison(_))
    }
}

impl From<sqlx::Error> for HandleError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            // SQLSTATE classes 22 (data exception) and 23 (integrity constraint): the same
            // input fails the same way every time.
            sqlx::Error::Database(db)
                if db
                    .code()
                    .is_some_and(|c| c.starts_with("22") || c.starts_with("23")) =>
            {
                HandleError::Poison(err.into())
            }
            sqlx::Error::Database(_)
            | sqlx::Error::Decode(_)
            | sqlx::Error::ColumnDecode { .. } => HandleError::Transient(err.into()),
            _ => HandleError::Unavailable(err.into()),
        }
    }
}

#[async_trait]
pub trait Handler: Send + Sync {
    async fn handle(&self, envelope: &Envelope) -> Result<(), HandleError>;

    /// Handles messages that arrived together, in order. A handler whose effects live in one
    /// database applies them in one transaction (see `projection`); this default handles them
    /// one after another. On an error the runtime handles every message of the batch again,
    /// one by one with retries, so what this did before failing must be idempotent — as
    /// every handler already is, messages being delivered at least once.
    async fn handle_batch(&self, envelopes: &[Envelope]) -> Result<(), HandleError> {
        for envelope in envelopes {
            self.handle(envelope).await?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub kafka: KafkaSettings,
    /// The consumer's name; the group id is the prefixed name.
    pub name: String,
    pub group_id: String,
    pub topics: Vec<String>,
    /// Attempts of a transiently failing message before it is dead-lettered.
    pub max_attempts: usize,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Where to record the consumer's health (`consumer_health`); metrics are exported
    /// either way.
    pub health: Option<sqlx::PgPool>,
}

impl ConsumerSettings {
    pub fn new(kafka: KafkaSettings, name: impl Into<String>, topics: Vec<String>) -> Self {
        let name = name.into();
        Self {
            group_id: kafka.group_id(&name),
            name,
            kafka,
            topics,
            max_attempts: 8,
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(10),
            health: None,
        }
    }

    fn dead_letter_topic(&self) -> String {
        schemas::topics::dead_letter_topic(&self.kafka.topic_prefix, &self.name)
    }
}

/// Consumes until `shutdown` fires.
pub async fn run(
    settings: ConsumerSettings,
    handler: Arc<dyn Handler>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let dead_letter_topic = settings.dead_letter_topic();
    let mut topics = settings.topics.clone();
    topics.push(dead_letter_topic.clone());
    settings.kafka.ensure_topics(&topics).await?;

    let consumer: Arc<StreamConsumer> = Arc::new(
        settings
            .kafka
            .consumer_config(&settings.group_id)
            .create()
            .context("cannot create Kafka consumer")?,
    );
    let subscribed: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&subscribed)
        .context("cannot subscribe to topics")?;
    let applied_position = Arc::new(AtomicI64::new(0));
    tokio::spawn(
        crate::health::Reporter {
            consumer: consumer.clone(),
            name: settings.name.clone(),
            group_id: settings.group_id.clone(),
            dead_letter_topic: dead_letter_topic.clone(),
            applied_position: applied_position.clone(),
            pool: settings.health.clone(),
        }
        .run(shutdown.clone()),
    );
    let runtime = Runtime {
        producer: settings.kafka.producer()?,
        applied_position,
        dead_letter_topic,
        settings,
        handler,
        shutdown: shutdown.clone(),
    };
    tracing::info!(group = %runtime.settings.group_id, topics = ?runtime.settings.topics, "consuming");

    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => break,
            message = consumer.recv() => message,
        };
        let first = match message {
            Ok(message) => message,
            Err(err) => {
                tracing::warn!(error = %err, "Kafka consumer error");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        // Whatever else has already arrived is handled with it: under load a batch, when
        // idle a single message and no added latency.
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match consumer.recv().now_or_never() {
                Some(Ok(message)) => batch.push(message),
                Some(Err(err)) => {
                    tracing::warn!(error = %err, "Kafka consumer error");
                    break;
                }
                None => break,
            }
        }
        if runtime.process_batch(&batch).await == Processed::Durable {
            for message in &batch {
                consumer
                    .store_offset_from_message(message)
                    .context("cannot store consumer offset")?;
            }
        } else {
            break; // interrupted by shutdown: the messages will be redelivered
        }
    }

    // Drain: commit what is stored, then leave the group (the consumer's drop closes it).
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(())
        | Err(rdkafka::error::KafkaError::ConsumerCommit(
            rdkafka::types::RDKafkaErrorCode::NoOffset,
        )) => {}
        Err(err) => tracing::warn!(error = %err, "final offset commit failed"),
    }
    drop(consumer);
    tracing::info!(group = %runtime.settings.group_id, "consumer stopped");
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
enum Processed {
    /// Applied, skipped as duplicate, or dead-lettered: the offset may be stored.
    Durable,
    Interrupted,
}

struct Runtime {
    settings: ConsumerSettings,
    /// The highest global position applied (for the health report).
    applied_position: Arc<AtomicI64>,
    handler: Arc<dyn Handler>,
    producer: FutureProducer,
    dead_letter_topic: String,
    shutdown: CancellationToken,
}

/// How long a message in flight may still take once shutdown was requested.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Most messages handled together (see `Handler::handle_batch`).
const MAX_BATCH: usize = 256;

impl Runtime {
    /// Runs the handler with bounded retries for transient failures, and without bound while
    /// a dependency is unavailable.
    fn attempts<'a>(
        &'a self,
        envelope: &'a Envelope,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), HandleError>> + Send + 'a>>
    {
        Box::pin(async move {
            loop {
                let attempt = || self.handler.handle(envelope);
                let result = attempt
                    .retry(
                        ExponentialBuilder::default()
                            .with_min_delay(self.settings.backoff_min)
                            .with_max_delay(self.settings.backoff_max)
                            .with_max_times(self.settings.max_attempts.saturating_sub(1))
                            .with_jitter(),
                    )
                    .when(HandleError::is_retryable)
                    .notify(|err, after| {
                        tracing::warn!(error = %err, retry_in = ?after, "handler failed, retrying");
                    })
                    .await;
                match result {
                    Err(HandleError::Unavailable(err)) => {
                        tracing::warn!(
                            error = format!("{err:#}"),
                            "dependency unavailable; still retrying"
                        );
                        tokio::time::sleep(self.settings.backoff_max).await;
                    }
                    other => return other,
                }
            }
        })
    }

    /// Handles messages that arrived together in one go when it can; when the batch fails
    /// (a poison message, a conflict, an outage), handles them one by one, so retries and
    /// dead-lettering stay per message.
    async fn process_batch(&self, batch: &[BorrowedMessage<'_>]) -> Processed {
        if let [message] = batch {
            return self.process(message).await;
        }
        let envelopes: Option<Vec<Envelope>> = batch
            .iter()
            .map(|m| serde_json::from_slice::<Envelope>(m.payload().unwrap_or_default()).ok())
            .collect();
        if let Some(envelopes) = envelopes {
            // Not raced against shutdown: a batch is one short transaction, and abandoning
            // it midway would only redeliver it.
            match self.handler.handle_batch(&envelopes).await {
                Ok(()) => {
                    let last = envelopes.iter().map(|e| e.global_position).max();
                    self.applied_position
                        .fetch_max(last.unwrap_or_default(), Ordering::Relaxed);
                    metrics::counter!("consumer_messages_total", "group" => self.settings.group_id.clone(), "outcome" => "ok")
                        .increment(envelopes.len() as u64);
                    metrics::histogram!("consumer_batch_size", "group" => self.settings.group_id.clone())
                        .record(envelopes.len() as f64);
                    return Processed::Durable;
                }
                Err(err) => {
                    tracing::debug!(error = %err, size = batch.len(), "batch failed; handling its messages one by one");
                }
            }
        }
        for message in batch {
            if self.process(message).await == Processed::Interrupted {
                return Processed::Interrupted;
            }
        }
        Processed::Durable
    }

    async fn process(&self, message: &BorrowedMessage<'_>) -> Processed {
        let span = tracing::info_span!(
            "message",
            group = %self.settings.group_id,
            topic = message.topic(),
            partition = message.partition(),
            offset = message.offset(),
            event_type = tracing::field::Empty,
            aggregate_id = tracing::field::Empty,
        );
        async {
            let outcome = match serde_json::from_slice::<Envelope>(message.payload().unwrap_or_default()) {
                Err(err) => Err(HandleError::Poison(
                    anyhow::Error::new(err).context("undecodable envelope"),
                )),
                Ok(envelope) => {
                    tracing::Span::current()
                        .record("event_type", envelope.event_type.as_str())
                        .record("aggregate_id", envelope.aggregate_id.as_str());
                    let position = envelope.global_position;
                    let mut attempts = self.attempts(&envelope);
                    let result = tokio::select! {
                        result = &mut attempts => result,
                        _ = self.shutdown.cancelled() => {
                            // Let the message in flight finish (or fail) within a grace
                            // period rather than abandoning a half-done side effect.
                            match tokio::time::timeout(SHUTDOWN_GRACE, attempts).await {
                                Ok(result) => result,
                                Err(_) => return Processed::Interrupted,
                            }
                        }
                    };
                    if result.is_ok() {
                        self.applied_position.fetch_max(position, Ordering::Relaxed);
                    }
                    result
                }
            };
            match outcome {
                Ok(()) => {
                    metrics::counter!("consumer_messages_total", "group" => self.settings.group_id.clone(), "outcome" => "ok").increment(1);
                    Processed::Durable
                }
                Err(err) => self.dead_letter(message, &err).await,
            }
        }
        .instrument(span)
        .await
    }

    /// Publishes the original record with the error to the dead-letter topic; keeps trying
    /// until the broker acknowledges, because moving on without it would lose the message.
    async fn dead_letter(&self, message: &BorrowedMessage<'_>, err: &HandleError) -> Processed {
        tracing::error!(error = %err, "dead-lettering message");
        let error_text = err.to_string();
        let partition = message.partition().to_string();
        let offset = message.offset().to_string();
        loop {
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "x-error",
                    value: Some(error_text.as_str()),
                })
                .insert(Header {
                    key: "x-original-topic",
                    value: Some(message.topic()),
                })
                .insert(Header {
                    key: "x-original-partition",
                    value: Some(partition.as_str()),
                })
                .insert(Header {
                    key: "x-original-offset",
                    value: Some(offset.as_str()),
                })
                .insert(Header {
                    key: "x-consumer-group",
                    value: Some(self.settings.group_id.as_str()),
                });
            let mut record = FutureRecord::to(&self.dead_letter_topic)
                .payload(message.payload().unwrap_or_default())
                .headers(headers);
            if let Some(key) = message.key() {
                record = record.key(key);
            }
            let sent = tokio::select! {
                sent = self.producer.send(record, Duration::from_secs(30)) => sent,
                _ = self.shutdown.cancelled() => return Processed::Interrupted,
            };
            match sent {
                Ok(_) => {
                    metrics::counter!("consumer_dead_lettered_total", "group" => self.settings.group_id.clone()).increment(1);
                    return Processed::Durable;
                }
                Err((kafka_err, _)) => {
                    tracing::warn!(error = %kafka_err, "cannot dead-letter yet, retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }
}
