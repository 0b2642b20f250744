//! The waiting list on running processes (command-api, relay, projections, saga, payment
//! simulator, notifier with an SMTP sink): a sold-out event takes three people on its list;
//! a cancellation offers the places to the first (a `waitlist_offer` frame and a mail), who
//! lets the offer expire; it passes to the second, who pays; the third still waits. Nobody
//! else can take offered places meanwhile, and a saga killed around the offer makes it once.

use std::time::Duration;

use plumbing::testkit::eventually;
use plumbing::testkit::smtp_sink::SmtpSink;
use reqwest::Method as M;
use serde_json::{Value, json};

use crate::purchase::{booking_reaches, buyer, hold, pay, publish_event};
use crate::realtime::{connect, next_matching};
use crate::support::Stack;

/// One seated row of two seats at 30.00 EUR.
async fn two_seat_event(stack: &Stack, organizer: &str) -> String {
    let layout = json!({"sections": [
        {"section_id": "hall", "name": "Hall", "kind": "seated", "rows": [{"row": "A", "seats": 2}]}]});
    let tiers = json!({"tiers": [
        {"tier_id": "seat", "name": "Seat", "price": {"amount_minor": 3000, "currency": "EUR"}, "section_ids": ["hall"]}]});
    publish_event(stack, organizer, "Sold out", layout, tiers, None).await
}

async fn join(stack: &Stack, token: &str, event: &str, quantity: u32) -> (u16, Value) {
    let (status, _, body) = stack
        .call(
            M::POST,
            &format!("/api/events/{event}/waitlist"),
            token,
            Some(json!({"quantity": quantity})),
        )
        .await;
    (status.as_u16(), body)
}

async fn entry(stack: &Stack, token: &str, event: &str) -> (u16, Value) {
    let (status, _, body) = stack
        .call(
            M::GET,
            &format!("/api/events/{event}/waitlist"),
            token,
            None,
        )
        .await;
    (status.as_u16(), body)
}

/// Polls `token`'s entry until it has `status`.
async fn entry_reaches(stack: &Stack, token: &str, event: &str, status: &str) -> Value {
    eventually(
        &format!("the waiting-list entry to become {status}"),
        Duration::from_secs(60),
        || async {
            let (code, body) = entry(stack, token, event).await;
            (code == 200 && body["status"] == status).then_some(body)
        },
    )
    .await
}

#[tokio::test]
async fn an_offer_passes_down_the_waiting_list_until_someone_pays() {
    // Offers hold for 9 s, so the first one can be watched expiring.
    let mut stack = Stack::with_payments(&[("WAITLIST_OFFER_MINUTES", "0.15")]).await;
    let sink = SmtpSink::start().await;
    let port = sink.port.to_string();
    let notifier = stack
        .start_notifier(&[("SMTP_HOST", "127.0.0.1"), ("SMTP_PORT", &port)])
        .await;
    let organizer = stack.organizer("waitlist-org@example.com").await;
    let event = two_seat_event(&stack, &organizer).await;

    let holder = buyer(&stack, "waitlist-holder@example.com").await;
    let early = buyer(&stack, "waitlist-early@example.com").await;
    let (status, body) = join(&stack, &early, &event, 1).await;
    assert_eq!(status, 409, "nobody waits while seats are free: {body}");

    let held = hold(&stack, &holder, &event, &["hall:A:1", "hall:A:2"]).await;
    let first = buyer(&stack, "waitlist-first@example.com").await;
    let second = buyer(&stack, "waitlist-second@example.com").await;
    let third = buyer(&stack, "waitlist-third@example.com").await;
    for (token, quantity, position) in [(&first, 2, 1), (&second, 2, 2), (&third, 1, 3)] {
        let (status, body) = join(&stack, token, &event, quantity).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["status"], "waiting");
        assert_eq!(body["position"], position, "{body}");
    }
    let (status, again) = join(&stack, &first, &event, 5).await;
    assert_eq!(status, 201, "joining again: {again}");
    assert_eq!(
        (again["position"].clone(), again["quantity"].clone()),
        (json!(1), json!(2)),
        "joining again keeps the place and the quantity"
    );

    // The holder cancels: the first person gets both seats as an offer.
    let mut socket = connect(&notifier, &first).await;
    let (status, _, body) = stack
        .call(
            M::POST,
            &format!("/api/bookings/{held}/cancel"),
            &holder,
            None,
        )
        .await;
    assert_eq!(status, 202, "cancel: {body}");
    // The saga dies (SIGKILL) around the offer it is about to make, and starts again: the
    // offer is made once all the same.
    stack.restart_saga().await;
    let frame = next_matching(&mut socket, Duration::from_secs(60), |f| {
        f["type"] == "waitlist_offer"
    })
    .await;
    assert_eq!(frame["event_id"], event.as_str(), "{frame}");
    let offer = frame["booking_id"].as_str().expect("booking id").to_owned();
    assert!(frame["expires_at"].is_string(), "{frame}");
    let offered = entry_reaches(&stack, &first, &event, "offered").await;
    assert_eq!(offered["booking_id"], offer.as_str());
    assert_eq!(offered["position"], 0);
    let booking = booking_reaches(&stack, &first, &offer, "held", Duration::from_secs(30)).await;
    assert_eq!(booking["offer"], true, "{booking}");
    assert_eq!(booking["seats"], json!(["hall:A:1", "hall:A:2"]));
    assert_eq!(booking["total"]["amount_minor"], 6000);
    let instant = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a timestamp")).expect("RFC 3339")
    };
    // The read model keeps microseconds.
    let apart = instant(&booking["hold_expires_at"]) - instant(&frame["expires_at"]);
    assert!(
        apart.num_microseconds().is_some_and(|us| us.abs() < 1),
        "{booking} {frame}"
    );
    let mail = eventually("the offer's mail", Duration::from_secs(60), || async {
        let offer_id = offer.parse().ok()?;
        sink.mails_of(offer_id)
            .into_iter()
            .find(|m| m.message_id().contains(".offered@"))
    })
    .await;
    let to = mail.header("to").unwrap_or_default();
    assert!(to.ends_with("<waitlist-first@example.com>"), "{to}");
    assert!(mail.raw.contains("waiting list"), "{}", mail.raw);
    assert_eq!(entry(&stack, &second, &event).await.1["position"], 1);

    // Offered places are theirs alone meanwhile.
    let outsider = buyer(&stack, "waitlist-outsider@example.com").await;
    let (status, _, body) = stack
        .call(
            M::POST,
            "/api/bookings",
            &outsider,
            Some(json!({"event_id": event, "best_available": {"quantity": 1}})),
        )
        .await;
    assert_eq!(status, 409, "an offered seat is not for sale: {body}");

    // The first lets it expire: the second gets it and pays.
    entry_reaches(&stack, &first, &event, "expired").await;
    let second_offer = entry_reaches(&stack, &second, &event, "offered").await;
    let second_booking = second_offer["booking_id"]
        .as_str()
        .expect("booking id")
        .to_owned();
    assert_ne!(second_booking, offer);
    pay(&stack, &second, &second_booking, "tok_visa").await;
    let paid = booking_reaches(
        &stack,
        &second,
        &second_booking,
        "confirmed",
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(paid["offer"], true);
    assert_eq!(paid["tickets"].as_array().map(Vec::len), Some(2));

    // The third still waits, now first in line; the paid offer stays `offered`.
    let third_entry = entry(&stack, &third, &event).await.1;
    assert_eq!(
        (
            third_entry["status"].clone(),
            third_entry["position"].clone()
        ),
        (json!("waiting"), json!(1)),
        "{third_entry}"
    );
    let settled = entry(&stack, &second, &event).await.1;
    assert_eq!(settled["status"], "offered");
    assert_eq!(settled["booking_id"], second_booking.as_str());

    let (_, _, mine) = stack.call(M::GET, "/api/bookings", &first, None).await;
    assert_eq!(
        mine["items"].as_array().map(Vec::len),
        Some(1),
        "one offer, however often the saga ran: {mine}"
    );

    // Whoever let an offer lapse may join again, at the end.
    let (status, rejoined) = join(&stack, &first, &event, 2).await;
    assert_eq!(status, 201, "{rejoined}");
    assert_eq!(rejoined["position"], 2, "{rejoined}");

    // The organizer's figures count the list from the write side; the paid offer is settled
    // as accepted once the saga hears of the payment.
    let want = json!({"waiting": 2, "offered": 0, "accepted": 1, "lapsed": 0});
    eventually(
        "the paid offer counted as accepted",
        Duration::from_secs(30),
        || async {
            let (status, _, sales) = stack
                .call(
                    M::GET,
                    &format!("/api/events/{event}/sales"),
                    &organizer,
                    None,
                )
                .await;
            (status == 200 && sales["waitlist"] == want).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn the_waiting_list_refuses_bad_input_and_strangers() {
    let stack = Stack::start().await;
    let organizer = stack.organizer("waitlist-rules@example.com").await;
    let event = two_seat_event(&stack, &organizer).await;
    let person = buyer(&stack, "waitlist-rules-buyer@example.com").await;

    for quantity in [json!(0), json!(11), json!("two"), json!(-1)] {
        let (status, _, body) = stack
            .call(
                M::POST,
                &format!("/api/events/{event}/waitlist"),
                &person,
                Some(json!({"quantity": quantity})),
            )
            .await;
        assert!(
            status == 400 || status == 422,
            "quantity {quantity}: {status} {body}"
        );
        assert!(body["type"].is_string(), "a problem document: {body}");
    }
    let unknown = uuid::Uuid::new_v4();
    let (status, body) = join(&stack, &person, &unknown.to_string(), 1).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = join(&stack, &person, &event, 1).await;
    assert_eq!(status, 409, "places are free: {body}");
    assert_eq!(entry(&stack, &person, &event).await.0, 404);
    let (status, _, _) = stack
        .call(
            M::DELETE,
            &format!("/api/events/{event}/waitlist"),
            &person,
            None,
        )
        .await;
    assert_eq!(status, 404, "leaving a list one is not on");
    let anonymous = stack
        .http
        .post(stack.url(&format!("/api/events/{event}/waitlist")))
        .json(&json!({"quantity": 1}))
        .send()
        .await
        .expect("request");
    assert_eq!(anonymous.status(), 401);

    // Sold out: join, leave, and the entry is gone.
    hold(&stack, &person, &event, &["hall:A:1", "hall:A:2"]).await;
    let other = buyer(&stack, "waitlist-rules-other@example.com").await;
    let (status, body) = join(&stack, &other, &event, 2).await;
    assert_eq!(status, 201, "{body}");
    let (status, _, _) = stack
        .call(
            M::DELETE,
            &format!("/api/events/{event}/waitlist"),
            &other,
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(entry(&stack, &other, &event).await.0, 404);
}
