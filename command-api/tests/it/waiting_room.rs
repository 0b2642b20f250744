//! The virtual waiting room on running processes: concurrent joins, admission order and rate
//! from the admitter, the booking check, admitters killed and doubled, and positions pushed
//! over WebSocket to their user only.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use plumbing::testkit::eventually;
use reqwest::Method as M;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::purchase::published_show_with;
use crate::realtime::{Socket, connect, frames_within, next_matching};
use crate::support::{Stack, mint_token};

/// Publishes the standard show behind a waiting room.
async fn queued_show(stack: &Stack, admit_per_minute: u32) -> String {
    let organizer = stack
        .organizer(&format!("org-{}@example.com", Uuid::new_v4().simple()))
        .await;
    published_show_with(
        stack,
        &organizer,
        Some(
            json!({"queue": {"enabled": true, "admit_per_minute": admit_per_minute,
                              "admission_minutes": 10}}),
        ),
    )
    .await
}

async fn join(stack: &Stack, token: &str, event: &str) -> (StatusCode, Value) {
    let (status, _, body) = stack
        .call(M::POST, &format!("/api/events/{event}/queue"), token, None)
        .await;
    (status, body)
}

/// Joins `users` with up to 200 requests in flight; returns position → user.
async fn join_all(stack: &Stack, event: &str, users: &[Uuid]) -> HashMap<u64, Uuid> {
    let joined: Vec<(Uuid, StatusCode, Value)> = futures::stream::iter(users.iter().copied())
        .map(|user| async move {
            let (status, body) = join(stack, &mint_token(user, &["customer"]), event).await;
            (user, status, body)
        })
        .buffer_unordered(200)
        .collect()
        .await;
    let mut by_position = HashMap::new();
    for (user, status, body) in joined {
        assert_eq!(status, 201, "join: {body}");
        assert_eq!(body["status"], "waiting", "{body}");
        let position = body["position"].as_u64().expect("a position");
        assert!(
            by_position.insert(position, user).is_none(),
            "position {position} was handed out twice"
        );
    }
    by_position
}

/// Polls until `count` places of `event` are admitted.
async fn admitted_reaches(stack: &Stack, event: &str, count: i64) {
    let event: Uuid = event.parse().expect("uuid");
    eventually(
        &format!("{count} admissions"),
        Duration::from_secs(90),
        || async {
            let through: i64 = sqlx::query_scalar(
                "SELECT admitted_through FROM waiting_rooms WHERE event_id = $1",
            )
            .bind(event)
            .fetch_one(&stack.db.pool)
            .await
            .ok()?;
            (through >= count).then_some(())
        },
    )
    .await;
}

/// The admission log of `event` in admission order: (user, ordinal, admitted_at).
async fn admissions(stack: &Stack, event: &str) -> Vec<(Uuid, i64, DateTime<Utc>)> {
    sqlx::query_as(
        "SELECT user_id, ordinal, admitted_at FROM waiting_room_admissions
         WHERE event_id = $1 ORDER BY id",
    )
    .bind(event.parse::<Uuid>().expect("uuid"))
    .fetch_all(&stack.db.pool)
    .await
    .expect("admissions")
}

/// Every place admitted exactly once, in joining order.
fn assert_admitted_once_in_order(
    log: &[(Uuid, i64, DateTime<Utc>)],
    by_position: &HashMap<u64, Uuid>,
) {
    assert_eq!(log.len(), by_position.len(), "one admission per place");
    for (i, (user, ordinal, _)) in log.iter().enumerate() {
        let expected = i as i64 + 1;
        assert_eq!(*ordinal, expected, "admission #{expected} out of order");
        assert_eq!(
            Some(user),
            by_position.get(&(expected as u64)),
            "admission #{expected} is not the user who joined {expected}th"
        );
    }
}

#[tokio::test]
async fn a_thousand_concurrent_joins_are_admitted_once_each_in_order_at_the_rate() {
    let mut stack = Stack::start().await;
    let rate = 6_000; // a hundred a second: the test takes ~10 s
    let event = queued_show(&stack, rate).await;
    let users: Vec<Uuid> = (0..1_000).map(|_| Uuid::new_v4()).collect();

    let by_position = join_all(&stack, &event, &users).await;
    let positions: Vec<u64> = {
        let mut p: Vec<u64> = by_position.keys().copied().collect();
        p.sort_unstable();
        p
    };
    assert_eq!(
        positions,
        (1..=1_000).collect::<Vec<u64>>(),
        "distinct ranks 1..1000"
    );

    // Joining again keeps the place.
    let (first, second) = (by_position[&1], by_position[&500]);
    for (user, position) in [(first, 1), (second, 500)] {
        let (status, body) = join(&stack, &mint_token(user, &["customer"]), &event).await;
        assert_eq!(status, 201);
        assert_eq!(body["position"], position, "{body}");
    }

    stack.start_admitter().await;
    admitted_reaches(&stack, &event, 1_000).await;
    let log = admissions(&stack, &event).await;
    assert_admitted_once_in_order(&log, &by_position);

    // The rate over the middle of the run (away from the first tick and the tail).
    let (from, to) = (log[100].2, log[900].2);
    let per_minute = 800.0 / (to - from).as_seconds_f64() * 60.0;
    let error = (per_minute - f64::from(rate)).abs() / f64::from(rate);
    eprintln!(
        "admission rate {per_minute:.0}/min for {rate}/min configured ({:.1}% off)",
        error * 100.0
    );
    assert!(
        error <= 0.10,
        "admitted {per_minute:.0}/min, configured {rate}/min"
    );

    let (status, _, place) = stack
        .call(
            M::GET,
            &format!("/api/events/{event}/queue"),
            &mint_token(first, &["customer"]),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(place["status"], "admitted", "{place}");
    assert!(place["admitted_until"].is_string(), "{place}");
}

async fn book(stack: &Stack, token: &str, event: &str, seat: &str) -> (StatusCode, Value) {
    let (status, _, body) = stack
        .call(
            M::POST,
            "/api/bookings",
            token,
            Some(json!({"event_id": event, "seats": [seat]})),
        )
        .await;
    (status, body)
}

#[tokio::test]
async fn booking_needs_a_valid_admission_and_an_expired_one_rejoins_at_the_back() {
    let mut stack = Stack::start().await;
    let event = queued_show(&stack, 600).await;
    let buyer = Uuid::new_v4();
    let token = mint_token(buyer, &["customer"]);

    let (status, problem) = book(&stack, &token, &event, "hall:R0:1").await;
    assert_eq!(status, 403, "{problem}");
    assert_eq!(problem["type"], "/problems/queue-required", "{problem}");
    let (status, _, _) = stack
        .call(M::GET, &format!("/api/events/{event}/queue"), &token, None)
        .await;
    assert_eq!(status, 404, "not in the queue yet");

    let (status, place) = join(&stack, &token, &event).await;
    assert_eq!(
        (status, place["position"].as_u64()),
        (StatusCode::CREATED, Some(1))
    );
    stack.start_admitter().await;
    admitted_reaches(&stack, &event, 1).await;
    let (status, held) = book(&stack, &token, &event, "hall:R0:1").await;
    assert_eq!(status, 201, "admitted users book: {held}");
    let (status, held) = book(&stack, &token, &event, "hall:R0:2").await;
    assert_eq!(
        status, 201,
        "as often as they like until the admission ends: {held}"
    );

    // Nobody is admitted while the admitter is down: three others wait behind nobody.
    for admitter in stack.admitters.drain(..) {
        admitter.kill().await;
    }
    let others: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    join_all(&stack, &event, &others).await;

    // The admission runs out (its end is moved rather than waiting the 10 minutes).
    sqlx::query(
        "UPDATE waiting_room_places SET admitted_until = now() - interval '1 second'
         WHERE event_id = $1 AND user_id = $2",
    )
    .bind(event.parse::<Uuid>().expect("uuid"))
    .bind(buyer)
    .execute(&stack.db.pool)
    .await
    .expect("expire");
    let (_, _, place) = stack
        .call(M::GET, &format!("/api/events/{event}/queue"), &token, None)
        .await;
    assert_eq!(place["status"], "expired", "{place}");
    let (status, problem) = book(&stack, &token, &event, "hall:R0:3").await;
    assert_eq!(status, 403, "after admitted_until: {problem}");
    assert_eq!(problem["type"], "/problems/queue-required");

    let (status, place) = join(&stack, &token, &event).await;
    assert_eq!(status, 201);
    assert_eq!(place["status"], "waiting", "{place}");
    assert_eq!(
        place["position"], 4,
        "rejoining goes behind the three: {place}"
    );
}

#[tokio::test]
async fn killed_and_doubled_admitters_admit_everyone_once_in_order() {
    let mut stack = Stack::start().await;
    let event = queued_show(&stack, 2_400).await; // forty a second: ~8 s for 300
    let users: Vec<Uuid> = (0..300).map(|_| Uuid::new_v4()).collect();
    let by_position = join_all(&stack, &event, &users).await;

    // Two at once: one admits, the other stands by.
    stack.start_admitter().await;
    stack.start_admitter().await;
    admitted_reaches(&stack, &event, 60).await;
    stack.admitters.remove(0).kill().await; // the active one, mid-run
    admitted_reaches(&stack, &event, 150).await; // the standby took over
    stack.admitters.remove(0).kill().await;
    stack.start_admitter().await; // and a fresh one finishes
    admitted_reaches(&stack, &event, 300).await;

    let log = admissions(&stack, &event).await;
    assert_admitted_once_in_order(&log, &by_position);
}

/// Every `queue_position` frame on `socket` until (and including) the admission.
async fn positions_until_admitted(socket: &mut Socket) -> Vec<Value> {
    let mut frames = Vec::new();
    loop {
        let frame = next_matching(socket, Duration::from_secs(60), |f| {
            f["type"] == "queue_position"
        })
        .await;
        let admitted = frame["status"] == "admitted";
        frames.push(frame);
        if admitted {
            return frames;
        }
    }
}

#[tokio::test]
async fn a_waiting_user_hears_their_positions_fall_and_their_admission_and_nobody_else_does() {
    let mut stack = Stack::start().await;
    let notifier = stack.start_notifier(&[("WS_QUEUE_POLL_MS", "300")]).await;
    let event = queued_show(&stack, 600).await; // ten a second
    let ahead: Vec<Uuid> = (0..30).map(|_| Uuid::new_v4()).collect();
    join_all(&stack, &event, &ahead).await;
    let (waiter, bystander) = (Uuid::new_v4(), Uuid::new_v4());
    let waiter_token = mint_token(waiter, &["customer"]);
    let (_, place) = join(&stack, &waiter_token, &event).await;
    assert_eq!(place["position"], 31);
    let mut waiter_socket = connect(&notifier, &waiter_token).await;
    let mut bystander_socket = connect(&notifier, &mint_token(bystander, &["customer"])).await;

    stack.start_admitter().await;
    let frames = positions_until_admitted(&mut waiter_socket).await;
    let waiting: Vec<u64> = frames
        .iter()
        .filter(|f| f["status"] == "waiting")
        .map(|f| f["position"].as_u64().expect("position"))
        .collect();
    assert!(
        waiting.len() >= 2,
        "several positions on the way: {frames:?}"
    );
    assert!(
        waiting.windows(2).all(|w| w[1] < w[0]),
        "positions only fall: {waiting:?}"
    );
    assert!(frames.iter().all(|f| f["event_id"] == event.as_str()));
    let admitted = frames.last().expect("admission");
    assert_eq!(admitted["position"], 0);
    assert!(admitted["admitted_until"].is_string(), "{admitted}");

    let overheard: Vec<Value> = frames_within(&mut bystander_socket, Duration::from_millis(700))
        .await
        .into_iter()
        .filter(|f| f["type"] == "queue_position")
        .collect();
    assert!(
        overheard.is_empty(),
        "another user's positions leaked: {overheard:?}"
    );
}
