//! One fold, two paths: a store holding every event type is applied live (published to
//! Kafka as the relay does, twice over, and consumed by the real `projections` process) and
//! rebuilt by `projections replay`/`verify`; both forms must be equal, and right. A model
//! rebuilt as of an instant holds what was recorded by then.

use std::process::Stdio;
use std::time::Duration;

use plumbing::feed::{Cursor, envelope_of, next_batch};
use plumbing::testkit::{self, Service, TestDb};
use rdkafka::producer::FutureRecord;
use schemas::Envelope;
use uuid::Uuid;

use crate::history::{History, Made, every_event_type};

/// Each model and the aggregate types it reads.
const MODELS: [(&str, &[&str]); 6] = [
    ("user-profiles", &["user"]),
    ("catalog", &["show"]),
    ("availability", &["show", "inventory"]),
    ("bookings", &["booking"]),
    ("sales", &["show", "booking"]),
    ("invoices", &["ledger"]),
];

/// Publishes the stored events `which` selects to their topics, in feed order.
async fn publish(db: &TestDb, prefix: &str, which: impl Fn(&Envelope) -> bool) {
    let kafka = testkit::kafka(prefix);
    let topics: Vec<String> = schemas::topics::AGGREGATE_TOPICS
        .iter()
        .map(|(t, _)| schemas::topics::topic_for(prefix, t))
        .collect();
    kafka.ensure_topics(&topics).await.expect("topics");
    let producer = kafka.producer().expect("producer");
    let mut conn = db.pool.acquire().await.expect("conn");
    let mut cursor = Cursor::default();
    loop {
        let batch = next_batch(&mut conn, &cursor, 500).await.expect("feed");
        let Some(last) = batch.last() else { break };
        cursor = Cursor::after(last);
        for envelope in batch.iter().map(envelope_of).filter(|e| which(e)) {
            let topic = schemas::topics::topic_for(prefix, &envelope.aggregate_type);
            let payload = serde_json::to_vec(&envelope).expect("json");
            producer
                .send(
                    FutureRecord::to(&topic)
                        .key(&envelope.aggregate_id)
                        .payload(&payload),
                    Duration::from_secs(30),
                )
                .await
                .expect("produce");
        }
    }
}

/// Waits until every model has applied every event of its aggregates, except those of
/// `but` (an aggregate type).
async fn caught_up(db: &TestDb, but: Option<&str>) {
    let (mut consumers, mut types) = (Vec::new(), Vec::new());
    for (model, model_types) in MODELS {
        for t in model_types.iter().filter(|t| Some(**t) != but) {
            consumers.push(model);
            types.push(*t);
        }
    }
    testkit::eventually(
        "every model caught up",
        Duration::from_secs(120),
        || async {
            let behind: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM (SELECT aggregate_type, aggregate_id, max(sequence) AS last
                                     FROM events GROUP BY 1, 2) e
               JOIN unnest($1::text[], $2::text[]) AS m(consumer, aggregate_type)
                 ON m.aggregate_type = e.aggregate_type
               LEFT JOIN consumer_applied c ON c.consumer = m.consumer
                    AND c.aggregate_type = e.aggregate_type AND c.aggregate_id = e.aggregate_id
              WHERE e.last > coalesce(c.last_sequence, 0)",
            )
            .bind(&consumers)
            .bind(&types)
            .fetch_one(&db.pool)
            .await
            .ok()?;
            (behind == 0).then_some(())
        },
    )
    .await;
}

/// Runs `projections <args>`; returns (success, stdout).
pub async fn cli(db: &TestDb, args: &[&str]) -> (bool, String) {
    let output = tokio::process::Command::new(testkit::binary("projections"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .output()
        .await
        .expect("projections runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    eprintln!("projections {args:?}:\n{stdout}");
    (output.status.success(), stdout)
}

async fn stored_history(db: &TestDb) -> Made {
    let mut history = History::default();
    let made = every_event_type(&mut history);
    history.store(&db.pool).await;
    made
}

#[tokio::test]
async fn the_live_and_replayed_forms_of_every_model_are_equal_on_a_store_of_every_event_type() {
    let db = testkit::fresh_database().await;
    let prefix = testkit::unique_prefix();
    let made = stored_history(&db).await;

    // Every event type and version the contract knows is in the store.
    let stored: Vec<(String, String, String)> =
        sqlx::query_as("SELECT DISTINCT aggregate_type, event_type, event_version FROM events")
            .fetch_all(&db.pool)
            .await
            .expect("types");
    for schema in schemas::export::event_schemas().expect("schemas") {
        let wanted = (
            schema.aggregate_type,
            schema.event_type,
            schema.event_version,
        );
        assert!(stored.contains(&wanted), "the store lacks {wanted:?}");
    }

    // The show topic lags (topics are not ordered with each other): the sections sell
    // before the consumer sees their layouts. Then everything is delivered again, as by a
    // relay resending after a restart.
    publish(&db, &prefix, |e| e.aggregate_type != "show").await;
    let projections =
        Service::start("projections", &testkit::service_env(&db.url, &prefix), true).await;
    caught_up(&db, Some("show")).await;
    publish(&db, &prefix, |e| e.aggregate_type == "show").await;
    caught_up(&db, None).await;
    publish(&db, &prefix, |_| true).await;

    let (clean, out) = cli(&db, &["verify", "all"]).await;
    assert!(clean, "the live models equal their rebuilds: {out}");
    assert_eq!(out.matches("no difference").count(), MODELS.len(), "{out}");
    check_contents(&db, &made).await;

    let (ok, out) = cli(&db, &["replay", "all"]).await;
    assert!(ok && out.contains("swapped in"), "{out}");
    let (clean, out) = cli(&db, &["verify", "all"]).await;
    assert!(clean, "after the swap: {out}");
    check_contents(&db, &made).await;
    projections.kill().await;
}

/// What the history must have left in the models, whichever path built them.
async fn check_contents(db: &TestDb, made: &Made) {
    let pool = &db.pool;
    let scalar = |sql: &'static str, id: Uuid| async move {
        sqlx::query_scalar::<_, String>(sql)
            .bind(id)
            .fetch_one(pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    };
    assert_eq!(
        scalar(
            "SELECT status FROM show_view WHERE event_id = $1",
            made.cancelled_v1
        )
        .await,
        "cancelled",
        "a version-1 cancellation is applied"
    );
    assert_eq!(
        scalar(
            "SELECT array_to_string(roles, ',') FROM user_profile_view WHERE user_id = $1",
            made.organizer
        )
        .await,
        "customer,organizer"
    );
    assert_eq!(
        scalar(
            "SELECT label FROM user_address_view WHERE address_id = $1",
            made.kept_address
        )
        .await,
        "home, new",
        "another user cannot change an address"
    );
    let addresses: i64 = sqlx::query_scalar("SELECT count(*) FROM user_address_view")
        .fetch_one(pool)
        .await
        .expect("addresses");
    assert_eq!(addresses, 1);
    let seats: Vec<(String, String, Uuid)> = sqlx::query_as(
        "SELECT seat_id, status, booking_id FROM seat_hold_view WHERE event_id = $1 ORDER BY seat_id",
    )
    .bind(made.show)
    .fetch_all(pool)
    .await
    .expect("seats");
    let b = &made.bookings;
    assert_eq!(
        seats,
        vec![
            ("stalls:A:3".to_owned(), "held".to_owned(), b[2]),
            ("stalls:B:1".to_owned(), "held".to_owned(), b[3]),
        ],
        "returned seats are free; a late release of a taken-over seat changes nothing"
    );
    let sections: Vec<(String, i32)> = sqlx::query_as(
        "SELECT section_id, sold_places FROM section_view WHERE event_id = $1 ORDER BY position",
    )
    .bind(made.show)
    .fetch_all(pool)
    .await
    .expect("sections");
    assert_eq!(
        sections,
        vec![("stalls".to_owned(), 0), ("floor".to_owned(), 2)]
    );
    let ga: Vec<Uuid> = sqlx::query_scalar("SELECT booking_id FROM ga_hold_view")
        .fetch_all(pool)
        .await
        .expect("ga holds");
    assert_eq!(
        ga,
        vec![b[5]],
        "only b6 still holds general-admission places"
    );
    let statuses: Vec<(Uuid, String, Option<String>)> =
        sqlx::query_as("SELECT booking_id, status, failure_reason FROM booking_view")
            .fetch_all(pool)
            .await
            .expect("bookings");
    let status = |booking: Uuid| {
        statuses
            .iter()
            .find(|s| s.0 == booking)
            .map(|s| s.1.as_str())
            .unwrap_or("missing")
    };
    let want = [
        "refunded",
        "expired",
        "cancelled",
        "held",
        "confirmed",
        "payment_pending",
        "held",
    ];
    for (booking, want) in b.iter().zip(want) {
        assert_eq!(status(*booking), want, "booking {booking}");
    }
    let tickets: Vec<(Uuid, String, bool)> = sqlx::query_as(
        "SELECT booking_id, status, checked_in_at IS NOT NULL FROM ticket_view ORDER BY booking_id, idx",
    )
    .fetch_all(pool)
    .await
    .expect("tickets");
    let of = |booking: Uuid| {
        tickets
            .iter()
            .filter(|t| t.0 == booking)
            .map(|t| (t.1.as_str(), t.2))
            .collect::<Vec<_>>()
    };
    // Checked in; transferred; the recipient's, voided with the rest by the refund.
    assert_eq!(
        of(b[0]),
        vec![("void", true), ("void", false), ("void", false)]
    );
    let holder: Uuid =
        sqlx::query_scalar("SELECT user_id FROM ticket_view WHERE booking_id = $1 AND idx = 2")
            .bind(b[0])
            .fetch_one(pool)
            .await
            .expect("the transferred ticket");
    assert_eq!(holder, made.organizer, "listed under its recipient");
    assert_eq!(of(b[4]), vec![("valid", false); 3]);
    let tiers: i64 = sqlx::query_scalar("SELECT count(*) FROM sales_section_tier")
        .fetch_one(pool)
        .await
        .expect("tiers");
    assert_eq!(tiers, 2, "the second pricing replaced the first");
    let numbers: Vec<i64> = sqlx::query_scalar("SELECT number FROM invoice_view ORDER BY number")
        .fetch_all(pool)
        .await
        .expect("invoices");
    assert_eq!(numbers, vec![1, 2, 3]);
}

#[tokio::test]
async fn a_model_rebuilt_as_of_an_instant_holds_only_what_was_recorded_by_then() {
    let db = testkit::fresh_database().await;
    let made = stored_history(&db).await;
    let at = made.extended_at.to_rfc3339();

    let (ok, out) = cli(
        &db,
        &["replay", "availability", "--as-of", &at, "--into", "past"],
    )
    .await;
    assert!(ok && out.contains("into schema past"), "{out}");
    let seats: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT seat_id, status, expires_at > now() + interval '11 minutes'
           FROM past.seat_hold_view ORDER BY seat_id",
    )
    .fetch_all(&db.pool)
    .await
    .expect("seats then");
    assert_eq!(
        seats,
        vec![
            ("stalls:A:1".to_owned(), "held".to_owned(), true),
            ("stalls:A:2".to_owned(), "held".to_owned(), true),
        ],
        "held and extended for payment, not yet sold"
    );
    let applied: i64 = sqlx::query_scalar(
        "SELECT last_sequence FROM past.consumer_applied WHERE aggregate_id = $1",
    )
    .bind(format!("{}:stalls", made.show))
    .fetch_one(&db.pool)
    .await
    .expect("applied then");
    assert_eq!(applied, 3, "opened, held, extended");
    let live: i64 = sqlx::query_scalar("SELECT count(*) FROM public.seat_hold_view")
        .fetch_one(&db.pool)
        .await
        .expect("live");
    assert_eq!(live, 0, "the live model is left alone");

    let (ok, _) = cli(
        &db,
        &["replay", "availability", "--as-of", &at, "--into", "past"],
    )
    .await;
    assert!(!ok, "an existing schema is never overwritten");
    let (ok, _) = cli(&db, &["replay", "availability", "--as-of", &at]).await;
    assert!(!ok, "a past state is never swapped in");
}
