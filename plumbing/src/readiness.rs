//! Readiness measured in the background: one probe of PostgreSQL and Kafka every few
//! seconds, from one long-lived Kafka client, so `GET /ready` only reads the last answer.
//! A flood of `/ready` calls therefore costs no connections, threads or broker requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::kafka::KafkaSettings;

/// How often the probe runs; `/ready` answers at most this stale.
pub const REFRESH: Duration = Duration::from_secs(2);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The last probe's answer; not ready until a first probe succeeded.
#[derive(Clone, Default)]
pub struct Readiness {
    postgres: Arc<AtomicBool>,
    kafka: Arc<AtomicBool>,
}

impl Readiness {
    /// Starts probing `pool` and `kafka` every [`REFRESH`] until `stop` fires.
    pub fn spawn(pool: PgPool, kafka: KafkaSettings, stop: CancellationToken) -> Readiness {
        let readiness = Readiness::default();
        let probing = readiness.clone();
        tokio::spawn(async move {
            let mut client: Option<Arc<BaseConsumer>> = None;
            loop {
                let postgres = sqlx::query("SELECT 1").execute(&pool).await.is_ok();
                probing.postgres.store(postgres, Ordering::Relaxed);
                if client.is_none() {
                    client = kafka.base().create::<BaseConsumer>().ok().map(Arc::new);
                }
                let reachable = match client.clone() {
                    // librdkafka's metadata request blocks: keep it off the async workers.
                    Some(client) => tokio::task::spawn_blocking(move || {
                        client.fetch_metadata(None, PROBE_TIMEOUT).is_ok()
                    })
                    .await
                    .unwrap_or(false),
                    None => false,
                };
                probing.kafka.store(reachable, Ordering::Relaxed);
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(REFRESH) => {}
                }
            }
        });
        readiness
    }

    pub fn postgres(&self) -> bool {
        self.postgres.load(Ordering::Relaxed)
    }

    pub fn kafka(&self) -> bool {
        self.kafka.load(Ordering::Relaxed)
    }
}
