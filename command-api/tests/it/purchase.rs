//! The whole purchase end to end, on running processes: holds, payment through the
//! simulator's signed webhooks, the saga's confirmations, cancellations, expiries, refunds,
//! tickets and check-in.

use std::time::Duration;

use plumbing::testkit::{self, eventually};
use reqwest::Method as M;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{PASSWORD, Stack};

pub const SECTION_ROWS: u32 = 10;

/// Publishes a show with one seated section `hall` (10 rows of 10) and a 50-place GA `pit`.
pub async fn published_show(stack: &Stack, organizer: &str) -> String {
    published_show_with(stack, organizer, None).await
}

/// `published_show` with a publish body (sales window, waiting room).
pub async fn published_show_with(stack: &Stack, organizer: &str, publish: Option<Value>) -> String {
    let rows: Vec<Value> = (0..SECTION_ROWS)
        .map(|r| json!({"row": format!("R{r}"), "seats": 10}))
        .collect();
    let layout = json!({"sections": [
        {"section_id": "hall", "name": "Hall", "kind": "seated", "rows": rows},
        {"section_id": "pit", "name": "Pit", "kind": "general_admission", "capacity": 50}]});
    let tiers = json!({"tiers": [
        {"tier_id": "seat", "name": "Seat", "price": {"amount_minor": 3000, "currency": "EUR"}, "section_ids": ["hall"]},
        {"tier_id": "pit", "name": "Pit", "price": {"amount_minor": 2000, "currency": "EUR"}, "section_ids": ["pit"]}]});
    publish_event(stack, organizer, "Gig", layout, tiers, publish).await
}

/// Creates an event starting in three days, lays it out, prices it and publishes it;
/// returns its id.
pub async fn publish_event(
    stack: &Stack,
    organizer: &str,
    name: &str,
    layout: Value,
    tiers: Value,
    publish: Option<Value>,
) -> String {
    let starts = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    let (status, _, body) = stack
        .call(
            M::POST,
            "/api/events",
            organizer,
            Some(json!({"name": name, "venue": "Hall", "starts_at": starts})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["event_id"].as_str().expect("id").to_owned();
    for (path, body) in [
        ("layout", Some(layout)),
        ("pricing", Some(tiers)),
        ("publish", publish),
    ] {
        let (status, _, reply) = stack
            .call(
                M::POST,
                &format!("/api/events/{id}/{path}"),
                organizer,
                body,
            )
            .await;
        assert_eq!(status, 200, "{path}: {reply}");
    }
    id
}

pub async fn buyer(stack: &Stack, email: &str) -> String {
    assert_eq!(stack.register(email).await.status(), 201);
    stack.login(email, PASSWORD).await
}

pub async fn hold(stack: &Stack, token: &str, event: &str, seats: &[&str]) -> String {
    let (status, _, body) = stack
        .call(
            M::POST,
            "/api/bookings",
            token,
            Some(json!({"event_id": event, "seats": seats})),
        )
        .await;
    assert_eq!(status, 201, "hold {seats:?}: {body}");
    body["booking_id"].as_str().expect("id").to_owned()
}

pub async fn pay(stack: &Stack, token: &str, booking: &str, payment_token: &str) {
    let (status, _, body) = stack
        .call(
            M::POST,
            &format!("/api/bookings/{booking}/pay"),
            token,
            Some(json!({"payment_token": payment_token})),
        )
        .await;
    assert_eq!(status, 202, "pay: {body}");
    assert_eq!(body["status"], "payment_pending");
}

/// Holds `seats`, pays with `payment_token` and waits (30 s) until the booking is `want`;
/// returns its id and the booking as read.
pub async fn hold_and_pay(
    stack: &Stack,
    token: &str,
    event: &str,
    seats: &[&str],
    payment_token: &str,
    want: &str,
) -> (String, Value) {
    let booking = hold(stack, token, event, seats).await;
    pay(stack, token, &booking, payment_token).await;
    let read = booking_reaches(stack, token, &booking, want, Duration::from_secs(30)).await;
    (booking, read)
}

/// Polls the booking (read model) until its status is `want`.
pub async fn booking_reaches(
    stack: &Stack,
    token: &str,
    booking: &str,
    want: &str,
    timeout: Duration,
) -> Value {
    eventually(
        &format!("booking {booking} to become {want}"),
        timeout,
        || async {
            let (status, _, body) = stack
                .call(M::GET, &format!("/api/bookings/{booking}"), token, None)
                .await;
            (status == 200 && body["status"] == want).then_some(body)
        },
    )
    .await
}

async fn seat_status(stack: &Stack, event: &str, seat: &str) -> String {
    let body: Value = stack
        .http
        .get(stack.url(&format!("/api/events/{event}/availability?section_id=hall")))
        .send()
        .await
        .expect("availability")
        .json()
        .await
        .expect("json");
    body["sections"][0]["seats"]
        .as_array()
        .expect("seats")
        .iter()
        .find(|s| s["seat_id"] == seat)
        .map(|s| s["status"].as_str().unwrap_or_default().to_owned())
        .expect("seat listed")
}

async fn seat_becomes(stack: &Stack, event: &str, seat: &str, want: &str) {
    eventually(
        &format!("{seat} to be {want}"),
        Duration::from_secs(30),
        || async { (seat_status(stack, event, seat).await == want).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn a_visa_payment_confirms_issues_tickets_and_checks_in_once() {
    let stack = Stack::with_payments(&[]).await;
    let organizer = stack.organizer("org@example.com").await;
    let event = published_show(&stack, &organizer).await;
    let other_event = published_show(&stack, &organizer).await;
    let token = buyer(&stack, "visa@example.com").await;
    let booking = hold(&stack, &token, &event, &["hall:R0:1", "hall:R0:2"]).await;

    let paid_at = std::time::Instant::now();
    pay(&stack, &token, &booking, "tok_visa").await;
    let confirmed = booking_reaches(
        &stack,
        &token,
        &booking,
        "confirmed",
        Duration::from_secs(30),
    )
    .await;
    eprintln!(
        "PURCHASE: pay → confirmed (read model) in {:?}",
        paid_at.elapsed()
    );
    assert_eq!(confirmed["tickets"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        confirmed["total"],
        json!({"amount_minor": 6000, "currency": "EUR"})
    );
    seat_becomes(&stack, &event, "hall:R0:1", "sold").await;

    let tickets = eventually("tickets listed", Duration::from_secs(30), || async {
        let (_, _, body) = stack.call(M::GET, "/api/tickets", &token, None).await;
        (body.as_array().map(Vec::len) == Some(2)).then_some(body)
    })
    .await;
    let ticket = &tickets[0];
    assert_eq!(ticket["status"], "valid");
    assert_eq!(ticket["seat_id"], "hall:R0:1");
    let code = ticket["code"].as_str().expect("code").to_owned();

    // Paying again is refused: the booking is no longer held.
    let (status, _, _) = stack
        .call(
            M::POST,
            &format!("/api/bookings/{booking}/pay"),
            &token,
            Some(json!({"payment_token": "tok_visa"})),
        )
        .await;
    assert_eq!(status, 409);

    // The buyer cannot check in; the organizer can, once.
    let scan = json!({"event_id": event, "code": code});
    let (status, _, _) = stack
        .call(M::POST, "/api/checkin", &token, Some(scan.clone()))
        .await;
    assert_eq!(status, 403);
    let (status, _, body) = stack
        .call(M::POST, "/api/checkin", &organizer, Some(scan.clone()))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["seat_id"], "hall:R0:1");
    let first = body["checked_in_at"].clone();
    let (status, _, body) = stack
        .call(M::POST, "/api/checkin", &organizer, Some(scan))
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["checked_in_at"], first);
    let mut forged = code.clone().into_bytes();
    forged[30] = if forged[30] == b'A' { b'B' } else { b'A' };
    let (status, _, _) = stack
        .call(
            M::POST,
            "/api/checkin",
            &organizer,
            Some(json!({"event_id": event, "code": String::from_utf8(forged).expect("ascii")})),
        )
        .await;
    assert_eq!(status, 422);
    let (status, _, _) = stack
        .call(
            M::POST,
            "/api/checkin",
            &organizer,
            Some(json!({"event_id": other_event, "code": ticket["code"]})),
        )
        .await;
    assert_eq!(status, 422, "a ticket of another event");

    // After a check-in the booking cannot be cancelled.
    let (status, _, _) = stack
        .call(
            M::POST,
            &format!("/api/bookings/{booking}/cancel"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, 409);
    let ledger = stack.ledger().await;
    let captures: Vec<&Value> = ledger["charges"]
        .as_array()
        .expect("charges")
        .iter()
        .filter(|c| c["booking_id"] == json!(booking))
        .collect();
    assert_eq!(captures.len(), 1);
    assert_eq!(captures[0]["status"], "succeeded");
}

/// Events stored for an event's sections and for every booking.
async fn purchase_events(stack: &Stack, event: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM events
          WHERE aggregate_type = 'booking' OR aggregate_id LIKE $1 || ':%'",
    )
    .bind(event)
    .fetch_one(&stack.db.pool)
    .await
    .expect("count events")
}

#[tokio::test]
async fn a_booking_refused_with_409_writes_no_event() {
    let stack = Stack::start().await;
    let organizer = stack.organizer("org409@example.com").await;
    let event = published_show(&stack, &organizer).await;
    let first = buyer(&stack, "first409@example.com").await;
    let second = buyer(&stack, "second409@example.com").await;
    hold(&stack, &first, &event, &["hall:R0:2"]).await;
    let before = purchase_events(&stack, &event).await;

    // Free seats in the hall, places in the pit, and one taken seat: all or nothing.
    let (status, _, body) = stack
        .call(
            M::POST,
            "/api/bookings",
            &second,
            Some(
                json!({"event_id": event, "seats": ["hall:R0:1", "hall:R0:2", "hall:R0:3"],
                        "general_admission": [{"section_id": "pit", "quantity": 2}]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["unavailable"], json!(["hall:R0:2"]), "{body}");
    assert_eq!(
        purchase_events(&stack, &event).await,
        before,
        "a refused booking stored no hold, no booking, nothing"
    );
    // The free seats were never held: the same buyer gets them at once.
    hold(&stack, &second, &event, &["hall:R0:1", "hall:R0:3"]).await;
}

#[tokio::test]
async fn declined_cancelled_and_refunded_bookings_free_their_seats() {
    let stack = Stack::with_payments(&[]).await;
    let organizer = stack.organizer("org@example.com").await;
    let event = published_show(&stack, &organizer).await;
    let token = buyer(&stack, "mixed@example.com").await;

    let (_, body) = hold_and_pay(
        &stack,
        &token,
        &event,
        &["hall:R1:1"],
        "tok_decline",
        "cancelled",
    )
    .await;
    assert!(
        body["failure_reason"]
            .as_str()
            .is_some_and(|r| r.contains("card_declined")),
        "{body}"
    );
    seat_becomes(&stack, &event, "hall:R1:1", "available").await;
    let again = hold(&stack, &token, &event, &["hall:R1:1"]).await;

    // Held, then cancelled by the buyer.
    let (status, _, body) = stack
        .call(
            M::POST,
            &format!("/api/bookings/{again}/cancel"),
            &token,
            None,
        )
        .await;
    assert_eq!(
        (status.as_u16(), body["status"].clone()),
        (202, json!("cancelled"))
    );
    seat_becomes(&stack, &event, "hall:R1:1", "available").await;
    let (status, _, _) = stack
        .call(
            M::POST,
            &format!("/api/bookings/{again}/cancel"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, 409, "a final booking cannot be cancelled again");

    // Confirmed, then cancelled: refunded, tickets void, seat bookable.
    let (bought, _) = hold_and_pay(
        &stack,
        &token,
        &event,
        &["hall:R1:2"],
        "tok_visa",
        "confirmed",
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
    assert_eq!(
        (status.as_u16(), body["status"].clone()),
        (202, json!("refund_pending"))
    );
    booking_reaches(&stack, &token, &bought, "refunded", Duration::from_secs(30)).await;
    let tickets = eventually("tickets void", Duration::from_secs(30), || async {
        let (_, _, body) = stack.call(M::GET, "/api/tickets", &token, None).await;
        let all_void = body
            .as_array()
            .is_some_and(|t| !t.is_empty() && t.iter().all(|t| t["status"] == "void"));
        all_void.then_some(body)
    })
    .await;
    assert_eq!(tickets.as_array().map(Vec::len), Some(1));
    seat_becomes(&stack, &event, "hall:R1:2", "available").await;
    let ledger = stack.ledger().await;
    let charge = ledger["charges"]
        .as_array()
        .expect("charges")
        .iter()
        .find(|c| c["booking_id"] == json!(bought))
        .cloned()
        .expect("charged");
    assert_eq!(charge["refunded"], true);

    // A booking across two sections where the second is short: 409, the first is free again.
    let (status, _, body) = stack
        .call(M::POST, "/api/bookings", &token, Some(json!({"event_id": event, "seats": ["hall:R2:1"], "general_admission": [{"section_id": "pit", "quantity": 11}]})))
        .await;
    assert_eq!(status, 422, "11 places is over the limit of 10: {body}");
    let pit_filler = buyer(&stack, "filler@example.com").await;
    for _ in 0..5 {
        let (status, _, _) = stack
            .call(M::POST, "/api/bookings", &pit_filler, Some(json!({"event_id": event, "general_admission": [{"section_id": "pit", "quantity": 10}]})))
            .await;
        assert_eq!(status, 201);
    }
    let (status, _, body) = stack
        .call(M::POST, "/api/bookings", &token, Some(json!({"event_id": event, "seats": ["hall:R2:1"], "general_admission": [{"section_id": "pit", "quantity": 1}]})))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["unavailable_sections"],
        json!([{"section_id": "pit", "available": 0}])
    );
    hold(&stack, &token, &event, &["hall:R2:1"]).await;
}

#[tokio::test]
async fn unanswered_payments_and_unpaid_holds_end_at_their_deadlines() {
    let stack =
        Stack::with_payments(&[("HOLD_TTL_SECONDS", "3"), ("PAYMENT_TIMEOUT_SECONDS", "3")]).await;
    let organizer = stack.organizer("org@example.com").await;
    let event = published_show(&stack, &organizer).await;
    let token = buyer(&stack, "slow@example.com").await;

    let unpaid = hold(&stack, &token, &event, &["hall:R3:1"]).await;
    let timeout = hold(&stack, &token, &event, &["hall:R3:2"]).await;
    pay(&stack, &token, &timeout, "tok_timeout").await;

    let expired =
        booking_reaches(&stack, &token, &unpaid, "expired", Duration::from_secs(30)).await;
    assert!(expired["failure_reason"].is_string());
    let timed_out = booking_reaches(
        &stack,
        &token,
        &timeout,
        "cancelled",
        Duration::from_secs(30),
    )
    .await;
    assert!(
        timed_out["failure_reason"]
            .as_str()
            .is_some_and(|r| r.contains("did not answer")),
        "{timed_out}"
    );
    seat_becomes(&stack, &event, "hall:R3:1", "available").await;
    seat_becomes(&stack, &event, "hall:R3:2", "available").await;
    // Paying an expired booking is refused.
    let (status, _, _) = stack
        .call(
            M::POST,
            &format!("/api/bookings/{unpaid}/pay"),
            &token,
            Some(json!({"payment_token": "tok_visa"})),
        )
        .await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn cancelling_an_event_ends_every_booking_and_refunds_the_paid_ones() {
    let stack = Stack::with_payments(&[]).await;
    let organizer = stack.organizer("org@example.com").await;
    let event = published_show(&stack, &organizer).await;
    let token = buyer(&stack, "fan@example.com").await;
    let (paid, _) = hold_and_pay(
        &stack,
        &token,
        &event,
        &["hall:R4:1"],
        "tok_visa",
        "confirmed",
    )
    .await;
    let held = hold(&stack, &token, &event, &["hall:R4:2"]).await;

    let (status, _, body) = stack
        .call(
            M::POST,
            &format!("/api/events/{event}/cancel"),
            &organizer,
            None,
        )
        .await;
    assert_eq!(
        (status.as_u16(), body["status"].clone()),
        (202, json!("cancelled"))
    );
    booking_reaches(&stack, &token, &paid, "refunded", Duration::from_secs(30)).await;
    let cancelled =
        booking_reaches(&stack, &token, &held, "cancelled", Duration::from_secs(30)).await;
    assert!(
        cancelled["failure_reason"]
            .as_str()
            .is_some_and(|r| r.contains("event was cancelled"))
    );
    let ledger = stack.ledger().await;
    let charge = ledger["charges"]
        .as_array()
        .expect("charges")
        .iter()
        .find(|c| c["booking_id"] == json!(paid))
        .cloned()
        .expect("charged");
    assert_eq!(charge["refunded"], true);
    let (status, _, _) = stack
        .call(
            M::POST,
            "/api/bookings",
            &token,
            Some(json!({"event_id": event, "seats": ["hall:R4:3"]})),
        )
        .await;
    assert_eq!(status, 422, "a cancelled event is not on sale");
}

#[tokio::test]
async fn other_users_bookings_and_bad_webhooks_are_refused() {
    let stack = Stack::with_payments(&[]).await;
    let organizer = stack.organizer("org@example.com").await;
    let event = published_show(&stack, &organizer).await;
    let owner = buyer(&stack, "owner@example.com").await;
    let intruder = buyer(&stack, "intruder@example.com").await;
    let booking = hold(&stack, &owner, &event, &["hall:R5:1"]).await;

    let (status, _, _) = stack
        .call(M::GET, &format!("/api/bookings/{booking}"), &intruder, None)
        .await;
    assert_eq!(status, 404);
    let (status, _, _) = stack
        .call(
            M::POST,
            &format!("/api/bookings/{booking}/pay"),
            &intruder,
            Some(json!({"payment_token": "tok_visa"})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _, _) = stack
        .call(
            M::POST,
            &format!("/api/bookings/{booking}/cancel"),
            &intruder,
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (_, _, list) = stack.call(M::GET, "/api/bookings", &intruder, None).await;
    assert_eq!(list["items"], json!([]));

    pay(&stack, &owner, &booking, "tok_timeout").await;
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&stack.db.pool)
        .await
        .expect("count");
    let payment_id: String = eventually("payment recorded", Duration::from_secs(30), || async {
        sqlx::query_scalar::<_, String>(
            "SELECT aggregate_id FROM events WHERE aggregate_type = 'payment' LIMIT 1",
        )
        .fetch_optional(&stack.db.pool)
        .await
        .ok()
        .flatten()
    })
    .await;
    let before_payment_events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&stack.db.pool)
        .await
        .expect("count");
    assert!(before_payment_events >= before);
    let body =
        json!({"notification_id": "forged-1", "payment_id": payment_id, "booking_id": booking,
        "type": "payment.succeeded", "amount": {"amount_minor": 3000, "currency": "EUR"},
        "occurred_at": chrono::Utc::now()})
        .to_string();
    let now = chrono::Utc::now().timestamp();
    let cases = [
        ("missing", None),
        (
            "wrong secret",
            Some(schemas::webhook::sign(
                b"not-the-secret-at-all",
                now,
                body.as_bytes(),
            )),
        ),
        (
            "stale",
            Some(schemas::webhook::sign(
                testkit::webhook_secret().as_bytes(),
                now - 600,
                body.as_bytes(),
            )),
        ),
        ("garbage", Some("t=1,v1=nothex".to_owned())),
    ];
    for (what, signature) in cases {
        let mut request = stack
            .http
            .post(stack.url("/api/payments/webhook"))
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(sig) = signature {
            request = request.header("x-signature", sig);
        }
        let reply = request.send().await.expect("webhook");
        assert_eq!(reply.status(), StatusCode::UNAUTHORIZED, "{what}");
    }
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&stack.db.pool)
        .await
        .expect("count");
    assert_eq!(
        after, before_payment_events,
        "refused webhooks wrote events"
    );
    let view = booking_reaches(
        &stack,
        &owner,
        &booking,
        "payment_pending",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(view["status"], "payment_pending");

    // A correctly signed notification is applied once; its redelivery answers 200 with no effect.
    let signed = schemas::webhook::sign(testkit::webhook_secret().as_bytes(), now, body.as_bytes());
    for _ in 0..2 {
        let reply = stack
            .http
            .post(stack.url("/api/payments/webhook"))
            .header("content-type", "application/json")
            .header("x-signature", &signed)
            .body(body.clone())
            .send()
            .await
            .expect("webhook");
        assert_eq!(reply.status(), StatusCode::OK);
    }
    let succeeded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'PaymentSucceeded'")
            .fetch_one(&stack.db.pool)
            .await
            .expect("count");
    assert_eq!(succeeded, 1);
    booking_reaches(
        &stack,
        &owner,
        &booking,
        "confirmed",
        Duration::from_secs(30),
    )
    .await;
}

#[tokio::test]
async fn the_same_idempotency_key_books_once_even_concurrently() {
    let stack = Stack::with_payments(&[]).await;
    let organizer = stack.organizer("org@example.com").await;
    let event = published_show(&stack, &organizer).await;
    let token = buyer(&stack, "idem@example.com").await;
    let send = || {
        stack
            .http
            .post(stack.url("/api/bookings"))
            .bearer_auth(&token)
            .header("idempotency-key", "book-once")
            .json(&json!({"event_id": event, "seats": ["hall:R6:1", "hall:R6:2"]}))
            .send()
    };
    let concurrent = futures::future::join_all((0..8).map(|_| send())).await;
    let statuses: Vec<u16> = concurrent
        .iter()
        .map(|r| r.as_ref().expect("reply").status().as_u16())
        .collect();
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    assert!(statuses.contains(&201));
    let sequential = send().await.expect("replay");
    assert_eq!(sequential.status(), 201);
    assert_eq!(
        sequential
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    let placed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'BookingPlaced'")
            .fetch_one(&stack.db.pool)
            .await
            .expect("count");
    assert_eq!(placed, 1, "one key, one booking");
}
