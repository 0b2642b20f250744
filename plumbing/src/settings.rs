//! Settings every process shares (PostgreSQL and Kafka), flattened into each binary's own
//! typed settings; read from the environment or the same names as flags.

use clap::Args;

use crate::kafka::KafkaSettings;

/// Connections shared by every process: PostgreSQL and Kafka.
#[derive(Debug, Clone, Args)]
pub struct Infra {
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://ticketing:ticketing@127.0.0.1:5432/ticketing"
    )]
    pub database_url: String,
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 20)]
    pub database_max_connections: u32,
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,
    #[arg(long, env = "KAFKA_TOPIC_PREFIX", default_value = "")]
    pub kafka_topic_prefix: String,
    #[arg(long, env = "KAFKA_PARTITIONS", default_value_t = 6)]
    pub kafka_partitions: i32,
    #[arg(long, env = "KAFKA_REPLICATION_FACTOR", default_value_t = 1)]
    pub kafka_replication_factor: i32,
}

impl Infra {
    pub fn kafka(&self) -> KafkaSettings {
        KafkaSettings {
            brokers: self.kafka_brokers.clone(),
            topic_prefix: self.kafka_topic_prefix.clone(),
            partitions: self.kafka_partitions,
            replication_factor: self.kafka_replication_factor,
        }
    }
}
