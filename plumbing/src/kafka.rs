//! Kafka clients configured the one way this project uses them, and topic creation.

use std::time::Duration;

use anyhow::Context;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::FutureProducer;

/// Largest record this system produces: request bodies are capped at 1 MiB, and an event and
/// its envelope stay well below eight times that.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// Settings shared by every Kafka client of a process.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    pub brokers: String,
    /// Prepended to every topic name (isolates tests and tenants on one broker).
    pub topic_prefix: String,
    pub partitions: i32,
    pub replication_factor: i32,
}

impl KafkaSettings {
    pub(crate) fn base(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", "ticketing");
        config
    }

    /// A consumer group id, prefixed like the topics.
    pub fn group_id(&self, name: &str) -> String {
        format!("{}{name}", self.topic_prefix)
    }

    /// The idempotent, all-replicas-acknowledged producer: a retried send is never
    /// duplicated by the broker and an acknowledged one is on every in-sync replica.
    pub fn producer(&self) -> anyhow::Result<FutureProducer> {
        self.producer_config()
            .create()
            .context("cannot create Kafka producer")
    }

    /// The relay's producer: as `producer`, and a failed batch never leaves a gap behind
    /// which later records of the same partition were written (librdkafka would otherwise
    /// bump its epoch and carry on); such a failure is fatal to the producer instead, and the
    /// relay replaces it and resends from its checkpoint, in order.
    pub fn ordered_producer(&self) -> anyhow::Result<FutureProducer> {
        self.producer_config()
            .set("enable.gapless.guarantee", "true")
            .create()
            .context("cannot create Kafka producer")
    }

    fn producer_config(&self) -> ClientConfig {
        let mut config = self.base();
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2")
            // Above the largest envelope a 1 MiB request can produce (see `MAX_MESSAGE_BYTES`).
            .set("message.max.bytes", MAX_MESSAGE_BYTES.to_string())
            .set("message.timeout.ms", "30000");
        config
    }

    /// A consumer config for at-least-once processing: offsets are stored by the code only
    /// after the effect of a message is durable, and committed from the store periodically.
    pub fn consumer_config(&self, group_id: &str) -> ClientConfig {
        let mut config = self.base();
        config
            .set("group.id", group_id)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            .set("enable.partition.eof", "false")
            // Fewer, fuller fetches: the broker answers when 64 KiB are ready or after
            // 10 ms. Under load a fetch carries a batch (one transaction for the consumer,
            // one request for the broker, which answers nine groups); idle, an event waits
            // at most 10 ms. With the defaults (1 byte, 500 ms) every produced batch woke
            // every group with a request of its own.
            .set("fetch.min.bytes", "65536")
            .set("fetch.wait.max.ms", "10");
        config
    }

    /// Creates the topics that do not exist yet; existing ones are left as they are.
    pub async fn ensure_topics(&self, topics: &[String]) -> anyhow::Result<()> {
        let admin: AdminClient<DefaultClientContext> = self
            .base()
            .create()
            .context("cannot create Kafka admin client")?;
        let max_bytes = MAX_MESSAGE_BYTES.to_string();
        let new_topics: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|name| {
                NewTopic::new(
                    name,
                    self.partitions,
                    TopicReplication::Fixed(self.replication_factor),
                )
                .set("max.message.bytes", &max_bytes)
            })
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
        let results = admin
            .create_topics(new_topics.iter(), &options)
            .await
            .context("cannot create Kafka topics")?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => anyhow::bail!("cannot create topic {topic}: {code}"),
            }
        }
        Ok(())
    }
}
