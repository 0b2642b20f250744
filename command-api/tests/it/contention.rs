//! No double hold under contention: 200 concurrent clients race for overlapping seats of one
//! section through two command-api instances; conflicts between the instances are absorbed
//! (retried) and never reach a client; the availability read model matches the store.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::future::join_all;
use rand::Rng;
use rand::seq::IndexedRandom;
use reqwest::Method as M;
use serde_json::{Value, json};

use crate::support::Stack;

const CLIENTS: usize = 200;

async fn published_event(stack: &Stack, sections: Value, tiers: Value) -> String {
    let organizer = stack.organizer("contention-org@example.com").await;
    let starts = (chrono::Utc::now() + chrono::Duration::days(10)).to_rfc3339();
    let (status, _, body) = stack
        .call(
            M::POST,
            "/api/events",
            &organizer,
            Some(json!({"name": "Hot", "venue": "Hall", "starts_at": starts})),
        )
        .await;
    assert_eq!(status, 201);
    let id = body["event_id"].as_str().expect("id").to_owned();
    for (path, body) in [
        ("layout", json!({"sections": sections})),
        ("pricing", json!({"tiers": tiers})),
    ] {
        let (status, _, reply) = stack
            .call(
                M::POST,
                &format!("/api/events/{id}/{path}"),
                &organizer,
                Some(body),
            )
            .await;
        assert_eq!(status, 200, "{path}: {reply}");
    }
    let (status, _, _) = stack
        .call(
            M::POST,
            &format!("/api/events/{id}/publish"),
            &organizer,
            None,
        )
        .await;
    assert_eq!(status, 200);
    id
}

/// Cross-instance races on inventory absorbed over every instance: decisions made again
/// because the append found the other instance's events (`aggregate_stale_decisions_total`)
/// or lost on the primary key (`aggregate_conflicts_retried_total`).
async fn conflicts_retried(stack: &Stack) -> f64 {
    let mut total = 0.0;
    for i in 0..stack.api_count() {
        let text = stack
            .http
            .get(stack.ops_url_on(i, "/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        total += text
            .lines()
            .filter(|l| {
                (l.starts_with("aggregate_conflicts_retried_total")
                    || l.starts_with("aggregate_stale_decisions_total"))
                    && l.contains("aggregate=\"inventory\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
    }
    total
}

async fn positions_fresh(stack: &Stack, id: &str, positions: &[String]) -> Value {
    // One read per position: every hold's events must be in the read model.
    let mut last = Value::Null;
    for position in positions {
        let reply = stack
            .http
            .get(stack.url(&format!("/api/events/{id}/availability")))
            .header("x-min-position", position)
            .send()
            .await
            .expect("availability");
        assert!(
            reply.headers().get("x-consistency").is_none(),
            "availability stayed stale"
        );
        last = reply.json().await.expect("json");
    }
    last
}

/// Rounds of the race, each on its own 100-seat section: whether the two instances collide
/// is a matter of timing, so several rounds make a round without any collision no excuse.
const ROUNDS: usize = 3;

#[tokio::test]
async fn concurrent_holds_on_one_section_never_hold_a_seat_twice() {
    let stack = Stack::start_with(2).await;
    let rows: Vec<Value> = (0..10)
        .map(|r| json!({"row": format!("R{r}"), "seats": 10}))
        .collect();
    let sections: Vec<String> = (1..=ROUNDS).map(|n| format!("hot{n}")).collect();
    let layout: Vec<Value> = sections
        .iter()
        .map(|s| json!({"section_id": s, "name": s, "kind": "seated", "rows": rows}))
        .collect();
    let id = published_event(
        &stack,
        json!(layout),
        json!([{"tier_id": "t", "name": "T", "price": {"amount_minor": 1000, "currency": "EUR"}, "section_ids": sections}]),
    )
    .await;
    let tokens = stack.buyers(CLIENTS, "buyer").await;
    for section in &sections {
        race(&stack, &id, section, &tokens).await;
    }
    let retried = conflicts_retried(&stack).await;
    eprintln!("CONTENTION: {retried} cross-instance conflicts retried and absorbed");
    assert!(
        retried > 0.0,
        "two instances on one section must have raced at least once"
    );
}

/// One round: every client races for seats of `section`; checks answers, store and read model.
async fn race(stack: &Stack, id: &str, section: &str, tokens: &[String]) {
    let all_seats: Vec<String> = (0..10)
        .flat_map(|r| (1..=10).map(move |n| format!("{section}:R{r}:{n}")))
        .collect();
    let started = Instant::now();
    // Like real buyers, a client refused with 409 tries other seats, up to three times.
    let clients = tokens.iter().enumerate().map(|(i, token)| {
        let url = stack.url_on(i % 2, "/api/bookings");
        let http = stack.http.clone();
        let id = id.to_owned();
        let all_seats = &all_seats;
        async move {
            let mut tries = Vec::new();
            for _ in 0..3 {
                let seats: Vec<String> = {
                    let mut rng = rand::rng();
                    let count = rng.random_range(2..=4);
                    all_seats
                        .choose_multiple(&mut rng, count)
                        .cloned()
                        .collect()
                };
                let reply = http
                    .post(&url)
                    .bearer_auth(token)
                    .json(&json!({"event_id": id, "seats": seats}))
                    .send()
                    .await
                    .expect("hold request");
                let status = reply.status().as_u16();
                let position = reply
                    .headers()
                    .get("x-event-position")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body: Value = reply.json().await.unwrap_or(Value::Null);
                tries.push((status, seats, body, position));
                if status != 409 {
                    break;
                }
            }
            tries
        }
    });
    let results: Vec<_> = join_all(clients).await.into_iter().flatten().collect();
    let elapsed = started.elapsed();

    let statuses: BTreeMap<u16, usize> = results.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.0).or_default() += 1;
        m
    });
    assert!(
        statuses.keys().all(|s| *s == 201 || *s == 409),
        "only 201 and 409 allowed: {statuses:?}"
    );
    let mut held = BTreeSet::new();
    let mut positions = Vec::new();
    for (status, seats, body, position) in &results {
        if *status == 201 {
            for seat in seats {
                assert!(held.insert(seat.clone()), "seat {seat} was held twice");
            }
            assert_eq!(body["seats"], json!(seats));
            positions.push(position.clone().expect("position"));
        } else {
            let unavailable = body["unavailable"]
                .as_array()
                .expect("409 lists unavailable seats");
            assert!(!unavailable.is_empty());
        }
    }
    eprintln!(
        "CONTENTION: {} hold requests from {CLIENTS} clients in {:.2}s = {:.0} holds/s ({:?}), {} seats held",
        results.len(),
        elapsed.as_secs_f64(),
        results.len() as f64 / elapsed.as_secs_f64(),
        statuses,
        held.len()
    );

    // The store agrees: replaying the section's events gives exactly the seats answered 201.
    let mut stored: BTreeMap<String, String> = BTreeMap::new();
    let events: Vec<(String, Value)> = sqlx::query_as(
        "SELECT event_type, payload::jsonb FROM events
          WHERE aggregate_type = 'inventory' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(format!("{id}:{section}"))
    .fetch_all(&stack.db.pool)
    .await
    .expect("events");
    for (event_type, payload) in events {
        let data = &payload[&event_type];
        let booking = data["booking_id"].as_str().unwrap_or_default().to_owned();
        for seat in data["seats"].as_array().into_iter().flatten() {
            let seat = seat.as_str().expect("seat").to_owned();
            match event_type.as_str() {
                "SeatsHeld" => {
                    assert!(
                        stored.insert(seat.clone(), booking.clone()).is_none(),
                        "store holds {seat} twice"
                    );
                }
                "HoldReleased" | "HoldExpired" => {
                    stored.remove(&seat);
                }
                _ => {}
            }
        }
    }
    assert_eq!(stored.keys().cloned().collect::<BTreeSet<_>>(), held);

    let availability = positions_fresh(stack, id, &positions).await;
    let view = availability["sections"]
        .as_array()
        .expect("sections")
        .iter()
        .find(|s| s["section_id"] == section)
        .expect("section listed");
    assert_eq!(view["held"], json!(held.len()));
    let listed: BTreeSet<String> = view["seats"]
        .as_array()
        .expect("seats")
        .iter()
        .filter(|s| s["status"] == "held")
        .map(|s| s["seat_id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(listed, held, "the read model differs from the store");
}

#[tokio::test]
async fn concurrent_general_admission_holds_never_exceed_capacity() {
    let stack = Stack::start_with(2).await;
    let id = published_event(
        &stack,
        json!([{"section_id": "pit", "name": "Pit", "kind": "general_admission", "capacity": 100}]),
        json!([{"tier_id": "t", "name": "T", "price": {"amount_minor": 1000, "currency": "EUR"}, "section_ids": ["pit"]}]),
    )
    .await;
    let tokens = stack.buyers(CLIENTS, "buyer").await;
    let attempts = tokens.iter().enumerate().map(|(i, token)| {
        let quantity = rand::rng().random_range(1..=3u32);
        let url = stack.url_on(i % 2, "/api/bookings");
        let http = stack.http.clone();
        let id = id.clone();
        async move {
            let reply = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({"event_id": id, "general_admission": [{"section_id": "pit", "quantity": quantity}]}))
                .timeout(Duration::from_secs(60))
                .send()
                .await
                .expect("hold");
            let status = reply.status().as_u16();
            let position = reply.headers().get("x-event-position").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let body: Value = reply.json().await.unwrap_or(Value::Null);
            (status, quantity, body, position)
        }
    });
    let results = join_all(attempts).await;
    assert!(
        results.iter().all(|r| r.0 == 201 || r.0 == 409),
        "statuses: {:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    let granted: u32 = results.iter().filter(|r| r.0 == 201).map(|r| r.1).sum();
    assert!(granted <= 100, "{granted} places held of 100");
    assert!(
        granted >= 98,
        "demand exceeds supply, so the section fills up: {granted}"
    );
    for refused in results.iter().filter(|r| r.0 == 409) {
        let available = refused.2["unavailable_sections"][0]["available"]
            .as_u64()
            .expect("available");
        assert!(available < u64::from(refused.1));
    }
    let positions: Vec<String> = results.iter().filter_map(|r| r.3.clone()).collect();
    let availability = positions_fresh(&stack, &id, &positions).await;
    assert_eq!(availability["sections"][0]["held"], json!(granted));
    assert_eq!(
        availability["sections"][0]["available"],
        json!(100 - granted)
    );
}
