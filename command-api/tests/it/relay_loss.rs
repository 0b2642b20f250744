//! The relay loses nothing: concurrent writers (some holding transactions open so positions
//! commit out of order) while the relay is SIGKILLed and restarted mid-stream; a consumer that
//! applies each aggregate's events strictly in sequence (as every consumer here does) then
//! applies every event, and every duplicate is an exact resend.
//!
//! A relay killed while a batch is in flight can leave part of that batch in the log ahead of
//! records that never arrived; the next relay resends from its checkpoint, in order. Those
//! early fragments are counted (`ahead`) and must all be covered by a later resend.
//!
//! Runs on its own PostgreSQL cluster (`TEST_ISOLATED_DATABASE_URL`): a deliberately open
//! transaction holds back every relay on the same cluster.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use plumbing::testkit::{self, Service};
use rand::Rng;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use schemas::Envelope;
use sqlx::PgPool;

const WRITERS: usize = 8;
const EVENTS_PER_WRITER: usize = 650;
const AGGREGATES_PER_WRITER: usize = 10;
const RELAY_KILLS: usize = 3;
const THROUGHPUT_EVENTS: usize = 5_000;

async fn insert_events(
    pool: &PgPool,
    aggregate_id: &str,
    first_sequence: i64,
    count: i64,
    hold: Option<Duration>,
) {
    let mut tx = pool.begin().await.expect("begin");
    for sequence in first_sequence..first_sequence + count {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             VALUES ('user', $1, $2, 'ProfileUpdated', '1', $3, '{}')",
        )
        .bind(aggregate_id)
        .bind(sequence)
        .bind(serde_json::json!({"ProfileUpdated": {"name": format!("{aggregate_id}/{sequence}"), "phone": null}}))
        .execute(&mut *tx)
        .await
        .expect("insert event");
    }
    if let Some(hold) = hold {
        // Deliberately keep the transaction open: rows with lower positions commit later.
        tokio::time::sleep(hold).await;
    }
    tx.commit().await.expect("commit");
}

async fn writer(pool: PgPool, writer: usize) {
    let aggregates: Vec<String> = (0..AGGREGATES_PER_WRITER)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let mut next = [1i64; AGGREGATES_PER_WRITER];
    let mut written = 0;
    let mut tx_no = 0;
    while written < EVENTS_PER_WRITER {
        let (which, count, hold) = {
            let mut rng = rand::rng();
            let count = rng.random_range(1..=8).min(EVENTS_PER_WRITER - written);
            let hold =
                (tx_no % 9 == writer % 9).then(|| Duration::from_millis(rng.random_range(50..250)));
            (rng.random_range(0..AGGREGATES_PER_WRITER), count, hold)
        };
        insert_events(&pool, &aggregates[which], next[which], count as i64, hold).await;
        next[which] += count as i64;
        written += count;
        tx_no += 1;
    }
}

async fn checkpoint(pool: &PgPool) -> i64 {
    sqlx::query_scalar::<_, i64>(
        "SELECT coalesce(max(global_position), 0)::bigint FROM relay_checkpoint",
    )
    .fetch_one(pool)
    .await
    .expect("checkpoint")
}

struct Received {
    /// (aggregate id, sequence) → first payload bytes seen.
    first: HashMap<(String, u64), Vec<u8>>,
    /// Per aggregate, the highest sequence seen so far, for the order check.
    high: HashMap<String, u64>,
    duplicates: usize,
    /// Records that arrived ahead of a missing event of their aggregate.
    ahead: usize,
}

impl Received {
    fn new() -> Self {
        Self {
            first: HashMap::new(),
            high: HashMap::new(),
            duplicates: 0,
            ahead: 0,
        }
    }

    fn take(&mut self, bytes: &[u8]) {
        crate::contract::assert_envelope(bytes);
        let envelope: Envelope = serde_json::from_slice(bytes).expect("envelope");
        let key = (envelope.aggregate_id.clone(), envelope.sequence);
        if let Some(earlier) = self.first.get(&key) {
            assert_eq!(
                earlier.as_slice(),
                bytes,
                "a duplicate that is not an exact resend"
            );
            self.duplicates += 1;
            return;
        }
        let high = self.high.entry(envelope.aggregate_id.clone()).or_insert(0);
        if envelope.sequence > *high + 1 {
            // Ahead of a missing event: a fragment of a batch whose relay died; it must come
            // again after the missing ones (checked by completeness at the end).
            self.ahead += 1;
            return;
        }
        *high = envelope.sequence;
        self.first.insert(key, bytes.to_vec());
    }
}

async fn receive_until(
    consumer: &StreamConsumer,
    received: &mut Received,
    total: usize,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    while received.first.len() < total {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "only {} of {total} events arrived",
            received.first.len()
        );
        if let Ok(Ok(message)) =
            tokio::time::timeout(left.min(Duration::from_secs(1)), consumer.recv()).await
        {
            received.take(message.payload().expect("payload"));
        }
    }
}

#[tokio::test]
async fn relay_loses_nothing_when_killed_mid_stream() {
    let db = testkit::fresh_database_on(&testkit::isolated_database_url()).await;
    let prefix = testkit::unique_prefix();
    let env = testkit::service_env(&db.url, &prefix);
    let kafka = testkit::kafka(&prefix);
    let topic = schemas::topics::topic_for(&prefix, "user");
    kafka
        .ensure_topics(std::slice::from_ref(&topic))
        .await
        .expect("topic");

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(db.pool.clone(), w)))
        .collect();

    let mut relay = Service::start("relay", &env, true).await;
    for kill in 0..RELAY_KILLS {
        let before = checkpoint(&db.pool).await;
        testkit::eventually(
            "relay progress before a kill",
            Duration::from_secs(60),
            || async { (checkpoint(&db.pool).await > before).then_some(()) },
        )
        .await;
        relay.kill().await;
        eprintln!("relay killed ({} of {RELAY_KILLS})", kill + 1);
        relay = Service::start("relay", &env, true).await;
    }
    for w in writers {
        w.await.expect("writer");
    }
    let total = WRITERS * EVENTS_PER_WRITER;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&db.pool)
        .await
        .expect("count");
    assert_eq!(stored as usize, total);

    let consumer: StreamConsumer = kafka
        .consumer_config(&format!("{prefix}verifier"))
        .create()
        .expect("consumer");
    // Read every partition from its first record without a consumer group: the verifier must
    // see the log exactly as it is, untouched by rebalances.
    let partitions = consumer
        .fetch_metadata(Some(&topic), Duration::from_secs(10))
        .expect("metadata")
        .topics()[0]
        .partitions()
        .len() as i32;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(&topic, partition, Offset::Beginning)
            .expect("assign partition");
    }
    consumer.assign(&assignment).expect("assign");
    let mut received = Received::new();
    receive_until(&consumer, &mut received, total, Duration::from_secs(120)).await;
    eprintln!(
        "relay under kills: {total} events delivered, {} exact resends, {} records ahead of a resend",
        received.duplicates, received.ahead
    );

    // Throughput: a burst written while the relay is down, then timed from its start.
    relay.kill().await;
    let aggregates: Vec<String> = (0..50).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    for chunk in aggregates.chunks(10) {
        let inserts = chunk
            .iter()
            .map(|id| insert_events(&db.pool, id, 1, (THROUGHPUT_EVENTS / 50) as i64, None));
        futures::future::join_all(inserts).await;
    }
    let started = Instant::now();
    let relay = Service::start("relay", &env, true).await;
    receive_until(
        &consumer,
        &mut received,
        total + THROUGHPUT_EVENTS,
        Duration::from_secs(120),
    )
    .await;
    let elapsed = started.elapsed();
    eprintln!(
        "RELAY THROUGHPUT: {THROUGHPUT_EVENTS} events in {:.2}s = {:.0} events/s (including process start)",
        elapsed.as_secs_f64(),
        THROUGHPUT_EVENTS as f64 / elapsed.as_secs_f64()
    );
    relay.kill().await;

    let expected: HashSet<(String, u64)> =
        sqlx::query_as::<_, (String, i64)>("SELECT aggregate_id, sequence FROM events")
            .fetch_all(&db.pool)
            .await
            .expect("events")
            .into_iter()
            .map(|(id, seq)| (id, seq as u64))
            .collect();
    let got: HashSet<(String, u64)> = received.first.keys().cloned().collect();
    assert_eq!(got, expected, "published set differs from the store");
}
