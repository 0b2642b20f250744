//! Payment tokens never leave the write side (issue 22, finding 9): after purchases with the
//! test cards and a charge dead-lettered by the saga, no Kafka record of any of the stack's
//! topics (dead-letter topics included) and no stored event or snapshot holds a `tok_`; the
//! token waited in `payment_tokens` only until the provider accepted its charge.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use plumbing::testkit::{self, eventually};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::purchase::{buyer, hold, hold_and_pay, pay, published_show};
use crate::support::Stack;

/// High watermark of every partition of every topic whose name starts with `prefix`.
fn end_offsets(consumer: &BaseConsumer, prefix: &str) -> HashMap<(String, i32), i64> {
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    let mut ends = HashMap::new();
    for topic in metadata.topics() {
        if !topic.name().starts_with(prefix) {
            continue;
        }
        for partition in topic.partitions() {
            let (_, high) = consumer
                .fetch_watermarks(topic.name(), partition.id(), Duration::from_secs(10))
                .expect("watermarks");
            ends.insert((topic.name().to_owned(), partition.id()), high);
        }
    }
    ends
}

/// Every record up to `ends`, as (topic, key, value and headers as text).
fn read_all(consumer: &BaseConsumer, ends: &HashMap<(String, i32), i64>) -> Vec<(String, String)> {
    let mut assignment = TopicPartitionList::new();
    for ((topic, partition), end) in ends {
        if *end > 0 {
            assignment
                .add_partition_offset(topic, *partition, Offset::Beginning)
                .expect("assign partition");
        }
    }
    consumer.assign(&assignment).expect("assign");
    let mut read: HashMap<(String, i32), i64> = HashMap::new();
    let mut records = Vec::new();
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
        let mut text = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
        text.push_str(&String::from_utf8_lossy(
            message.payload().unwrap_or_default(),
        ));
        for header in message.headers().into_iter().flat_map(|h| h.iter()) {
            text.push_str(header.key);
            text.push_str(&String::from_utf8_lossy(header.value.unwrap_or_default()));
        }
        records.push((message.topic().to_owned(), text));
        let next = read
            .entry((message.topic().to_owned(), message.partition()))
            .or_default();
        *next = (*next).max(message.offset() + 1);
    }
    records
}

async fn count(stack: &Stack, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&stack.db.pool)
        .await
        .expect(sql)
}

#[tokio::test]
async fn no_kafka_record_dead_letter_or_stored_event_holds_a_card_token() {
    let mut stack = Stack::with_payments(&[("SAGA_MAX_ATTEMPTS", "2")]).await;
    let organizer = stack.organizer("org@example.com").await;
    let event = published_show(&stack, &organizer).await;
    let token = buyer(&stack, "cards@example.com").await;
    let (bought, confirmed) = hold_and_pay(
        &stack,
        &token,
        &event,
        &["hall:R0:1", "hall:R0:2"],
        "tok_visa",
        "confirmed",
    )
    .await;
    assert_eq!(confirmed["tickets"].as_array().map(Vec::len), Some(2));
    // Paying a confirmed booking is refused, and the token it brought is not kept.
    let (status, _, _) = stack
        .call(
            reqwest::Method::POST,
            &format!("/api/bookings/{bought}/pay"),
            &token,
            Some(serde_json::json!({"payment_token": "tok_refused"})),
        )
        .await;
    assert_eq!(status, 409);
    hold_and_pay(
        &stack,
        &token,
        &event,
        &["hall:R1:1"],
        "tok_decline",
        "cancelled",
    )
    .await;
    let charges = stack.ledger().await;
    let charged: Vec<&str> = charges["charges"]
        .as_array()
        .expect("charges")
        .iter()
        .filter_map(|c| c["token"].as_str())
        .collect();
    assert!(
        charged.contains(&"tok_visa") && charged.contains(&"tok_decline"),
        "the provider received the tokens themselves: {charges}"
    );

    // With the provider gone, the saga's charge fails until it is dead-lettered.
    stack
        .payment_sim
        .take()
        .expect("the simulator runs")
        .kill()
        .await;
    let stranded = hold(&stack, &token, &event, &["hall:R2:1"]).await;
    pay(&stack, &token, &stranded, "tok_visa").await;

    let prefix = stack.env["KAFKA_TOPIC_PREFIX"].clone();
    let consumer: BaseConsumer = testkit::kafka(&prefix)
        .consumer_config(&format!("{prefix}token-scan"))
        .create()
        .expect("consumer");
    let dead_letters = schemas::topics::dead_letter_topic(&prefix, "saga");
    eventually(
        "the failing charge to be dead-lettered",
        Duration::from_secs(60),
        || async {
            let ends = end_offsets(&consumer, &prefix);
            (ends
                .iter()
                .any(|((topic, _), end)| *topic == dead_letters && *end > 0))
            .then_some(())
        },
    )
    .await;
    let aggregate_topics = schemas::topics::all_topics(&prefix);
    let ends = eventually(
        "the relay to publish every stored event",
        Duration::from_secs(60),
        || async {
            let stored = count(&stack, "SELECT count(*) FROM events").await;
            let ends = end_offsets(&consumer, &prefix);
            let published: i64 = ends
                .iter()
                .filter(|((topic, _), _)| aggregate_topics.contains(topic))
                .map(|(_, end)| end)
                .sum();
            (published == stored).then_some(ends)
        },
    )
    .await;

    let records = read_all(&consumer, &ends);
    let topics: std::collections::BTreeSet<&str> =
        records.iter().map(|(topic, _)| topic.as_str()).collect();
    assert!(
        topics.contains(dead_letters.as_str())
            && topics.contains(schemas::topics::topic_for(&prefix, "payment").as_str()),
        "the scan covers the dead letters and the payments: {topics:?}"
    );
    let leaked: Vec<&(String, String)> = records
        .iter()
        .filter(|(_, text)| text.contains("tok_"))
        .collect();
    assert!(
        leaked.is_empty(),
        "{} of {} records hold a card token: {leaked:?}",
        leaked.len(),
        records.len()
    );
    assert!(
        records
            .iter()
            .any(|(_, text)| text.contains("Visa test card")),
        "payment requests carry the card's label"
    );

    assert_eq!(
        count(
            &stack,
            "SELECT count(*) FROM events
              WHERE strpos(payload::text, 'tok_') > 0 OR strpos(metadata::text, 'tok_') > 0"
        )
        .await,
        0,
        "stored events hold no token"
    );
    assert_eq!(
        count(
            &stack,
            "SELECT count(*) FROM snapshots WHERE strpos(payload::text, 'tok_') > 0"
        )
        .await,
        0,
        "snapshots hold no token"
    );
    // Accepted charges forgot their tokens, and so did the refused request; only the charge
    // that never reached the provider still has one.
    let kept: Vec<(String,)> = sqlx::query_as("SELECT token FROM payment_tokens")
        .fetch_all(&stack.db.pool)
        .await
        .expect("payment tokens");
    assert_eq!(kept, vec![("tok_visa".to_owned(),)], "after {bought}");
}
