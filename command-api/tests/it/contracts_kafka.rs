//! What really travels on Kafka keeps its contract: after a purchase (confirmed, a declined
//! payment, a refund), every record of every topic of the stack validates against
//! `envelope.json` and its payload schema, and the log holds exactly the stored events.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use plumbing::testkit::{self, eventually};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use reqwest::Method as M;
use serde_json::json;

use crate::contract;
use crate::purchase::{booking_reaches, buyer, hold_and_pay, published_show};
use crate::support::Stack;

async fn stored_events(stack: &Stack) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&stack.db.pool)
        .await
        .expect("count events")
}

/// High watermark of every partition of `topics`.
fn end_offsets(consumer: &BaseConsumer, topics: &[String]) -> HashMap<(String, i32), i64> {
    let mut ends = HashMap::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("metadata");
        for partition in metadata.topics()[0].partitions() {
            let (_, high) = consumer
                .fetch_watermarks(topic, partition.id(), Duration::from_secs(10))
                .expect("watermarks");
            ends.insert((topic.clone(), partition.id()), high);
        }
    }
    ends
}

#[tokio::test]
async fn every_published_record_keeps_its_schema() {
    let stack = Stack::with_payments(&[]).await;
    let organizer = stack.organizer("org@example.com").await;
    let event = published_show(&stack, &organizer).await;
    let token = buyer(&stack, "contract@example.com").await;

    let (bought, _) = hold_and_pay(
        &stack,
        &token,
        &event,
        &["hall:R0:1", "hall:R0:2"],
        "tok_visa",
        "confirmed",
    )
    .await;
    hold_and_pay(
        &stack,
        &token,
        &event,
        &["hall:R1:1"],
        "tok_decline",
        "cancelled",
    )
    .await;
    let (status, _, body) = stack
        .call(
            M::POST,
            &format!("/api/bookings/{bought}/cancel"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    booking_reaches(&stack, &token, &bought, "refunded", Duration::from_secs(30)).await;
    let (status, _, body) = stack
        .call(
            M::PUT,
            "/api/users/profile",
            &token,
            Some(json!({"name": "Renamed", "phone": "+33 1 23 45 67 89"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let prefix = &stack.env["KAFKA_TOPIC_PREFIX"];
    let topics = schemas::topics::all_topics(prefix);
    let consumer: BaseConsumer = testkit::kafka(prefix)
        .consumer_config(&format!("{prefix}contract-verifier"))
        .create()
        .expect("consumer");

    // The relay has published everything once the logs hold as many records as the store
    // holds events (no relay restarts here, so no resends).
    let (ends, stored) = eventually(
        "the relay to publish every stored event",
        Duration::from_secs(60),
        || async {
            let stored = stored_events(&stack).await;
            let ends = end_offsets(&consumer, &topics);
            (ends.values().sum::<i64>() == stored).then_some((ends, stored))
        },
    )
    .await;

    // Read every partition from its first record to its end, without a consumer group.
    let mut assignment = TopicPartitionList::new();
    for ((topic, partition), end) in &ends {
        if *end > 0 {
            assignment
                .add_partition_offset(topic, *partition, Offset::Beginning)
                .expect("assign partition");
        }
    }
    consumer.assign(&assignment).expect("assign");
    let mut read: HashMap<(String, i32), i64> = HashMap::new();
    let mut event_types: HashMap<String, usize> = HashMap::new();
    let mut validated = 0i64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while ends
        .iter()
        .any(|(k, end)| read.get(k).copied().unwrap_or(0) < *end)
    {
        assert!(
            Instant::now() < deadline,
            "records missing: read {read:?} of {ends:?}"
        );
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = message.expect("a Kafka record");
        let key = (message.topic().to_owned(), message.partition());
        let envelope = contract::assert_envelope(message.payload().expect("a record value"));
        validated += 1;
        let aggregate_type = envelope["aggregate_type"].as_str().unwrap_or_default();
        assert_eq!(
            message.topic(),
            schemas::topics::topic_for(prefix, aggregate_type),
            "a {aggregate_type} event on the wrong topic"
        );
        *event_types
            .entry(format!(
                "{aggregate_type}/{}",
                envelope["event_type"].as_str().unwrap_or_default()
            ))
            .or_default() += 1;
        let next = read.entry(key).or_default();
        *next = (*next).max(message.offset() + 1);
    }
    assert_eq!(validated, stored, "records read vs stored events");
    assert_eq!(
        stored_events(&stack).await,
        stored,
        "events written meanwhile"
    );
    let mut kinds: Vec<_> = event_types.into_iter().collect();
    kinds.sort();
    eprintln!(
        "CONTRACT: {validated} Kafka records ({} event types) validated: {kinds:?}; \
         {} HTTP answers and {} records validated so far in this binary",
        kinds.len(),
        contract::RESPONSES.load(Ordering::Relaxed),
        contract::MESSAGES.load(Ordering::Relaxed)
    );
    for expected in [
        "booking/BookingPlaced",
        "booking/BookingRefunded",
        "inventory/SeatsHeld",
        "payment/PaymentFailed",
        "show/ShowPublished",
        "user/UserRegistered",
    ] {
        assert!(
            kinds.iter().any(|(k, _)| k == expected),
            "no {expected} record"
        );
    }
}
