//! Ticket transfer and PDF tickets on running processes: the recipient's new ticket checks in
//! and the old code is void, the per-seat cap, the event's start, unknown recipients and
//! other users' tickets, a transferred booking that can no longer be cancelled, and a ticket
//! PDF whose QR code decodes back to the ticket's code.

use std::time::Duration;

use plumbing::testkit::eventually;
use reqwest::Method as M;
use serde_json::{Value, json};

use crate::purchase::{booking_reaches, buyer, hold_and_pay, pay, published_show};
use crate::support::Stack;

/// `body` is a problem document of `status`.
fn assert_problem_body(body: &Value, status: u16) {
    for member in ["type", "title", "status", "detail"] {
        assert!(body.get(member).is_some(), "problem lacks {member}: {body}");
    }
    assert_eq!(body["status"], status, "{body}");
}

/// `token`'s tickets once the read model lists one with `ticket_id` (waiting with the
/// command's `X-Event-Position` when given).
async fn ticket_of(stack: &Stack, token: &str, ticket_id: &str, min: Option<&str>) -> Value {
    eventually(
        &format!("ticket {ticket_id} listed"),
        Duration::from_secs(30),
        || async {
            let mut request = stack.http.get(stack.url("/api/tickets")).bearer_auth(token);
            if let Some(min) = min {
                request = request.header("X-Min-Position", min);
            }
            let body: Value = request.send().await.ok()?.json().await.ok()?;
            body.as_array()?
                .iter()
                .find(|t| t["ticket_id"] == ticket_id)
                .cloned()
        },
    )
    .await
}

/// Transfers `ticket` to `email`; returns status, the position header and the body.
async fn transfer(
    stack: &Stack,
    token: &str,
    ticket: &str,
    email: &str,
) -> (reqwest::StatusCode, Option<String>, Value) {
    let (status, headers, body) = stack
        .call(
            M::POST,
            &format!("/api/tickets/{ticket}/transfer"),
            token,
            Some(json!({"email": email})),
        )
        .await;
    let position = headers
        .get("x-event-position")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, position, body)
}

async fn check_in(stack: &Stack, organizer: &str, event: &str, code: &str) -> (u16, Value) {
    let (status, _, body) = stack
        .call(
            M::POST,
            "/api/checkin",
            organizer,
            Some(json!({"event_id": event, "code": code})),
        )
        .await;
    (status.as_u16(), body)
}

/// Holds and pays one seat; returns the booking and its one ticket as listed.
async fn bought_ticket(stack: &Stack, token: &str, event: &str, seat: &str) -> (String, Value) {
    let (booking, read) = hold_and_pay(stack, token, event, &[seat], "tok_visa", "confirmed").await;
    let ticket_id = read["tickets"][0].as_str().expect("a ticket").to_owned();
    (
        booking.clone(),
        ticket_of(stack, token, &ticket_id, None).await,
    )
}

#[tokio::test]
async fn a_transferred_ticket_checks_in_with_the_new_code_and_the_old_code_is_void() {
    let stack = Stack::with_payments(&[("TICKET_MAX_TRANSFERS", "2")]).await;
    let organizer = stack.organizer("org@example.com").await;
    let event = published_show(&stack, &organizer).await;
    let ada = buyer(&stack, "ada@example.com").await;
    let grace = buyer(&stack, "grace@example.com").await;
    let alan = buyer(&stack, "alan@example.com").await;
    let (booking, old) = bought_ticket(&stack, &ada, &event, "hall:R0:1").await;
    let old_id = old["ticket_id"].as_str().expect("id").to_owned();
    let old_code = old["code"].as_str().expect("code").to_owned();

    // Refusals write nothing and leave the ticket valid.
    let (status, _, body) = transfer(&stack, &ada, &old_id, "nobody@example.com").await;
    assert_eq!(status, 422, "unknown recipient: {body}");
    assert_problem_body(&body, 422);
    let (status, _, _) = transfer(&stack, &ada, &old_id, "not an email").await;
    assert_eq!(status, 422, "malformed email");
    let (status, _, _) = transfer(&stack, &ada, &old_id, "ADA@example.com").await;
    assert_eq!(status, 422, "to its own holder");
    let (status, _, body) = transfer(&stack, &grace, &old_id, "alan@example.com").await;
    assert_eq!(status, 404, "another user's ticket: {body}");
    assert_problem_body(&body, 404);
    let unknown = uuid::Uuid::new_v4().to_string();
    let (status, _, _) = transfer(&stack, &ada, &unknown, "grace@example.com").await;
    assert_eq!(status, 404, "an unknown ticket");
    let (status, _, _) = stack
        .call(
            M::POST,
            &format!("/api/tickets/{old_id}/transfer"),
            &ada,
            Some(json!({"email": "grace@example.com", "note": "hi"})),
        )
        .await;
    assert_eq!(status, 400, "an unknown field");

    // Ada → Grace: the old ticket is void, Grace reads her new ticket right after the 202.
    let (status, position, body) = transfer(&stack, &ada, &old_id, "Grace@Example.com").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["ticket_id"], old_id.as_str());
    assert_eq!(body["status"], "void");
    let graces_id = body["new_ticket_id"].as_str().expect("new id").to_owned();
    assert_ne!(graces_id, old_id);
    let position = position.expect("X-Event-Position");
    // One read, no polling: the position makes the read model wait for the transfer.
    let reply = stack
        .http
        .get(stack.url("/api/tickets"))
        .bearer_auth(&grace)
        .header("X-Min-Position", &position)
        .send()
        .await
        .expect("tickets");
    assert_eq!(reply.status(), 200);
    assert!(reply.headers().get("x-consistency").is_none(), "not stale");
    let listed: Value = reply.json().await.expect("json");
    let graces = listed
        .as_array()
        .expect("list")
        .iter()
        .find(|t| t["ticket_id"] == graces_id.as_str())
        .cloned()
        .expect("the recipient's new ticket is listed once the position is applied");
    assert_eq!(graces["status"], "valid");
    assert_eq!(graces["seat_id"], "hall:R0:1");
    assert_eq!(graces["booking_id"], booking.as_str());
    let graces_code = graces["code"].as_str().expect("code").to_owned();
    assert_ne!(graces_code, old_code, "a new code");
    let adas = ticket_of(&stack, &ada, &old_id, Some(&position)).await;
    assert_eq!(adas["status"], "void");

    // The booking stays Ada's, and with a transferred ticket it can no longer be cancelled.
    let (status, _, body) = stack
        .call(
            M::POST,
            &format!("/api/bookings/{booking}/cancel"),
            &ada,
            None,
        )
        .await;
    assert_eq!(status, 409, "cancelling a transferred booking: {body}");
    let (status, _, _) = stack
        .call(M::GET, &format!("/api/bookings/{booking}"), &grace, None)
        .await;
    assert_eq!(status, 404, "the booking is not the recipient's");

    // The recipient transfers it on; the cap (2 per seat) then stops a third transfer.
    let (status, _, _) = transfer(&stack, &ada, &graces_id, "alan@example.com").await;
    assert_eq!(status, 404, "Ada no longer holds it");
    let (status, position, body) = transfer(&stack, &grace, &graces_id, "alan@example.com").await;
    assert_eq!(status, 202, "{body}");
    let alans_id = body["new_ticket_id"].as_str().expect("id").to_owned();
    let alans = ticket_of(&stack, &alan, &alans_id, position.as_deref()).await;
    let (status, _, body) = transfer(&stack, &alan, &alans_id, "ada@example.com").await;
    assert_eq!(status, 409, "the third transfer of the seat: {body}");
    assert_eq!(body["max_transfers"], 2);

    // At the door: both earlier codes are void, the last recipient's checks in once.
    for code in [&old_code, &graces_code] {
        let (status, body) = check_in(&stack, &organizer, &event, code).await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["ticket_status"], "void");
    }
    let alans_code = alans["code"].as_str().expect("code");
    let (status, body) = check_in(&stack, &organizer, &event, alans_code).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ticket_id"], alans_id.as_str());
    assert_eq!(body["seat_id"], "hall:R0:1");
    let (status, _) = check_in(&stack, &organizer, &event, alans_code).await;
    assert_eq!(status, 409, "a second scan");
}

#[tokio::test]
async fn a_ticket_is_not_transferred_once_its_event_has_started() {
    let stack = Stack::with_payments(&[]).await;
    let organizer = stack.organizer("org@example.com").await;
    let ada = buyer(&stack, "ada@example.com").await;
    buyer(&stack, "grace@example.com").await;
    // Everything else is set up first: the purchase must fit before the start.
    let starts_at = chrono::Utc::now() + chrono::Duration::seconds(20);
    let event = ga_event_starting(&stack, &organizer, starts_at).await;
    let (status, _, body) = stack
        .call(
            M::POST,
            "/api/bookings",
            &ada,
            Some(json!({"event_id": event, "general_admission": [{"section_id": "floor", "quantity": 1}]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let booking = body["booking_id"].as_str().expect("id").to_owned();
    pay(&stack, &ada, &booking, "tok_visa").await;
    let read = booking_reaches(&stack, &ada, &booking, "confirmed", Duration::from_secs(15)).await;
    let ticket = read["tickets"][0].as_str().expect("ticket").to_owned();
    ticket_of(&stack, &ada, &ticket, None).await;
    assert!(
        chrono::Utc::now() < starts_at,
        "the purchase finished before the start (else this test proves nothing)"
    );

    // Waiting for the clock, not for an effect: the rule is about the time itself.
    let until = (starts_at - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(until + Duration::from_millis(500)).await;
    let (status, _, body) = transfer(&stack, &ada, &ticket, "grace@example.com").await;
    assert_eq!(status, 409, "after starts_at: {body}");
    assert_problem_body(&body, 409);
}

/// A published event of one 10-place standing section `floor` starting at `starts_at`.
async fn ga_event_starting(
    stack: &Stack,
    organizer: &str,
    starts_at: chrono::DateTime<chrono::Utc>,
) -> String {
    let (status, _, body) = stack
        .call(
            M::POST,
            "/api/events",
            organizer,
            Some(json!({"name": "Soon", "venue": "Hall", "starts_at": starts_at.to_rfc3339()})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["event_id"].as_str().expect("id").to_owned();
    let layout = json!({"sections": [
        {"section_id": "floor", "name": "Floor", "kind": "general_admission", "capacity": 10}]});
    let tiers = json!({"tiers": [{"tier_id": "floor", "name": "Floor",
        "price": {"amount_minor": 1000, "currency": "EUR"}, "section_ids": ["floor"]}]});
    for (path, body) in [
        ("layout", Some(layout)),
        ("pricing", Some(tiers)),
        ("publish", None),
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

/// The first image XObject of a PDF as (width, height, 8-bit gray pixels).
fn qr_image(pdf: &lopdf::Document) -> (usize, usize, Vec<u8>) {
    pdf.objects
        .values()
        .find_map(|object| {
            let lopdf::Object::Stream(stream) = object else {
                return None;
            };
            let subtype = stream.dict.get(b"Subtype").and_then(lopdf::Object::as_name);
            if subtype.ok()? != b"Image" {
                return None;
            }
            let dim = |key: &[u8]| stream.dict.get(key).and_then(lopdf::Object::as_i64).ok();
            let (w, h) = (dim(b"Width")?, dim(b"Height")?);
            Some((w as usize, h as usize, stream.content.clone()))
        })
        .expect("the PDF has an image")
}

#[tokio::test]
async fn a_ticket_pdf_parses_and_its_qr_code_decodes_back_to_the_ticket_code() {
    let stack = Stack::with_payments(&[]).await;
    let organizer = stack.organizer("org@example.com").await;
    let event = published_show(&stack, &organizer).await;
    let ada = buyer(&stack, "ada@example.com").await;
    let grace = buyer(&stack, "grace@example.com").await;
    let (_, ticket) = bought_ticket(&stack, &ada, &event, "hall:R1:5").await;
    let ticket_id = ticket["ticket_id"].as_str().expect("id");
    let code = ticket["code"].as_str().expect("code");

    let reply = stack
        .http
        .get(stack.url(&format!("/api/tickets/{ticket_id}/pdf")))
        .bearer_auth(&ada)
        .send()
        .await
        .expect("pdf");
    assert_eq!(reply.status(), 200);
    assert_eq!(
        reply.headers()["content-type"].to_str().ok(),
        Some("application/pdf")
    );
    let bytes = reply.bytes().await.expect("body");
    let pdf = lopdf::Document::load_mem(&bytes).expect("a PDF that parses");
    let text = pdf.extract_text(&[1]).expect("text of page 1");
    for wanted in ["Gig", "Hall", "Seat hall:R1:5", "Holder: Test User"] {
        assert!(text.contains(wanted), "the PDF says {wanted:?}: {text}");
    }
    let (w, h, pixels) = qr_image(&pdf);
    assert_eq!(pixels.len(), w * h, "8-bit gray, one byte per pixel");
    // A few pixels per module, as a scanner would see the printed code.
    let scale = 4;
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w * scale, h * scale, |x, y| {
        pixels[(y / scale) * w + x / scale]
    });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code");
    let (_, decoded) = grids[0].decode().expect("the QR code decodes");
    assert_eq!(decoded, code);

    // Someone else's ticket, an unknown one and a malformed id.
    let (status, _, body) = stack
        .call(
            M::GET,
            &format!("/api/tickets/{ticket_id}/pdf"),
            &grace,
            None,
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let unknown = uuid::Uuid::new_v4();
    let (status, _, _) = stack
        .call(M::GET, &format!("/api/tickets/{unknown}/pdf"), &ada, None)
        .await;
    assert_eq!(status, 404);
    let (status, _, _) = stack
        .call(M::GET, "/api/tickets/not-a-uuid/pdf", &ada, None)
        .await;
    assert_eq!(status, 400);
}
