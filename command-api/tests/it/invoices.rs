//! Invoices end to end: 300 bookings of one organizer confirmed concurrently, with the
//! invoicing consumer killed mid-run, are numbered 1..300 without gap or repeat; a refund
//! gets the next number as a credit note; a replay of the read model renumbers nothing; the
//! PDF parses back and names its number; someone else's invoice is a 404.

use std::time::Duration;

use futures::StreamExt;
use plumbing::testkit::eventually;
use reqwest::Method as M;
use serde_json::json;
use uuid::Uuid;

use crate::purchase::publish_event;
use crate::support::{Stack, mint_token};

const BOOKINGS: usize = 300;

/// A published theatre (600 stalls seats, 200 balcony) priced in two tiers.
async fn theatre(stack: &Stack, organizer: &str) -> String {
    let tiers = json!({"tiers": [
        {"tier_id": "stalls", "name": "Stalls", "price": {"amount_minor": 4500, "currency": "EUR"}, "section_ids": ["stalls"]},
        {"tier_id": "balcony", "name": "Balcony", "price": {"amount_minor": 2500, "currency": "EUR"}, "section_ids": ["balcony"]}]});
    let layout = json!({"template_id": "theatre"});
    publish_event(stack, organizer, "Invoiced", layout, tiers, Some(json!({}))).await
}

/// (organizer number, invoice id) of every document of the organizer, by number.
async fn numbers(stack: &Stack, organizer_id: Uuid) -> Vec<(i64, Uuid, String)> {
    sqlx::query_as(
        "SELECT number, invoice_id, kind FROM invoice_view WHERE organizer_id = $1 ORDER BY number",
    )
    .bind(organizer_id)
    .fetch_all(&stack.db.pool)
    .await
    .expect("invoice_view")
}

#[tokio::test]
async fn concurrent_confirmations_are_numbered_without_gaps_through_a_crash_and_a_replay() {
    let mut stack = Stack::with_payments(&[]).await;
    let organizer = stack.organizer("invoicing-organizer@example.com").await;
    let (_, _, profile) = stack
        .call(M::GET, "/api/users/profile", &organizer, None)
        .await;
    let organizer_id: Uuid = profile["user_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let event = theatre(&stack, &organizer).await;

    // 300 buyers hold one seat each (every fifth in the balcony) and pay, 32 at a time.
    let mut buyers: Vec<(usize, String, String)> = futures::stream::iter(0..BOOKINGS)
        .map(|i| {
            let (stack, event) = (&stack, &event);
            async move {
                let token = mint_token(Uuid::new_v4(), &["customer"]);
                let seat = if i % 5 == 0 {
                    format!(
                        "balcony:{}:{}",
                        (b'A' + (i / 5 / 25) as u8) as char,
                        i / 5 % 25 + 1
                    )
                } else {
                    format!("stalls:{}:{}", (b'A' + (i / 30) as u8) as char, i % 30 + 1)
                };
                let (status, _, held) = stack
                    .call(
                        M::POST,
                        "/api/bookings",
                        &token,
                        Some(json!({"event_id": event, "seats": [seat]})),
                    )
                    .await;
                assert_eq!(status, 201, "hold {seat}: {held}");
                let booking = held["booking_id"].as_str().expect("id").to_owned();
                let (status, _, paid) = stack
                    .call(
                        M::POST,
                        &format!("/api/bookings/{booking}/pay"),
                        &token,
                        Some(json!({"payment_token": "tok_visa"})),
                    )
                    .await;
                assert_eq!(status, 202, "pay: {paid}");
                (i, token, booking)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    // Completion order is not submission order; buyer 0 holds a balcony seat.
    buyers.sort_by_key(|(i, _, _)| *i);

    // Kill the saga (and with it the invoicing consumer) while invoices are being issued.
    eventually("the first invoices", Duration::from_secs(120), || async {
        (numbers(&stack, organizer_id).await.len() >= 60).then_some(())
    })
    .await;
    stack.restart_saga().await;

    let issued = eventually("300 invoices", Duration::from_secs(240), || async {
        let issued = numbers(&stack, organizer_id).await;
        (issued.len() >= BOOKINGS).then_some(issued)
    })
    .await;
    let expected: Vec<i64> = (1..=BOOKINGS as i64).collect();
    assert_eq!(
        issued.iter().map(|(n, _, _)| *n).collect::<Vec<_>>(),
        expected,
        "numbers 1..300, no gap, no repeat"
    );
    assert!(issued.iter().all(|(_, _, kind)| kind == "invoice"));

    // The buyer sees their invoice with its lines; another buyer does not.
    let (_, token, booking) = &buyers[0];
    let (status, _, list) = stack.call(M::GET, "/api/invoices", token, None).await;
    assert_eq!(status, 200, "{list}");
    let summary = list.as_array().expect("list")[0].clone();
    assert_eq!(summary["booking_id"], booking.as_str());
    let invoice_id = summary["invoice_id"].as_str().expect("id").to_owned();
    let (status, _, document) = stack
        .call(M::GET, &format!("/api/invoices/{invoice_id}"), token, None)
        .await;
    assert_eq!(status, 200, "{document}");
    assert_eq!(document["lines"][0]["tier_id"], "balcony", "{document}");
    assert_eq!(document["total"]["amount_minor"], 2500);
    let stranger = mint_token(Uuid::new_v4(), &["customer"]);
    let (status, _, _) = stack
        .call(
            M::GET,
            &format!("/api/invoices/{invoice_id}"),
            &stranger,
            None,
        )
        .await;
    assert_eq!(
        status, 404,
        "someone else's invoice does not exist for them"
    );

    // The PDF parses back and carries the number.
    let pdf = stack
        .http
        .get(stack.url(&format!("/api/invoices/{invoice_id}/pdf")))
        .bearer_auth(token)
        .send()
        .await
        .expect("pdf");
    assert_eq!(pdf.status(), 200);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    let bytes = pdf.bytes().await.expect("bytes");
    let parsed = lopdf::Document::load_mem(&bytes).expect("a PDF that parses");
    let text = parsed.extract_text(&[1]).expect("text of page 1");
    let number = summary["number"].as_u64().expect("number");
    assert!(
        text.contains(&format!("Invoice No. {number}")),
        "the PDF names its number: {text}"
    );

    // A refund is credited with the next number.
    let (status, _, reply) = stack
        .call(
            M::POST,
            &format!("/api/bookings/{booking}/cancel"),
            token,
            None,
        )
        .await;
    assert_eq!(status, 202, "{reply}");
    let with_credit = eventually("the credit note", Duration::from_secs(120), || async {
        let issued = numbers(&stack, organizer_id).await;
        (issued.len() > BOOKINGS).then_some(issued)
    })
    .await;
    let last = with_credit.last().expect("credit note");
    assert_eq!(
        (last.0, last.2.as_str()),
        (BOOKINGS as i64 + 1, "credit_note")
    );

    // Rebuilding the read model from the events renumbers nothing.
    let output = tokio::process::Command::new(plumbing::testkit::binary("projections"))
        .args(["replay", "invoices"])
        .env("DATABASE_URL", &stack.db.url)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("replay");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(numbers(&stack, organizer_id).await, with_credit);
}
