//! Read models rebuilt from the events table (`projections replay` / `verify`): after a
//! mixed workload every model verifies clean; a damaged model is caught by verify and
//! repaired by replay; a replay while bookings keep arriving swaps in a model that matches
//! the store, and the relay keeps publishing meanwhile; availability rebuilt as of an
//! instant answers what was answered then.

use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::StreamExt;
use plumbing::testkit::{self, eventually};
use reqwest::Method as M;
use serde_json::{Value, json};
use sqlx::Connection;
use uuid::Uuid;

use crate::purchase::publish_event;
use crate::support::{Stack, mint_token};

const ROWS: u32 = 20;
const PER_ROW: u32 = 50;

/// A published event with a 1,000-seat section `main` and a 500-place GA section `floor`.
async fn big_show(stack: &Stack, organizer: &str, name: &str) -> String {
    let rows: Vec<Value> = (0..ROWS)
        .map(|r| json!({"row": format!("R{r}"), "seats": PER_ROW}))
        .collect();
    let layout = json!({"sections": [
        {"section_id": "main", "name": "Main", "kind": "seated", "rows": rows},
        {"section_id": "floor", "name": "Floor", "kind": "general_admission", "capacity": 500}]});
    let tiers = json!({"tiers": [
        {"tier_id": "seat", "name": "Seat", "price": {"amount_minor": 3000, "currency": "EUR"}, "section_ids": ["main"]},
        {"tier_id": "floor", "name": "Floor", "price": {"amount_minor": 2000, "currency": "EUR"}, "section_ids": ["floor"]}]});
    publish_event(stack, organizer, name, layout, tiers, Some(json!({}))).await
}

/// What a workload left behind, to wait for.
struct Workload {
    confirmed: Vec<(String, String)>,
}

/// `bookings` holds over `events` by 100 buyers (distinct seats, every fifth a GA place):
/// 10% paid with tok_visa, 5% declined, 10% cancelled, 75% left to expire (payments are
/// the slow path, so they are a minority); then a fifth of the confirmed ones refunded.
async fn mixed_workload(
    stack: &Stack,
    events: &[String],
    bookings: usize,
    offset: usize,
) -> Workload {
    let buyers: Vec<String> = (0..100)
        .map(|_| mint_token(Uuid::new_v4(), &["customer"]))
        .collect();
    let outcomes: Vec<Option<(String, String)>> = futures::stream::iter(0..bookings)
        .map(|i| {
            let (buyers, events) = (&buyers, events);
            async move {
                let token = &buyers[i % buyers.len()];
                let event = &events[i % events.len()];
                let n = (offset + i) / events.len();
                let mut body = json!({"event_id": event});
                if i % 5 == 0 {
                    body["general_admission"] = json!([{"section_id": "floor", "quantity": 1}]);
                } else {
                    let (row, seat) = (n as u32 / PER_ROW % ROWS, n as u32 % PER_ROW + 1);
                    body["seats"] = json!([format!("main:R{row}:{seat}")]);
                }
                let (status, _, held) = stack
                    .call(M::POST, "/api/bookings", token, Some(body))
                    .await;
                assert_eq!(status, 201, "hold #{i}: {held}");
                let booking = held["booking_id"].as_str().expect("id").to_owned();
                let path = format!("/api/bookings/{booking}");
                match i % 20 {
                    0..=2 => {
                        let card = if i % 20 == 2 {
                            "tok_decline"
                        } else {
                            "tok_visa"
                        };
                        let (status, _, reply) = stack
                            .call(
                                M::POST,
                                &format!("{path}/pay"),
                                token,
                                Some(json!({"payment_token": card})),
                            )
                            .await;
                        assert_eq!(status, 202, "pay: {reply}");
                        (card == "tok_visa").then(|| (token.clone(), booking))
                    }
                    3 | 4 => {
                        let (status, _, reply) = stack
                            .call(M::POST, &format!("{path}/cancel"), token, None)
                            .await;
                        assert_eq!(status, 202, "cancel: {reply}");
                        None
                    }
                    _ => None, // expires
                }
            }
        })
        .buffer_unordered(24)
        .collect()
        .await;
    let confirmed: Vec<(String, String)> = outcomes.into_iter().flatten().collect();
    Workload { confirmed }
}

/// Waits for every paid booking to settle (most are confirmed; under load a few miss their
/// payment deadline and are cancelled), then refunds a fifth of the confirmed ones.
async fn refund_some(stack: &Stack, workload: &Workload) {
    let pool = &stack.db.pool;
    let ids: Vec<Uuid> = workload
        .confirmed
        .iter()
        .map(|(_, b)| b.parse().expect("uuid"))
        .collect();
    let confirmed: Vec<Uuid> = eventually(
        "paid bookings settled",
        Duration::from_secs(120),
        || async {
            let rows: Vec<(Uuid, String)> = sqlx::query_as(
                "SELECT booking_id, status FROM booking_view WHERE booking_id = ANY($1)",
            )
            .bind(&ids)
            .fetch_all(pool)
            .await
            .ok()?;
            let settled = rows.len() == ids.len()
                && rows
                    .iter()
                    .all(|(_, s)| s == "confirmed" || s == "cancelled");
            settled.then(|| {
                rows.into_iter()
                    .filter(|(_, s)| s == "confirmed")
                    .map(|(id, _)| id)
                    .collect()
            })
        },
    )
    .await;
    for (token, booking) in workload
        .confirmed
        .iter()
        .filter(|(_, b)| confirmed.contains(&b.parse().expect("uuid")))
        .step_by(5)
    {
        let (status, _, reply) = stack
            .call(
                M::POST,
                &format!("/api/bookings/{booking}/cancel"),
                token,
                None,
            )
            .await;
        assert_eq!(status, 202, "refund: {reply}");
    }
}

/// Runs `projections <args>` against the stack's database; returns (success, stdout).
async fn projections_cli(stack: &Stack, args: &[&str]) -> (bool, String) {
    let output = tokio::process::Command::new(testkit::binary("projections"))
        .args(args)
        .env("DATABASE_URL", &stack.db.url)
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

/// Every booking has settled: no hold or payment is pending any more.
async fn settled(stack: &Stack) {
    eventually("every booking final", Duration::from_secs(120), || async {
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM booking_view
             WHERE status IN ('held', 'payment_pending', 'refund_pending')",
        )
        .fetch_one(&stack.db.pool)
        .await
        .ok()?;
        (open == 0).then_some(())
    })
    .await;
}

async fn organizer_and_events(stack: &Stack, count: usize) -> (String, Vec<String>) {
    let organizer = stack.organizer("replay-organizer@example.com").await;
    let mut events = Vec::new();
    for e in 0..count {
        events.push(big_show(stack, &organizer, &format!("Replay {e}")).await);
    }
    (organizer, events)
}

/// An event's sales counted straight from the events table (not through any projection):
/// (tickets sold, revenue, confirmed, cancelled, expired, refunded).
async fn sales_from_the_store(stack: &Stack, event: &str) -> (i64, i64, i64, i64, i64, i64) {
    sqlx::query_as(
        "WITH placed AS (
            SELECT aggregate_id, (payload::jsonb #>> '{BookingPlaced,show_id}')::uuid AS event_id,
                   jsonb_array_length(payload::jsonb #> '{BookingPlaced,seats}')
                   + coalesce((SELECT sum((g->>'quantity')::int) FROM
                        jsonb_array_elements(payload::jsonb #> '{BookingPlaced,general_admission}') g), 0)
                     AS places,
                   (payload::jsonb #>> '{BookingPlaced,total,amount_minor}')::bigint AS total
              FROM events WHERE aggregate_type = 'booking' AND event_type = 'BookingPlaced'),
         last AS (
            SELECT DISTINCT ON (aggregate_id) aggregate_id, event_type FROM events
             WHERE aggregate_type = 'booking' AND event_type <> 'TicketCheckedIn'
             ORDER BY aggregate_id, sequence DESC)
         SELECT coalesce(sum(places) FILTER (WHERE l.event_type = 'BookingConfirmed'), 0)::bigint,
                coalesce(sum(total) FILTER (WHERE l.event_type = 'BookingConfirmed'), 0)::bigint,
                count(*) FILTER (WHERE l.event_type = 'BookingConfirmed'),
                count(*) FILTER (WHERE l.event_type = 'BookingCancelled'),
                count(*) FILTER (WHERE l.event_type = 'BookingExpired'),
                count(*) FILTER (WHERE l.event_type = 'BookingRefunded')
           FROM placed p JOIN last l USING (aggregate_id) WHERE p.event_id = $1",
    )
    .bind(event.parse::<Uuid>().expect("uuid"))
    .fetch_one(&stack.db.pool)
    .await
    .expect("direct count")
}

/// The `sales` figures of every event equal a direct count over the event store.
async fn sales_match_the_store(stack: &Stack, organizer: &str, events: &[String]) {
    for event in events {
        let want = sales_from_the_store(stack, event).await;
        let path = format!("/api/events/{event}/sales");
        let report = eventually(
            "sales to match the store",
            Duration::from_secs(60),
            || async {
                let (status, _, report) = stack.call(M::GET, &path, organizer, None).await;
                let got = (
                    report["tickets_sold"].as_i64()?,
                    report["revenue"]["amount_minor"].as_i64()?,
                    report["bookings"]["confirmed"].as_i64()?,
                    report["bookings"]["cancelled"].as_i64()?,
                    report["bookings"]["expired"].as_i64()?,
                    report["bookings"]["refunded"].as_i64()?,
                );
                (status == 200 && got == want).then_some(report)
            },
        )
        .await;
        let by_tier: i64 = report["by_tier"]
            .as_array()
            .expect("by_tier")
            .iter()
            .map(|t| t["sold"].as_i64().expect("sold"))
            .sum();
        assert_eq!(by_tier, want.0, "the tiers add up: {report}");
        assert_eq!(report["active_holds"], 0, "{report}");
        let (status, _, series) = stack
            .call(M::GET, &format!("{path}/timeseries"), organizer, None)
            .await;
        assert_eq!(status, 200, "{series}");
        let points = series["points"].as_array().expect("points");
        let net: i64 = points
            .iter()
            .map(|p| {
                p["tickets_sold"].as_i64().expect("n") - p["tickets_refunded"].as_i64().expect("n")
            })
            .sum();
        assert_eq!(net, want.0, "the minutes add up to what is sold: {series}");
    }
}

#[tokio::test]
async fn a_mixed_workload_verifies_clean_and_a_damaged_model_is_caught_and_replayed() {
    let stack = Stack::with_payments(&[
        ("HOLD_TTL_SECONDS", "15"),
        ("PAYMENT_TIMEOUT_SECONDS", "60"),
    ])
    .await;
    let (organizer, events) = organizer_and_events(&stack, 4).await;
    let workload = mixed_workload(&stack, &events, 2_000, 0).await;
    refund_some(&stack, &workload).await;
    settled(&stack).await;
    sales_match_the_store(&stack, &organizer, &events).await;
    let statuses: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM booking_view GROUP BY 1 ORDER BY 1")
            .fetch_all(&stack.db.pool)
            .await
            .expect("statuses");
    eprintln!("workload: {statuses:?}");
    for status in ["cancelled", "confirmed", "expired", "refunded"] {
        assert!(
            statuses.iter().any(|(s, n)| s == status && *n > 0),
            "the workload has {status} bookings: {statuses:?}"
        );
    }

    let (clean, out) = projections_cli(&stack, &["verify", "all"]).await;
    assert!(clean, "every model verifies clean: {out}");
    assert_eq!(out.matches("no difference").count(), 6, "{out}");

    // Damage the bookings model: verify must notice.
    sqlx::query("DELETE FROM ticket_view WHERE ctid IN (SELECT ctid FROM ticket_view LIMIT 7)")
        .execute(&stack.db.pool)
        .await
        .expect("damage");
    let (clean, out) = projections_cli(&stack, &["verify", "bookings"]).await;
    assert!(!clean, "verify exits non-zero on a difference");
    assert!(
        out.contains("ticket_view: 7 rows only in the rebuilt model"),
        "{out}"
    );

    let (ok, out) = projections_cli(&stack, &["replay", "all"]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("bookings:") && out.contains("events/s"),
        "{out}"
    );
    let (clean, out) = projections_cli(&stack, &["verify", "all"]).await;
    assert!(clean, "after the replay: {out}");
}

#[tokio::test]
async fn a_replay_under_load_swaps_in_a_model_that_matches_the_store() {
    let stack = Stack::with_payments(&[
        ("HOLD_TTL_SECONDS", "15"),
        ("PAYMENT_TIMEOUT_SECONDS", "60"),
    ])
    .await;
    let (_, events) = organizer_and_events(&stack, 2).await;
    // A base to replay, then bookings that keep arriving while the replay runs.
    mixed_workload(&stack, &events, 600, 0).await;

    let load = async {
        let workload = mixed_workload(&stack, &events, 800, 600).await;
        refund_some(&stack, &workload).await;
    };
    let mut worst_relay_lag = Duration::ZERO;
    let replay = async {
        let (ok, out) = projections_cli(&stack, &["replay", "all"]).await;
        assert!(ok, "{out}");
    };
    let watch_relay = async {
        // The oldest event the relay has not published yet, while the replay runs.
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            let lag: Option<f64> = sqlx::query_scalar(
                "SELECT extract(epoch FROM now() - min(recorded_at))::float8 FROM events
                 WHERE global_position > (SELECT coalesce(max(global_position), 0)
                                          FROM relay_checkpoint)",
            )
            .fetch_one(&stack.db.pool)
            .await
            .expect("relay lag");
            worst_relay_lag = worst_relay_lag.max(Duration::from_secs_f64(lag.unwrap_or(0.0)));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::join!(load, replay, watch_relay);
    eprintln!("worst relay lag during the replay: {worst_relay_lag:?}");
    assert!(
        // A replay holding the relay back for its whole run (~20 s here) would exceed this;
        // short batches keep it to about one batch under a loaded suite.
        worst_relay_lag < Duration::from_secs(10),
        "the relay kept publishing during the replay (worst lag {worst_relay_lag:?})"
    );
    settled(&stack).await;
    let (clean, out) = projections_cli(&stack, &["verify", "all"]).await;
    assert!(clean, "the swapped-in models match the store: {out}");
}

/// Holds `seats` of `main` and `ga` places of `floor`, each by its own buyer; returns the
/// position token of the last one.
async fn hold(stack: &Stack, event: &str, seats: &[String], ga: u32) -> String {
    let mut position = String::new();
    let mut bodies: Vec<Value> = seats
        .iter()
        .map(|seat| json!({"event_id": event, "seats": [seat]}))
        .collect();
    bodies.extend(
        (0..ga).map(|_| json!({"event_id": event, "general_admission": [{"section_id": "floor", "quantity": 2}]})),
    );
    for body in bodies {
        let buyer = mint_token(Uuid::new_v4(), &["customer"]);
        let (status, headers, reply) = stack
            .call(M::POST, "/api/bookings", &buyer, Some(body))
            .await;
        assert_eq!(status, 201, "{reply}");
        position = headers["x-event-position"]
            .to_str()
            .expect("position")
            .to_owned();
    }
    position
}

/// `GET …/availability`, waiting for `position` to be applied.
async fn availability(stack: &Stack, event: &str, position: &str) -> Value {
    let reply = stack
        .http
        .get(stack.url(&format!("/api/events/{event}/availability")))
        .header("x-min-position", position)
        .send()
        .await
        .expect("availability");
    assert_eq!(reply.status(), 200);
    assert!(
        reply.headers().get("x-consistency").is_none(),
        "a fresh answer"
    );
    reply.json().await.expect("json")
}

fn seats(row: u32, numbers: std::ops::RangeInclusive<u32>) -> Vec<String> {
    numbers.map(|n| format!("main:R{row}:{n}")).collect()
}

#[tokio::test]
async fn availability_rebuilt_as_of_an_instant_equals_the_availability_answered_then() {
    let stack = Stack::start_configured(1, &[("HOLD_TTL_SECONDS", "3")]).await;
    let (_, events) = organizer_and_events(&stack, 1).await;
    let event = &events[0];

    // Holds that expire, then holds taking some of those seats over, others new.
    let first = hold(&stack, event, &seats(0, 1..=10), 3).await;
    availability(&stack, event, &first).await;
    eventually(
        "the first holds to expire",
        Duration::from_secs(30),
        || async {
            let now = availability(&stack, event, &first).await;
            (now["sections"][0]["held"] == 0 && now["sections"][1]["held"] == 0).then_some(())
        },
    )
    .await;
    let mut second = seats(0, 1..=5);
    second.extend(seats(1, 1..=5));
    let position = hold(&stack, event, &second, 2).await;
    availability(&stack, event, &position).await;

    // Nothing else writes (no saga): what is answered now is exactly what was recorded.
    let at: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&stack.db.pool)
        .await
        .expect("clock");
    let then = availability(&stack, event, &position).await;
    assert_eq!(then["sections"][0]["held"], 10, "{then}");

    let later = hold(&stack, event, &seats(2, 1..=5), 1).await;
    let now = availability(&stack, event, &later).await;
    assert_ne!(now["sections"], then["sections"], "the model moved on");

    let (ok, out) = projections_cli(
        &stack,
        &[
            "replay",
            "availability",
            "--as-of",
            &at.to_rfc3339(),
            "--into",
            "past",
        ],
    )
    .await;
    assert!(ok, "{out}");
    let mut conn = sqlx::PgConnection::connect(&stack.db.url)
        .await
        .expect("connect");
    sqlx::query("SET search_path TO past, public")
        .execute(&mut conn)
        .await
        .expect("search path");
    let layout: Vec<domain::show::Section> =
        serde_json::from_value(now_layout(&stack, event).await).expect("layout");
    let rebuilt = projections::models::availability::sections(
        &mut conn,
        event.parse().expect("uuid"),
        &layout,
        None,
        at,
    )
    .await
    .expect("availability as of then");
    assert_eq!(
        serde_json::to_value(&rebuilt).expect("json"),
        then["sections"],
        "the model as of {at} answers what was answered then"
    );
}

/// The event's sections, as its details list them.
async fn now_layout(stack: &Stack, event: &str) -> Value {
    let reply = stack
        .http
        .get(stack.url(&format!("/api/events/{event}")))
        .send()
        .await
        .expect("event");
    reply.json::<Value>().await.expect("json")["sections"].clone()
}
