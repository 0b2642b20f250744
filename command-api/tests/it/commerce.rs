//! Commerce on running processes: vouchers and per-customer limits are consistency
//! boundaries like seats — racing bookings never take more uses or places than allowed, and
//! a booking that ends without a sale (cancelled, expired) gives back what it took.

use std::time::Duration;

use futures::future::join_all;
use plumbing::testkit::eventually;
use reqwest::Method as M;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::purchase::{booking_reaches, pay, publish_event};
use crate::support::{Stack, mint_token};

/// A GA `floor` of 1,000 places at 20.00 EUR and a seated `stalls` row at 50.00 EUR.
async fn floor_event(stack: &Stack, organizer: &str, publish: Option<Value>) -> String {
    let layout = json!({"sections": [
        {"section_id": "floor", "name": "Floor", "kind": "general_admission", "capacity": 1000},
        {"section_id": "stalls", "name": "Stalls", "kind": "seated", "rows": [{"row": "A", "seats": 20}]}]});
    let tiers = json!({"tiers": [
        {"tier_id": "ga", "name": "Floor", "price": {"amount_minor": 2000, "currency": "EUR"}, "section_ids": ["floor"]},
        {"tier_id": "seat", "name": "Stalls", "price": {"amount_minor": 5000, "currency": "EUR"}, "section_ids": ["stalls"]}]});
    publish_event(stack, organizer, "Commerce", layout, tiers, publish).await
}

async fn create_voucher(stack: &Stack, organizer: &str, event: &str, body: Value) -> Value {
    let (status, _, reply) = stack
        .call(
            M::POST,
            &format!("/api/events/{event}/vouchers"),
            organizer,
            Some(body),
        )
        .await;
    assert_eq!(status, 201, "create voucher: {reply}");
    reply
}

async fn voucher_uses(stack: &Stack, organizer: &str, event: &str, code: &str) -> u64 {
    let (status, _, list) = stack
        .call(
            M::GET,
            &format!("/api/events/{event}/vouchers"),
            organizer,
            None,
        )
        .await;
    assert_eq!(status, 200, "{list}");
    list.as_array()
        .and_then(|l| l.iter().find(|v| v["code"] == code))
        .and_then(|v| v["uses"].as_u64())
        .unwrap_or_else(|| panic!("no voucher {code} in {list}"))
}

/// Books `quantity` floor places for `token` (on command-api instance `api`), with a voucher.
async fn book_floor(
    stack: &Stack,
    api: usize,
    token: &str,
    event: &str,
    quantity: u32,
    voucher: Option<&str>,
) -> (u16, Value) {
    let mut body = json!({"event_id": event, "general_admission": [{"section_id": "floor", "quantity": quantity}]});
    if let Some(code) = voucher {
        body["voucher_code"] = json!(code);
    }
    let reply = stack
        .http
        .post(stack.url_on(api, "/api/bookings"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("book");
    let reply = crate::contract::checked("POST", "/api/bookings", reply).await;
    let status = reply.status().as_u16();
    (status, reply.json().await.unwrap_or(Value::Null))
}

fn problem_type(body: &Value) -> &str {
    body["type"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_voucher_races_to_exactly_its_max_uses_and_cancelled_bookings_give_uses_back() {
    let stack = Stack::start_with(2).await;
    let organizer = stack.organizer("voucher-org@example.com").await;
    let event = floor_event(&stack, &organizer, None).await;
    let created = create_voucher(
        &stack,
        &organizer,
        &event,
        json!({"code": "Race-50", "discount": {"percent": 15}, "max_uses": 50, "tier_ids": ["ga"]}),
    )
    .await;
    assert_eq!(created["uses"], 0);
    assert_eq!(created["tier_ids"], json!(["ga"]));

    // 200 buyers race over two instances for 50 uses (codes match in any case).
    let tokens: Vec<String> = (0..200)
        .map(|_| mint_token(Uuid::new_v4(), &["customer"]))
        .collect();
    let answers = join_all(tokens.iter().enumerate().map(|(i, token)| {
        let (stack, event) = (&stack, &event);
        async move { book_floor(stack, i % 2, token, event, 1, Some("race-50")).await }
    }))
    .await;
    let accepted: Vec<(usize, &Value)> = answers
        .iter()
        .enumerate()
        .filter(|(_, (status, _))| *status == 201)
        .map(|(i, (_, body))| (i, body))
        .collect();
    assert_eq!(
        accepted.len(),
        50,
        "exactly max_uses bookings get the voucher"
    );
    for (status, body) in answers.iter().filter(|(s, _)| *s != 201) {
        assert_eq!(*status, 422, "{body}");
        assert_eq!(problem_type(body), "/problems/voucher-invalid", "{body}");
    }
    for (_, body) in &accepted {
        // 15% of 20.00 = 3.00 off.
        assert_eq!(
            body["discount"],
            json!({"amount_minor": 300, "currency": "EUR"})
        );
        assert_eq!(
            body["total"],
            json!({"amount_minor": 1700, "currency": "EUR"})
        );
    }
    assert_eq!(
        voucher_uses(&stack, &organizer, &event, "Race-50").await,
        50
    );

    // Ten buyers cancel: their uses come back at once, and exactly ten more fit.
    for (i, body) in accepted.iter().take(10) {
        let booking = body["booking_id"].as_str().expect("id");
        let (status, _, reply) = stack
            .call(
                M::POST,
                &format!("/api/bookings/{booking}/cancel"),
                &tokens[*i],
                None,
            )
            .await;
        assert_eq!(status, 202, "{reply}");
    }
    assert_eq!(
        voucher_uses(&stack, &organizer, &event, "Race-50").await,
        40
    );
    let late: Vec<String> = (0..12)
        .map(|_| mint_token(Uuid::new_v4(), &["customer"]))
        .collect();
    let answers = join_all(
        late.iter()
            .map(|token| book_floor(&stack, 0, token, &event, 1, Some("RACE-50"))),
    )
    .await;
    assert_eq!(answers.iter().filter(|(s, _)| *s == 201).count(), 10);
    assert_eq!(
        voucher_uses(&stack, &organizer, &event, "Race-50").await,
        50
    );
}

#[tokio::test]
async fn vouchers_refuse_bad_input_other_tiers_and_other_organizers() {
    let stack = Stack::start().await;
    let organizer = stack.organizer("voucher-rules@example.com").await;
    let other = stack.organizer("voucher-other@example.com").await;
    let event = floor_event(&stack, &organizer, None).await;
    let path = format!("/api/events/{event}/vouchers");
    create_voucher(
        &stack,
        &organizer,
        &event,
        json!({"code": "SEATS", "discount": {"amount": {"amount_minor": 900, "currency": "EUR"}},
               "max_uses": 5, "tier_ids": ["seat"]}),
    )
    .await;

    for (body, want) in [
        (
            json!({"code": "seats", "discount": {"percent": 5}, "max_uses": 1}),
            409,
        ),
        (
            json!({"code": "ab", "discount": {"percent": 5}, "max_uses": 1}),
            422,
        ),
        (
            json!({"code": "ok-code", "discount": {"percent": 0}, "max_uses": 1}),
            422,
        ),
        (
            json!({"code": "ok-code", "discount": {"percent": 1000}, "max_uses": 1}),
            400,
        ),
        (
            json!({"code": "ok-code", "discount": {"percent": 5}, "max_uses": 0}),
            422,
        ),
        (
            json!({"code": "ok-code", "discount": {"percent": 5}, "max_uses": 1, "tier_ids": ["nope"]}),
            422,
        ),
        (
            json!({"code": "ok-code", "discount": {"amount": {"amount_minor": 5, "currency": "USD"}}, "max_uses": 1}),
            422,
        ),
        (
            json!({"code": "ok-code", "discount": {"percent": 5}, "max_uses": 1, "valid_until": "2001-01-01T00:00:00Z"}),
            422,
        ),
        (
            json!({"code": "ok-code", "discount": {"percent": 5, "amount": 3}, "max_uses": 1}),
            400,
        ),
        (
            json!({"code": "ok-code", "discount": {"percent": 5}, "max_uses": 1, "extra": true}),
            400,
        ),
    ] {
        let (status, _, reply) = stack
            .call(M::POST, &path, &organizer, Some(body.clone()))
            .await;
        assert_eq!(status, want, "{body} → {reply}");
    }
    let body = json!({"code": "mine", "discount": {"percent": 5}, "max_uses": 1});
    let (status, _, _) = stack.call(M::POST, &path, &other, Some(body.clone())).await;
    assert_eq!(status, 403, "another organizer's event");
    let customer = mint_token(Uuid::new_v4(), &["customer"]);
    let (status, _, _) = stack.call(M::POST, &path, &customer, Some(body)).await;
    assert_eq!(status, 403, "a customer");
    let (status, _, _) = stack.call(M::GET, &path, &customer, None).await;
    assert_eq!(status, 403, "a customer listing");
    let (status, _, list) = stack.call(M::GET, &path, &organizer, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        list.as_array().map(Vec::len),
        Some(1),
        "refusals wrote nothing: {list}"
    );

    // A voucher for the stalls does not apply to the floor; an unknown code is refused.
    let buyer = mint_token(Uuid::new_v4(), &["customer"]);
    for code in [
        "SEATS",
        "nope",
        "way-too-long-for-a-voucher-code-really-1234",
    ] {
        let (status, body) = book_floor(&stack, 0, &buyer, &event, 1, Some(code)).await;
        assert_eq!(status, 422, "{code}: {body}");
        assert_eq!(problem_type(&body), "/problems/voucher-invalid", "{body}");
    }
    // On the stalls a fixed 9.00 is taken off 2 × 50.00.
    let (status, _, body) = stack
        .call(
            M::POST,
            "/api/bookings",
            &buyer,
            Some(json!({"event_id": event, "seats": ["stalls:A:1", "stalls:A:2"], "voucher_code": "seats"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["discount"]["amount_minor"], 900);
    assert_eq!(body["total"]["amount_minor"], 9_100);
}

#[tokio::test]
async fn a_customer_limit_holds_under_a_race_and_ended_bookings_give_back_places_and_uses() {
    let stack = Stack::with_payments(&[("HOLD_TTL_SECONDS", "8")]).await;
    let organizer = stack.organizer("limit-org@example.com").await;
    let event = floor_event(
        &stack,
        &organizer,
        Some(json!({"max_tickets_per_customer": 4})),
    )
    .await;
    eventually(
        "the event's detail to show its limit",
        Duration::from_secs(30),
        || async {
            let (status, _, detail) = stack
                .call(M::GET, &format!("/api/events/{event}"), &organizer, None)
                .await;
            (status == 200 && detail["max_tickets_per_customer"] == 4).then_some(())
        },
    )
    .await;
    create_voucher(
        &stack,
        &organizer,
        &event,
        json!({"code": "ONCE", "discount": {"amount": {"amount_minor": 500, "currency": "EUR"}}, "max_uses": 1}),
    )
    .await;

    // One user's 20 racing bookings of one place each: exactly 4 fit.
    let scalper = mint_token(Uuid::new_v4(), &["customer"]);
    let answers = join_all((0..20).map(|_| book_floor(&stack, 0, &scalper, &event, 1, None))).await;
    let held: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(held.len(), 4, "held places never pass the limit");
    for (status, body) in answers.iter().filter(|(s, _)| *s != 201) {
        assert_eq!(*status, 422, "{body}");
        assert_eq!(problem_type(body), "/problems/customer-limit", "{body}");
        assert_eq!(body["limit"], 4);
        assert_eq!(body["current"], 4);
    }
    // One of them is paid; the other three expire and give their places back.
    let paid = held[0]["booking_id"].as_str().expect("id").to_owned();
    pay(&stack, &scalper, &paid, "tok_visa").await;
    booking_reaches(
        &stack,
        &scalper,
        &paid,
        "confirmed",
        Duration::from_secs(30),
    )
    .await;

    // The voucher's single use: taken by one buyer, refused to the next.
    let first = mint_token(Uuid::new_v4(), &["customer"]);
    let second = mint_token(Uuid::new_v4(), &["customer"]);
    let (status, body) = book_floor(&stack, 0, &first, &event, 1, Some("once")).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["total"]["amount_minor"], 1_500);
    let discounted = body["booking_id"].as_str().expect("id").to_owned();
    let read = booking_reaches(&stack, &first, &discounted, "held", Duration::from_secs(30)).await;
    assert_eq!(read["total"]["amount_minor"], 1_500, "{read}");
    let (status, body) = book_floor(&stack, 0, &second, &event, 1, Some("once")).await;
    assert_eq!(status, 422, "{body}");

    // The discounted hold expires: its use comes back and the next buyer gets it.
    booking_reaches(
        &stack,
        &first,
        &discounted,
        "expired",
        Duration::from_secs(60),
    )
    .await;
    eventually(
        "the expired booking's voucher use to return",
        Duration::from_secs(30),
        || async { (voucher_uses(&stack, &organizer, &event, "ONCE").await == 0).then_some(()) },
    )
    .await;
    let (status, body) = book_floor(&stack, 0, &second, &event, 1, Some("ONCE")).await;
    assert_eq!(status, 201, "{body}");
    let voucher_paid = body["booking_id"].as_str().expect("id").to_owned();
    pay(&stack, &second, &voucher_paid, "tok_visa").await;
    let read = booking_reaches(
        &stack,
        &second,
        &voucher_paid,
        "confirmed",
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(read["discount"]["amount_minor"], 500, "{read}");
    assert_eq!(read["total"]["amount_minor"], 1_500, "{read}");

    // The sale shows net revenue and the voucher's use; the invoice has a discount line.
    let sales = eventually(
        "the voucher's sale in the sales figures",
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
            (status == 200 && sales["bookings"]["confirmed"] == 2).then_some(sales)
        },
    )
    .await;
    assert_eq!(sales["revenue"]["amount_minor"], 2_000 + 1_500, "{sales}");
    assert_eq!(sales["discounts"]["amount_minor"], 500, "{sales}");
    assert_eq!(
        sales["vouchers"],
        json!([{"code": "ONCE", "uses": 1, "discount": {"amount_minor": 500, "currency": "EUR"}}])
    );
    let invoice = eventually(
        "the discounted booking's invoice",
        Duration::from_secs(30),
        || async {
            let (_, _, list) = stack.call(M::GET, "/api/invoices", &second, None).await;
            let id = list.as_array()?.first()?["invoice_id"].as_str()?.to_owned();
            let (status, _, invoice) = stack
                .call(M::GET, &format!("/api/invoices/{id}"), &second, None)
                .await;
            (status == 200).then_some(invoice)
        },
    )
    .await;
    let discount_line = invoice["lines"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["tier_id"] == "discount"))
        .unwrap_or_else(|| panic!("no discount line: {invoice}"));
    assert_eq!(discount_line["amount"]["amount_minor"], -500);
    assert_eq!(discount_line["description"], "Voucher ONCE");
    assert_eq!(invoice["total"]["amount_minor"], 1_500);

    // The scalper's three unpaid holds have expired by now; the paid place still counts.
    for held in &held[1..] {
        let id = held["booking_id"].as_str().expect("id");
        booking_reaches(&stack, &scalper, id, "expired", Duration::from_secs(60)).await;
    }
    let (status, body) = eventually(
        "expired places to stop counting",
        Duration::from_secs(30),
        || async {
            let (status, body) = book_floor(&stack, 0, &scalper, &event, 4, None).await;
            (status == 422 && body["current"] == 1).then_some((status, body))
        },
    )
    .await;
    assert_eq!((status, &body["limit"]), (422, &json!(4)), "{body}");
    let (status, body) = book_floor(&stack, 0, &scalper, &event, 3, None).await;
    assert_eq!(status, 201, "{body}");

    // A refunded booking stops counting too.
    let (status, _, reply) = stack
        .call(
            M::POST,
            &format!("/api/bookings/{paid}/cancel"),
            &scalper,
            None,
        )
        .await;
    assert_eq!(status, 202, "{reply}");
    booking_reaches(&stack, &scalper, &paid, "refunded", Duration::from_secs(30)).await;
    let (status, body) = eventually(
        "the refunded place to stop counting",
        Duration::from_secs(30),
        || async {
            let (status, body) = book_floor(&stack, 0, &scalper, &event, 1, None).await;
            (status == 201).then_some((status, body))
        },
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

async fn book_best(stack: &Stack, token: &str, event: &str, best: Value) -> (u16, Value) {
    let (status, _, body) = stack
        .call(
            M::POST,
            "/api/bookings",
            token,
            Some(json!({"event_id": event, "best_available": best})),
        )
        .await;
    (status.as_u16(), body)
}

#[tokio::test]
async fn best_available_chooses_on_a_nearly_full_row_without_leaving_a_lone_seat() {
    let stack = Stack::start().await;
    let organizer = stack.organizer("best-org@example.com").await;
    let event = floor_event(&stack, &organizer, None).await;
    let buyer = mint_token(Uuid::new_v4(), &["customer"]);
    // Row A of the stalls keeps only seats 9 to 12 free.
    for range in [1..=8, 13..=20] {
        let seats: Vec<String> = range.map(|n| format!("stalls:A:{n}")).collect();
        let (status, _, body) = stack
            .call(
                M::POST,
                "/api/bookings",
                &mint_token(Uuid::new_v4(), &["customer"]),
                Some(json!({"event_id": event, "seats": seats})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    // 10 and 11 (nearest the centre) would leave 9 and 12 alone: 9 and 10 it is.
    let (status, body) = book_best(&stack, &buyer, &event, json!({"quantity": 2})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["seats"], json!(["stalls:A:9", "stalls:A:10"]));
    assert_eq!(body["total"]["amount_minor"], 10_000);
    // Three side by side no longer fit: 409 naming what is left.
    let (status, body) = book_best(
        &stack,
        &buyer,
        &event,
        json!({"quantity": 3, "tier_id": "seat"}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["unavailable_sections"],
        json!([{"section_id": "stalls", "available": 2}])
    );
    let (status, body) = book_best(
        &stack,
        &buyer,
        &event,
        json!({"quantity": 2, "section_id": "stalls", "adjacent": false}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["seats"], json!(["stalls:A:11", "stalls:A:12"]));
    let (status, _) = book_best(&stack, &buyer, &event, json!({"quantity": 1})).await;
    assert_eq!(status, 409, "the row is full");

    // Requests the rules refuse.
    for (best, want) in [
        (json!({"quantity": 1, "section_id": "floor"}), 422),
        (json!({"quantity": 1, "tier_id": "ga"}), 422),
        (json!({"quantity": 1, "tier_id": "nope"}), 422),
        (json!({"quantity": 1, "section_id": "nope"}), 422),
        (json!({"quantity": 0}), 422),
        (json!({"quantity": 11}), 422),
        (json!({"quantity": -1}), 400),
        (json!({"quantity": 1, "extra": 1}), 400),
    ] {
        let (status, body) = book_best(&stack, &buyer, &event, best.clone()).await;
        assert_eq!(status, want, "{best} → {body}");
    }
    let (status, _, body) = stack
        .call(
            M::POST,
            "/api/bookings",
            &buyer,
            Some(json!({"event_id": event, "seats": ["stalls:A:1"], "best_available": {"quantity": 1}})),
        )
        .await;
    assert_eq!(status, 422, "best_available with seats: {body}");
}
