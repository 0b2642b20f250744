//! The consumer runtime's promises, tested on the `projections` process: a poison message is
//! dead-lettered and consumption goes on; a consumer killed mid-batch applies every event
//! exactly once in effect; SIGTERM drains and commits. Exactly-once is measured on a counter
//! that every event adds to (general-admission sales in `section_view`): an event applied
//! twice, or lost, shows in the sum.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use cqrs_es::DomainEvent;
use domain::inventory::InventoryEvent;
use domain::user::{Address, UserEvent};
use plumbing::testkit::{self, Service, TestDb};
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use schemas::{Envelope, EventMetadata};
use uuid::Uuid;

struct Fixture {
    db: TestDb,
    prefix: String,
    env: HashMap<String, String>,
    topic: String,
    producer: FutureProducer,
}

impl Fixture {
    async fn new() -> Fixture {
        let db = testkit::fresh_database().await;
        let prefix = testkit::unique_prefix();
        let env = testkit::service_env(&db.url, &prefix);
        let kafka = testkit::kafka(&prefix);
        let topic = schemas::topics::topic_for(&prefix, "user");
        kafka
            .ensure_topics(&[
                topic.clone(),
                schemas::topics::topic_for(&prefix, "inventory"),
            ])
            .await
            .expect("topics");
        Fixture {
            producer: kafka.producer().expect("producer"),
            db,
            prefix,
            env,
            topic,
        }
    }

    async fn send_raw(&self, key: &str, payload: &[u8]) {
        self.producer
            .send(
                FutureRecord::to(&self.topic).key(key).payload(payload),
                Duration::from_secs(30),
            )
            .await
            .expect("produce");
    }

    async fn send(&self, user: Uuid, sequence: u64, event: &UserEvent) {
        let envelope = envelope("user", &user.to_string(), sequence, event);
        self.send_raw(
            &envelope.aggregate_id,
            &serde_json::to_vec(&envelope).expect("json"),
        )
        .await;
    }

    /// A general-admission sale of `quantity` places in `section` (an inventory aggregate).
    async fn send_sale(&self, section: &str, sequence: u64, quantity: u32) {
        let event = InventoryEvent::HoldSold {
            booking_id: Uuid::new_v4(),
            seats: vec![],
            quantity,
        };
        let envelope = envelope("inventory", section, sequence, &event);
        self.producer
            .send(
                FutureRecord::to(&schemas::topics::topic_for(&self.prefix, "inventory"))
                    .key(section)
                    .payload(&serde_json::to_vec(&envelope).expect("json")),
                Duration::from_secs(30),
            )
            .await
            .expect("produce");
    }

    /// Registration, one address, then `updates` profile updates for each of `users`.
    async fn send_user_histories(&self, users: &[Uuid], updates: u64) {
        for user in users {
            self.send(*user, 1, &registered(*user)).await;
            self.send(
                *user,
                2,
                &UserEvent::AddressAdded {
                    address_id: Uuid::new_v4(),
                    address: Address {
                        label: "home".into(),
                        line1: "1 St".into(),
                        line2: None,
                        city: "Oslo".into(),
                        postal_code: "0150".into(),
                        country: "NO".into(),
                    },
                },
            )
            .await;
        }
        // Interleave users so every partition has work throughout.
        for n in 0..updates {
            let update = UserEvent::ProfileUpdated {
                name: format!("name {n}"),
                phone: None,
            };
            let sends = users.iter().map(|user| self.send(*user, n + 3, &update));
            futures::future::join_all(sends).await;
        }
    }

    /// Places sold per section, as the availability model counts them.
    async fn sold(&self) -> Vec<(String, i64)> {
        sqlx::query_as(
            "SELECT event_id::text || ':' || section_id, sold_places::bigint FROM section_view
              ORDER BY 1",
        )
        .fetch_all(&self.db.pool)
        .await
        .expect("sold places")
    }

    async fn sold_total(&self) -> i64 {
        self.sold().await.iter().map(|(_, n)| n).sum()
    }

    async fn applied(&self, aggregate_id: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT coalesce(max(last_sequence), 0) FROM consumer_applied WHERE aggregate_id = $1",
        )
        .bind(aggregate_id)
        .fetch_one(&self.db.pool)
        .await
        .expect("applied")
    }

    async fn wait_all_applied(&self, aggregates: &[String], last: i64) {
        testkit::eventually("every event applied", Duration::from_secs(120), || async {
            for aggregate in aggregates {
                if self.applied(aggregate).await < last {
                    return None;
                }
            }
            Some(())
        })
        .await;
    }
}

fn registered(user: Uuid) -> UserEvent {
    UserEvent::UserRegistered {
        user_id: user,
        email: format!("{user}@example.com"),
        name: "Consumer Test".into(),
        password_hash: String::new(),
        registered_at: Utc::now(),
    }
}

fn envelope<E: DomainEvent>(
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: u64,
    event: &E,
) -> Envelope {
    let tagged = serde_json::to_value(event).expect("event json");
    let event_type = event.event_type();
    Envelope {
        event_id: schemas::envelope::event_id(aggregate_type, aggregate_id, sequence),
        aggregate_type: aggregate_type.into(),
        aggregate_id: aggregate_id.into(),
        sequence,
        global_position: sequence as i64,
        event_type: event_type.clone(),
        event_version: event.event_version(),
        occurred_at: Utc::now(),
        payload: tagged[&event_type].clone(),
        metadata: EventMetadata::default(),
    }
}

#[tokio::test]
async fn poison_messages_are_dead_lettered_and_consumption_goes_on() {
    let fx = Fixture::new().await;
    let user = Uuid::new_v4();
    fx.send(user, 1, &registered(user)).await;
    fx.send_raw(&user.to_string(), b"this is not an envelope")
        .await;
    let mut alien = envelope("user", &user.to_string(), 2, &registered(user));
    alien.aggregate_type = "no-such-aggregate".into();
    fx.send_raw(
        &user.to_string(),
        &serde_json::to_vec(&alien).expect("json"),
    )
    .await;
    fx.send(
        user,
        2,
        &UserEvent::ProfileUpdated {
            name: "after the poison".into(),
            phone: None,
        },
    )
    .await;

    let projections = Service::start("projections", &fx.env, true).await;
    fx.wait_all_applied(&[user.to_string()], 2).await;
    let name: String = sqlx::query_scalar("SELECT name FROM user_profile_view WHERE user_id = $1")
        .bind(user)
        .fetch_one(&fx.db.pool)
        .await
        .expect("profile");
    assert_eq!(name, "after the poison");

    let dlq = schemas::topics::dead_letter_topic(&fx.prefix, "user-profiles");
    let reader: StreamConsumer = testkit::kafka(&fx.prefix)
        .consumer_config(&format!("{}dlq-reader", fx.prefix))
        .create()
        .expect("consumer");
    reader.subscribe(&[dlq.as_str()]).expect("subscribe");
    let mut dead = Vec::new();
    while dead.len() < 2 {
        let message = tokio::time::timeout(Duration::from_secs(60), reader.recv())
            .await
            .expect("dead letters arrive")
            .expect("message");
        let headers = message.headers().expect("headers");
        let error = headers
            .iter()
            .find(|h| h.key == "x-error")
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .expect("x-error header");
        dead.push((message.payload().expect("payload").to_vec(), error));
    }
    assert_eq!(dead[0].0, b"this is not an envelope");
    assert!(dead[0].1.contains("undecodable"), "error: {}", dead[0].1);
    assert!(
        dead[1].1.contains("no-such-aggregate"),
        "error: {}",
        dead[1].1
    );
    projections.kill().await;
}

#[tokio::test]
async fn a_consumer_killed_mid_batch_applies_every_event_exactly_once() {
    let fx = Fixture::new().await;
    let show = Uuid::new_v4();
    let sections: Vec<String> = (0..30).map(|i| format!("{show}:s{i:02}")).collect();
    let sales: u64 = 100;
    // Sale n sells n places: every event adds a different amount, so a lost or doubled
    // one always shows.
    for n in 1..=sales {
        let sends = sections.iter().map(|s| fx.send_sale(s, n, n as u32));
        futures::future::join_all(sends).await;
    }
    let per_section = (sales * (sales + 1) / 2) as i64;
    let expected = per_section * sections.len() as i64;

    let mut projections = Service::start("projections", &fx.env, true).await;
    for threshold in [expected / 6, expected / 2, expected * 4 / 5] {
        testkit::eventually(
            "progress before the kill",
            Duration::from_secs(120),
            || async { (fx.sold_total().await >= threshold).then_some(()) },
        )
        .await;
        projections.kill().await;
        projections = Service::start("projections", &fx.env, true).await;
    }
    fx.wait_all_applied(&sections, sales as i64).await;
    let sold = fx.sold().await;
    assert_eq!(
        sold,
        sections
            .iter()
            .map(|s| (s.clone(), per_section))
            .collect::<Vec<_>>(),
        "some event was applied twice or not at all"
    );
    projections.kill().await;
}

#[tokio::test]
async fn sigterm_drains_commits_and_leaves() {
    let fx = Fixture::new().await;
    let users: Vec<Uuid> = (0..10).map(|_| Uuid::new_v4()).collect();
    fx.send_user_histories(&users, 20).await;
    let projections = Service::start("projections", &fx.env, true).await;
    let ids: Vec<String> = users.iter().map(Uuid::to_string).collect();
    fx.wait_all_applied(&ids, 22).await;
    assert!(
        projections.terminate(Duration::from_secs(30)).await,
        "projections did not exit cleanly on SIGTERM"
    );

    // The group's committed offsets reach the end of every partition: nothing will be
    // re-read by the next instance.
    let group = format!("{}user-profiles", fx.prefix);
    let topic = fx.topic.clone();
    let kafka = testkit::kafka(&fx.prefix);
    let (committed, ends) = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = kafka.consumer_config(&group).create().expect("consumer");
        let metadata = consumer
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .expect("metadata");
        let partitions = metadata.topics()[0].partitions().len() as i32;
        let mut list = TopicPartitionList::new();
        let mut ends = Vec::new();
        for p in 0..partitions {
            list.add_partition(&topic, p);
            let (_, high) = consumer
                .fetch_watermarks(&topic, p, Duration::from_secs(10))
                .expect("watermarks");
            ends.push(high);
        }
        let committed = consumer
            .committed_offsets(list, Duration::from_secs(10))
            .expect("committed");
        let committed: Vec<i64> = (0..partitions)
            .map(
                |p| match committed.find_partition(&topic, p).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) => o,
                    _ => 0,
                },
            )
            .collect();
        (committed, ends)
    })
    .await
    .expect("offsets");
    assert_eq!(
        committed, ends,
        "committed offsets do not cover what was applied"
    );
}

#[tokio::test]
async fn an_event_ahead_of_a_missing_one_waits_for_its_resend() {
    // What a relay that died mid-batch leaves in a partition: a later event first, then the
    // resend of the whole batch in order.
    let fx = Fixture::new().await;
    let user = Uuid::new_v4();
    let update = |name: &str| UserEvent::ProfileUpdated {
        name: name.into(),
        phone: None,
    };
    fx.send(user, 1, &registered(user)).await;
    fx.send(user, 3, &update("third")).await;
    fx.send(user, 2, &update("second")).await;
    fx.send(user, 3, &update("third")).await;
    let section = format!("{}:floor", Uuid::new_v4());
    fx.send_sale(&section, 1, 1).await;
    fx.send_sale(&section, 3, 100).await;
    fx.send_sale(&section, 2, 10).await;
    fx.send_sale(&section, 3, 100).await;
    let projections = Service::start("projections", &fx.env, true).await;
    fx.wait_all_applied(&[user.to_string(), section.clone()], 3)
        .await;
    let name: String = sqlx::query_scalar("SELECT name FROM user_profile_view WHERE user_id = $1")
        .bind(user)
        .fetch_one(&fx.db.pool)
        .await
        .expect("profile");
    assert_eq!(name, "third", "applied in order");
    assert_eq!(
        fx.sold().await,
        vec![(section, 111)],
        "each sale applied exactly once: the early third neither counted nor lost"
    );
    projections.kill().await;
}
