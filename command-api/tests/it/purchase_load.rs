//! The purchase under pressure: 500 buyers racing for one 100-seat section through the full
//! purchase never oversell; and killing the saga or the payment provider mid-batch loses no
//! booking, charges nobody twice and leaves no seat held.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use futures::future::join_all;
use plumbing::testkit::eventually;
use rand::Rng;
use rand::seq::IndexedRandom;
use reqwest::Method as M;
use serde_json::{Value, json};

use crate::purchase::{SECTION_ROWS, published_show};
use crate::support::Stack;

const FINAL: &[&str] = &["confirmed", "cancelled", "expired", "refunded"];

fn token_for(i: usize) -> &'static str {
    match i % 10 {
        8 => "tok_decline",
        9 => "tok_timeout",
        _ => "tok_visa",
    }
}

/// One buyer: holds 1–2 random seats; when that works, pays. Returns (booking, token used).
async fn purchase(
    stack: &Stack,
    token: &str,
    event: &str,
    i: usize,
) -> Option<(String, &'static str)> {
    let seats: Vec<String> = {
        let all: Vec<String> = (0..SECTION_ROWS)
            .flat_map(|r| (1..=10).map(move |n| format!("hall:R{r}:{n}")))
            .collect();
        let mut rng = rand::rng();
        let count = rng.random_range(1..=2);
        all.choose_multiple(&mut rng, count).cloned().collect()
    };
    let (status, _, body) = stack
        .call(
            M::POST,
            "/api/bookings",
            token,
            Some(json!({"event_id": event, "seats": seats})),
        )
        .await;
    assert!(
        status == 201 || status == 409,
        "hold answered {status}: {body}"
    );
    if status != 201 {
        return None;
    }
    let booking = body["booking_id"].as_str().expect("id").to_owned();
    let payment = token_for(i);
    let (status, _, body) = stack
        .call(
            M::POST,
            &format!("/api/bookings/{booking}/pay"),
            token,
            Some(json!({"payment_token": payment})),
        )
        .await;
    assert_eq!(status, 202, "pay: {body}");
    Some((booking, payment))
}

/// Waits until every booking is final, straight from the event store (the source of truth).
async fn all_final(
    stack: &Stack,
    bookings: &[String],
    timeout: Duration,
) -> HashMap<String, String> {
    eventually("every booking final", timeout, || async {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT DISTINCT ON (aggregate_id) aggregate_id, event_type FROM events
              WHERE aggregate_type = 'booking'
                AND event_type IN ('BookingPlaced', 'PaymentRequested', 'BookingConfirmed',
                                   'BookingCancelled', 'BookingExpired', 'BookingRefunded')
              ORDER BY aggregate_id, sequence DESC",
        )
        .fetch_all(&stack.db.pool)
        .await
        .ok()?;
        let states: HashMap<String, String> = rows
            .into_iter()
            .map(|(id, t)| {
                let state = match t.as_str() {
                    "BookingConfirmed" => "confirmed",
                    "BookingCancelled" => "cancelled",
                    "BookingExpired" => "expired",
                    "BookingRefunded" => "refunded",
                    _ => "open",
                };
                (id, state.to_owned())
            })
            .collect();
        bookings
            .iter()
            .all(|b| states.get(b).is_some_and(|s| FINAL.contains(&s.as_str())))
            .then_some(states)
    })
    .await
}

/// Seats sold according to the store: replays the section's inventory events.
async fn sold_in_store(stack: &Stack, event: &str) -> BTreeSet<String> {
    let events: Vec<(String, Value)> = sqlx::query_as(
        "SELECT event_type, payload::jsonb FROM events
          WHERE aggregate_type = 'inventory' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(format!("{event}:hall"))
    .fetch_all(&stack.db.pool)
    .await
    .expect("events");
    let mut sold = BTreeSet::new();
    for (event_type, payload) in events {
        let seats = payload[&event_type]["seats"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for seat in seats.iter().filter_map(Value::as_str) {
            match event_type.as_str() {
                "HoldSold" => assert!(
                    sold.insert(seat.to_owned()),
                    "{seat} sold twice in the store"
                ),
                "SaleReturned" => {
                    sold.remove(seat);
                }
                _ => {}
            }
        }
    }
    sold
}

/// Availability and tickets agree with the store; nothing is left held; no seat has two
/// valid tickets; the provider captured each booking at most once.
async fn assert_consistent(stack: &Stack, event: &str, states: &HashMap<String, String>) -> usize {
    let sold = sold_in_store(stack, event).await;
    assert!(sold.len() <= 100);
    let availability = eventually(
        "availability to settle",
        Duration::from_secs(30),
        || async {
            let body: Value = stack
                .http
                .get(stack.url(&format!("/api/events/{event}/availability?section_id=hall")))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let section = body["sections"][0].clone();
            (section["held"] == 0 && section["sold"] == json!(sold.len())).then_some(section)
        },
    )
    .await;
    let listed: BTreeSet<String> = availability["seats"]
        .as_array()
        .expect("seats")
        .iter()
        .filter(|s| s["status"] == "sold")
        .map(|s| s["seat_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(listed, sold, "availability disagrees with the store");

    let confirmed: Vec<&String> = states
        .iter()
        .filter(|(_, s)| s.as_str() == "confirmed")
        .map(|(b, _)| b)
        .collect();
    let tickets: Vec<(Option<String>,)> =
        eventually("tickets projected", Duration::from_secs(30), || async {
            let rows: Vec<(Option<String>,)> =
                sqlx::query_as("SELECT seat_id FROM ticket_view WHERE status = 'valid'")
                    .fetch_all(&stack.db.pool)
                    .await
                    .ok()?;
            (rows.len() == sold.len()).then_some(rows)
        })
        .await;
    let seats: BTreeSet<String> = tickets.iter().filter_map(|(s,)| s.clone()).collect();
    assert_eq!(seats.len(), tickets.len(), "a seat has two valid tickets");
    assert_eq!(seats, sold, "valid tickets are not the sold seats");

    let ledger = stack.ledger().await;
    let mut captures: BTreeMap<String, usize> = BTreeMap::new();
    for charge in ledger["charges"].as_array().expect("charges") {
        if charge["status"] == "succeeded" {
            *captures
                .entry(charge["booking_id"].as_str().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
    }
    assert!(
        captures.values().all(|n| *n == 1),
        "a booking was captured twice: {captures:?}"
    );
    for booking in &confirmed {
        assert_eq!(
            captures.get(booking.as_str()),
            Some(&1),
            "confirmed booking {booking} was not captured"
        );
    }
    confirmed.len()
}

async fn median_pay_to_confirm(stack: &Stack) -> Option<f64> {
    let mut millis: Vec<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM c.recorded_at - p.recorded_at)::float8 * 1000
           FROM events p JOIN events c USING (aggregate_type, aggregate_id)
          WHERE p.aggregate_type = 'booking' AND p.event_type = 'PaymentRequested'
            AND c.event_type = 'BookingConfirmed'",
    )
    .fetch_all(&stack.db.pool)
    .await
    .ok()?;
    millis.sort_by(f64::total_cmp);
    millis.get(millis.len() / 2).copied()
}

#[tokio::test]
async fn five_hundred_buyers_never_oversell_one_section() {
    // Long enough that a tok_visa payment confirms even when the whole suite loads the
    // machine; tok_timeout bookings wait this long before they are cancelled.
    let stack = Stack::with_payments(&[("PAYMENT_TIMEOUT_SECONDS", "12")]).await;
    let organizer = stack.organizer("org@example.com").await;
    let event = published_show(&stack, &organizer).await;
    let tokens = stack.buyers(500, "buyer").await;

    let started = Instant::now();
    let attempts = tokens
        .iter()
        .enumerate()
        .map(|(i, token)| purchase(&stack, token, &event, i));
    let bookings: Vec<(String, &str)> = join_all(attempts).await.into_iter().flatten().collect();
    let ids: Vec<String> = bookings.iter().map(|(b, _)| b.clone()).collect();
    let states = all_final(&stack, &ids, Duration::from_secs(90)).await;
    let elapsed = started.elapsed();
    let confirmed = assert_consistent(&stack, &event, &states).await;
    for (booking, payment) in &bookings {
        let state = &states[booking];
        match *payment {
            "tok_visa" => assert_eq!(state, "confirmed", "{booking}"),
            _ => assert_eq!(state, "cancelled", "{booking} paid with {payment}"),
        }
    }
    eprintln!(
        "OVERSELL: 500 buyers, {} holds, {confirmed} purchases confirmed in {:.1}s = {:.1} purchases/s; median pay→confirmed {:.0} ms",
        bookings.len(),
        elapsed.as_secs_f64(),
        confirmed as f64 / elapsed.as_secs_f64(),
        median_pay_to_confirm(&stack).await.unwrap_or(f64::NAN)
    );
}

#[tokio::test]
async fn killing_the_saga_or_the_provider_mid_batch_loses_nothing() {
    let mut stack = Stack::with_payments(&[
        ("PAYMENT_TIMEOUT_SECONDS", "30"),
        ("PAYMENT_SIM_LATENCY_MS", "300"),
    ])
    .await;
    let organizer = stack.organizer("org@example.com").await;
    let event = published_show(&stack, &organizer).await;
    let tokens = stack.buyers(60, "crash").await;

    // First half, then kill the saga while their payments are in flight.
    let first: Vec<(String, &str)> = join_all(
        tokens[..30]
            .iter()
            .enumerate()
            .map(|(i, t)| purchase(&stack, t, &event, i)),
    )
    .await
    .into_iter()
    .flatten()
    .collect();
    stack.restart_saga().await;
    // Second half, then kill the provider while its webhooks are owed.
    let second: Vec<(String, &str)> = join_all(
        tokens[30..]
            .iter()
            .enumerate()
            .map(|(i, t)| purchase(&stack, t, &event, i + 30)),
    )
    .await
    .into_iter()
    .flatten()
    .collect();
    stack.restart_payment_sim().await;

    let bookings: Vec<(String, &str)> = first.into_iter().chain(second).collect();
    let ids: Vec<String> = bookings.iter().map(|(b, _)| b.clone()).collect();
    let states = all_final(&stack, &ids, Duration::from_secs(90)).await;
    let confirmed = assert_consistent(&stack, &event, &states).await;
    for (booking, payment) in &bookings {
        if *payment == "tok_visa" && states[booking] != "confirmed" {
            let reason: Option<String> = sqlx::query_scalar(
                "SELECT payload::jsonb -> 'BookingCancelled' ->> 'detail' FROM events
                  WHERE aggregate_id = $1 AND event_type = 'BookingCancelled'",
            )
            .bind(booking)
            .fetch_optional(&stack.db.pool)
            .await
            .expect("reason");
            panic!(
                "{booking} paid with tok_visa ended {} ({reason:?})",
                states[booking]
            );
        }
    }
    eprintln!(
        "CRASH: {} bookings after saga and provider kills, {confirmed} confirmed, all final",
        bookings.len()
    );
}
