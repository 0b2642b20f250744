//! What the email tests run against: a fresh database with buyers, shows and bookings made
//! by executing domain commands through `AggregateStore`, the real `relay` publishing them,
//! `notifier` processes pointed at an SMTP port, and a reader of the dead-letter topic.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use domain::booking::ticket::ticket_id;
use domain::booking::{Booking, BookingCommand, CancelReason, GeneralAdmission};
use domain::money::Money;
use domain::show::{Show, ShowCommand};
use domain::user::{User, UserCommand, user_id_for_email};
use plumbing::kafka::KafkaSettings;
use plumbing::store::AggregateStore;
use plumbing::testkit::{self, Service, TestDb};
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use uuid::Uuid;

pub struct Stack {
    pub db: TestDb,
    pub prefix: String,
    pub kafka: KafkaSettings,
    users: AggregateStore<User>,
    shows: AggregateStore<Show>,
    bookings: AggregateStore<Booking>,
    _relay: Service,
}

impl Stack {
    /// A fresh database and topic prefix, with the relay running.
    pub async fn start() -> Stack {
        let db = testkit::fresh_database().await;
        let prefix = testkit::unique_prefix();
        let relay = Service::start("relay", &testkit::service_env(&db.url, &prefix), true).await;
        Stack {
            users: AggregateStore::new(db.pool.clone(), ()),
            shows: AggregateStore::new(db.pool.clone(), ()),
            bookings: AggregateStore::new(db.pool.clone(), ()),
            kafka: testkit::kafka(&prefix),
            db,
            prefix,
            _relay: relay,
        }
    }

    /// A notifier process mailing through 127.0.0.1:`smtp_port`.
    pub async fn notifier(&self, smtp_port: u16) -> Service {
        let mut env: HashMap<String, String> = testkit::service_env(&self.db.url, &self.prefix);
        env.insert("SMTP_HOST".into(), "127.0.0.1".into());
        env.insert("SMTP_PORT".into(), smtp_port.to_string());
        Service::start("notifier", &env, true).await
    }

    /// A registered buyer; returns (user id, email).
    pub async fn buyer(&self, name: &str) -> (Uuid, String) {
        let email = format!("{}@example.com", Uuid::new_v4().simple());
        let user_id = user_id_for_email(&email);
        self.users
            .execute(
                &user_id.to_string(),
                UserCommand::Register {
                    user_id,
                    email: email.clone(),
                    name: name.to_owned(),
                    password_hash: "not-a-real-hash".into(),
                    now: Utc::now(),
                },
                &HashMap::new(),
            )
            .await
            .expect("register the buyer");
        (user_id, email)
    }

    /// A show (as a draft: the mail needs only its name, venue and start).
    pub async fn show(&self, name: &str) -> Uuid {
        let show_id = Uuid::new_v4();
        let now = Utc::now();
        self.shows
            .execute(
                &show_id.to_string(),
                ShowCommand::Create {
                    show_id,
                    organizer_id: Uuid::new_v4(),
                    name: name.to_owned(),
                    venue: "Grand Hall".into(),
                    description: None,
                    starts_at: now + chrono::Duration::days(30),
                    now,
                },
                &HashMap::new(),
            )
            .await
            .expect("create the show");
        show_id
    }

    async fn booking(&self, booking_id: Uuid, command: BookingCommand) {
        self.bookings
            .execute(&booking_id.to_string(), command, &HashMap::new())
            .await
            .expect("booking command");
    }

    /// Two seats and one general-admission place, held and waiting for payment.
    async fn pending(&self, user_id: Uuid, show_id: Uuid) -> Uuid {
        let booking_id = Uuid::new_v4();
        let now = Utc::now();
        self.booking(
            booking_id,
            BookingCommand::Place {
                booking_id,
                user_id,
                show_id,
                seats: vec!["A:1:1".into(), "A:1:2".into()],
                general_admission: vec![GeneralAdmission {
                    section_id: "FLOOR".into(),
                    quantity: 1,
                }],
                total: Money::new(7500, "EUR"),
                terms: Default::default(),
                hold_expires_at: now + chrono::Duration::minutes(10),
                now,
            },
        )
        .await;
        self.booking(
            booking_id,
            BookingCommand::RequestPayment {
                payment_id: Uuid::new_v4(),
                card: "Visa test card".into(),
                payment_deadline: now + chrono::Duration::minutes(10),
                now,
            },
        )
        .await;
        booking_id
    }

    pub async fn confirmed_booking(&self, user_id: Uuid, show_id: Uuid) -> Uuid {
        let booking_id = self.pending(user_id, show_id).await;
        self.booking(booking_id, BookingCommand::Confirm { now: Utc::now() })
            .await;
        booking_id
    }

    pub async fn cancelled_booking(&self, user_id: Uuid, show_id: Uuid, detail: &str) -> Uuid {
        let booking_id = self.pending(user_id, show_id).await;
        self.booking(
            booking_id,
            BookingCommand::Cancel {
                reason: CancelReason::PaymentDeclined,
                detail: detail.to_owned(),
                now: Utc::now(),
            },
        )
        .await;
        booking_id
    }

    /// Transfers ticket `index` of a confirmed three-ticket booking from `from` to `to`;
    /// returns the new ticket's id.
    pub async fn transferred_ticket(
        &self,
        booking_id: Uuid,
        index: u8,
        from: Uuid,
        to: Uuid,
    ) -> Uuid {
        let now = Utc::now();
        self.booking(
            booking_id,
            BookingCommand::TransferTicket {
                ticket_id: ticket_id(booking_id, index),
                from_user_id: from,
                to_user_id: to,
                max_transfers: 3,
                starts_at: now + chrono::Duration::days(30),
                now,
            },
        )
        .await;
        ticket_id(booking_id, 3)
    }

    pub async fn sent_log_rows(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM email_sent_log")
            .fetch_one(&self.db.pool)
            .await
            .expect("count the sent-log")
    }

    /// Waits for the dead letter keyed `key` on the email consumer's DLQ; returns its
    /// `x-error` header.
    pub async fn dead_letter(&self, key: &str, timeout: Duration) -> String {
        let topic = schemas::topics::dead_letter_topic(&self.prefix, "notifier-email");
        let consumer: StreamConsumer = self
            .kafka
            .consumer_config(&format!("{}dlq-reader-{}", self.prefix, Uuid::new_v4()))
            .create()
            .expect("DLQ reader");
        consumer.subscribe(&[&topic]).expect("subscribe to the DLQ");
        let found = tokio::time::timeout(timeout, async {
            loop {
                let Ok(message) = consumer.recv().await else {
                    continue;
                };
                if message.key() != Some(key.as_bytes()) {
                    continue;
                }
                let error = message
                    .headers()
                    .and_then(|h| h.iter().find(|h| h.key == "x-error"))
                    .and_then(|h| h.value)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default();
                return error;
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("no dead letter for {key} within {timeout:?}"))
    }
}
