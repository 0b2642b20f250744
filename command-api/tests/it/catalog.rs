//! Events catalogue: the organizer flow against running services, and bad input and
//! authorization in process (nothing written on any refusal).

use axum::http::{Method, StatusCode};
use reqwest::Method as M;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{Stack, TestApp, assert_problem};

fn starts_at() -> String {
    (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339()
}

async fn draft(app: &TestApp, token: &str) -> String {
    let reply = app
        .json(
            Method::POST,
            "/api/events",
            &json!({"name": "Hamlet", "venue": "Globe", "starts_at": starts_at()}).to_string(),
            Some(token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    assert_eq!(reply.body["status"], "draft");
    reply.body["event_id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn invalid_layouts_pricing_and_publishing_are_refused_without_writing() {
    let app = TestApp::new().await;
    let organizer = app.token_for(Uuid::new_v4(), &["customer", "organizer"]);
    let id = draft(&app, &organizer).await;
    let before = app.event_count().await;
    let layout = format!("/api/events/{id}/layout");
    let pricing = format!("/api/events/{id}/pricing");
    let publish = format!("/api/events/{id}/publish");
    let cases: Vec<(&str, &str, String, StatusCode)> = vec![
        ("malformed", &layout, r#"{"sections": ["#.into(), StatusCode::BAD_REQUEST),
        (
            "unknown kind",
            &layout,
            json!({"sections": [{"section_id": "a", "name": "A", "kind": "vip", "capacity": 5}]}).to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "negative capacity",
            &layout,
            json!({"sections": [{"section_id": "a", "name": "A", "kind": "general_admission", "capacity": -5}]}).to_string(),
            StatusCode::BAD_REQUEST,
        ),
        ("unknown template", &layout, json!({"template_id": "opera"}).to_string(), StatusCode::UNPROCESSABLE_ENTITY),
        (
            "duplicate sections",
            &layout,
            json!({"sections": [
                {"section_id": "a", "name": "A", "kind": "general_admission", "capacity": 5},
                {"section_id": "a", "name": "B", "kind": "general_admission", "capacity": 5}]}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "oversized section",
            &layout,
            json!({"sections": [{"section_id": "a", "name": "A", "kind": "seated", "rows": [{"row": "A", "seats": 10001}]}]}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "bad section id",
            &layout,
            json!({"sections": [{"section_id": "a b", "name": "A", "kind": "general_admission", "capacity": 5}]}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "pricing before layout",
            &pricing,
            json!({"tiers": [{"tier_id": "t", "name": "T", "price": {"amount_minor": 100, "currency": "EUR"}, "section_ids": ["a"]}]}).to_string(),
            StatusCode::CONFLICT,
        ),
        ("publish without layout", &publish, "{}".into(), StatusCode::CONFLICT),
        ("publish with unknown field", &publish, r#"{"when": "now"}"#.into(), StatusCode::BAD_REQUEST),
    ];
    for (what, path, body, status) in &cases {
        let reply = app.json(Method::POST, path, body, Some(&organizer)).await;
        assert_problem(&reply, *status, what);
    }
    assert_eq!(
        app.event_count().await,
        before,
        "refused requests wrote events"
    );

    let reply = app
        .json(
            Method::POST,
            &layout,
            &json!({"template_id": "theatre"}).to_string(),
            Some(&organizer),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let before = app.event_count().await;
    let pricing_cases = [
        (
            "section in no tier",
            json!({"tiers": [{"tier_id": "t", "name": "T", "price": {"amount_minor": 100, "currency": "EUR"}, "section_ids": ["stalls"]}]}),
        ),
        (
            "unknown section",
            json!({"tiers": [{"tier_id": "t", "name": "T", "price": {"amount_minor": 100, "currency": "EUR"}, "section_ids": ["stalls", "balcony", "roof"]}]}),
        ),
        (
            "bad currency",
            json!({"tiers": [{"tier_id": "t", "name": "T", "price": {"amount_minor": 100, "currency": "euro"}, "section_ids": ["stalls", "balcony"]}]}),
        ),
    ];
    for (what, body) in &pricing_cases {
        let reply = app
            .json(Method::POST, &pricing, &body.to_string(), Some(&organizer))
            .await;
        assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY, what);
        assert!(
            reply.body["errors"]
                .as_array()
                .is_some_and(|e| !e.is_empty()),
            "{what}: errors listed"
        );
    }
    let reply = app.json(Method::POST, &publish, "", Some(&organizer)).await;
    assert_problem(&reply, StatusCode::CONFLICT, "publish without pricing");
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn only_organizers_create_and_only_owners_change_events() {
    let app = TestApp::new().await;
    let owner = app.token_for(Uuid::new_v4(), &["customer", "organizer"]);
    let other = app.token_for(Uuid::new_v4(), &["customer", "organizer"]);
    let customer = app.token_for(Uuid::new_v4(), &["customer"]);
    let before = app.event_count().await;
    let reply = app
        .json(
            Method::POST,
            "/api/events",
            &json!({"name": "X", "venue": "Y", "starts_at": starts_at()}).to_string(),
            Some(&customer),
        )
        .await;
    assert_problem(&reply, StatusCode::FORBIDDEN, "customer creates an event");
    assert_eq!(app.event_count().await, before);

    let id = draft(&app, &owner).await;
    let before = app.event_count().await;
    let layout = json!({"template_id": "club"}).to_string();
    let reply = app
        .json(
            Method::POST,
            &format!("/api/events/{id}/layout"),
            &layout,
            Some(&other),
        )
        .await;
    assert_problem(&reply, StatusCode::NOT_FOUND, "another organizer's draft");
    let reply = app
        .json(
            Method::POST,
            &format!("/api/events/{id}/layout"),
            &layout,
            Some(&customer),
        )
        .await;
    assert_problem(&reply, StatusCode::FORBIDDEN, "a customer changes an event");
    assert_eq!(app.event_count().await, before);

    // Published: another organizer gets 403 (the event is public, the action is not theirs).
    let path = |p: &str| format!("/api/events/{id}/{p}");
    assert_eq!(
        app.json(Method::POST, &path("layout"), &layout, Some(&owner))
            .await
            .status,
        StatusCode::OK
    );
    let tiers = json!({"tiers": [{"tier_id": "ga", "name": "GA", "price": {"amount_minor": 2500, "currency": "EUR"}, "section_ids": ["floor", "mezzanine"]}]});
    assert_eq!(
        app.json(
            Method::POST,
            &path("pricing"),
            &tiers.to_string(),
            Some(&owner)
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        app.json(Method::POST, &path("publish"), "", Some(&owner))
            .await
            .status,
        StatusCode::OK
    );
    let before = app.event_count().await;
    let reply = app
        .json(Method::POST, &path("cancel"), "", Some(&other))
        .await;
    assert_problem(&reply, StatusCode::FORBIDDEN, "another organizer cancels");
    let reply = app
        .json(Method::POST, &path("layout"), &layout, Some(&owner))
        .await;
    assert_problem(&reply, StatusCode::CONFLICT, "layout after publish");
    let reply = app
        .json(Method::POST, &path("publish"), "", Some(&owner))
        .await;
    assert_problem(&reply, StatusCode::CONFLICT, "publish twice");
    assert_eq!(app.event_count().await, before);
    let unknown = app
        .json(
            Method::POST,
            &format!("/api/events/{}/publish", Uuid::new_v4()),
            "",
            Some(&owner),
        )
        .await;
    assert_problem(&unknown, StatusCode::NOT_FOUND, "unknown event");
}

#[tokio::test]
async fn bad_booking_requests_are_refused_without_holding() {
    let app = TestApp::new().await;
    let owner = app.token_for(Uuid::new_v4(), &["customer", "organizer"]);
    let buyer = app.token_for(Uuid::new_v4(), &["customer"]);
    let id = draft(&app, &owner).await;
    let path = |p: &str| format!("/api/events/{id}/{p}");
    app.json(
        Method::POST,
        &path("layout"),
        &json!({"template_id": "theatre"}).to_string(),
        Some(&owner),
    )
    .await;
    let tiers = json!({"tiers": [{"tier_id": "all", "name": "All", "price": {"amount_minor": 5000, "currency": "EUR"}, "section_ids": ["stalls", "balcony"]}]});
    app.json(
        Method::POST,
        &path("pricing"),
        &tiers.to_string(),
        Some(&owner),
    )
    .await;

    let book = |body: Value| {
        let app = &app;
        let buyer = buyer.clone();
        async move {
            app.json(
                Method::POST,
                "/api/bookings",
                &body.to_string(),
                Some(&buyer),
            )
            .await
        }
    };
    let reply = book(json!({"event_id": id, "seats": ["stalls:A:1"]})).await;
    assert_problem(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "not on sale (draft)",
    );
    assert_eq!(
        app.json(Method::POST, &path("publish"), "", Some(&owner))
            .await
            .status,
        StatusCode::OK
    );
    let before = app.event_count().await;
    let cases = [
        (
            "unknown seat",
            json!({"event_id": id, "seats": ["stalls:A:99"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "unknown section",
            json!({"event_id": id, "general_admission": [{"section_id": "roof", "quantity": 1}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "seated as GA",
            json!({"event_id": id, "general_admission": [{"section_id": "stalls", "quantity": 1}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "nothing",
            json!({"event_id": id}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "eleven seats",
            json!({"event_id": id, "seats": (1..=11).map(|n| format!("stalls:A:{n}")).collect::<Vec<_>>()}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "same seat twice",
            json!({"event_id": id, "seats": ["stalls:A:1", "stalls:A:1"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "non-canonical seat",
            json!({"event_id": id, "seats": ["stalls:A:01"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "unknown event",
            json!({"event_id": Uuid::new_v4(), "seats": ["stalls:A:1"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "malformed event id",
            json!({"event_id": "nope", "seats": ["stalls:A:1"]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "wrong type",
            json!({"event_id": id, "seats": "stalls:A:1"}),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (what, body, status) in cases {
        let reply = book(body).await;
        assert_problem(&reply, status, what);
    }
    assert_eq!(
        app.event_count().await,
        before,
        "refused bookings wrote events"
    );
    let reply = app
        .json(
            Method::POST,
            "/api/bookings",
            &json!({"event_id": id, "seats": ["stalls:A:1"]}).to_string(),
            None,
        )
        .await;
    assert_problem(&reply, StatusCode::UNAUTHORIZED, "anonymous booking");
}

fn position(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get("x-event-position")
        .and_then(|v| v.to_str().ok())
        .expect("X-Event-Position")
        .to_owned()
}

#[tokio::test]
async fn organizer_publishes_and_a_buyer_holds_at_once() {
    let stack = Stack::start().await;
    let organizer = stack.organizer("org@example.com").await;
    stack.register("buyer@example.com").await;
    let buyer = stack
        .login("buyer@example.com", crate::support::PASSWORD)
        .await;

    let (status, _, body) = stack
        .call(M::POST, "/api/events", &organizer, Some(json!({"name": "Arena Night", "venue": "Arena", "starts_at": starts_at(), "description": "Big"})))
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["event_id"].as_str().expect("id").to_owned();
    let (status, _, body) = stack
        .call(
            M::POST,
            &format!("/api/events/{id}/layout"),
            &organizer,
            Some(json!({"template_id": "arena"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let sections: Vec<String> = body["sections"]
        .as_array()
        .expect("sections")
        .iter()
        .map(|s| s["section_id"].as_str().expect("id").to_owned())
        .collect();
    let tiers = json!({"tiers": [
        {"tier_id": "floor", "name": "Floor", "price": {"amount_minor": 4500, "currency": "EUR"}, "section_ids": ["floor"]},
        {"tier_id": "seats", "name": "Seats", "price": {"amount_minor": 6000, "currency": "EUR"},
         "section_ids": sections.iter().filter(|s| *s != "floor").collect::<Vec<_>>()}]});
    let (status, _, body) = stack
        .call(
            M::POST,
            &format!("/api/events/{id}/pricing"),
            &organizer,
            Some(tiers),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, headers, body) = stack
        .call(
            M::POST,
            &format!("/api/events/{id}/publish"),
            &organizer,
            None,
        )
        .await;
    let published_at = position(&headers);
    assert_eq!(
        (status.as_u16(), body["status"].clone()),
        (200, json!("published"))
    );

    // Immediately bookable: no waiting for any projection.
    let (status, headers, body) = stack
        .call(M::POST, "/api/bookings", &buyer, Some(json!({"event_id": id, "seats": ["lower-north:1:1", "lower-north:1:2"], "general_admission": [{"section_id": "floor", "quantity": 2}]})))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "held");
    assert_eq!(
        body["total"],
        json!({"amount_minor": 2 * 6000 + 2 * 4500, "currency": "EUR"})
    );
    let held_at = position(&headers);

    let list: Value = stack
        .http
        .get(stack.url("/api/events"))
        .header("x-min-position", &published_at)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let item = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["event_id"] == json!(id))
        .cloned()
        .expect("listed");
    assert_eq!(
        item["min_price"],
        json!({"amount_minor": 4500, "currency": "EUR"})
    );
    assert_eq!(item["status"], "published");

    let reply = stack
        .http
        .get(stack.url(&format!(
            "/api/events/{id}/availability?section_id=lower-north"
        )))
        .header("x-min-position", &held_at)
        .send()
        .await
        .expect("availability");
    assert_eq!(reply.status(), 200);
    assert!(reply.headers().get("x-consistency").is_none());
    let etag = reply
        .headers()
        .get("etag")
        .expect("ETag")
        .to_str()
        .expect("ascii")
        .to_owned();
    let availability: Value = reply.json().await.expect("json");
    let section = &availability["sections"][0];
    assert_eq!(
        (section["held"].clone(), section["available"].clone()),
        (json!(2), json!(1998))
    );
    let seats = section["seats"]
        .as_array()
        .expect("seats listed for a named section");
    assert_eq!(seats.len(), 2000);
    assert!(seats.contains(&json!({"seat_id": "lower-north:1:1", "status": "held"})));
    assert!(seats.contains(&json!({"seat_id": "lower-north:1:3", "status": "available"})));
    let not_modified = stack
        .http
        .get(stack.url(&format!(
            "/api/events/{id}/availability?section_id=lower-north"
        )))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("conditional");
    assert_eq!(not_modified.status(), 304);

    let all: Value = stack
        .http
        .get(stack.url(&format!("/api/events/{id}/availability")))
        .header("x-min-position", &held_at)
        .send()
        .await
        .expect("availability")
        .json()
        .await
        .expect("json");
    let floor = all["sections"]
        .as_array()
        .expect("sections")
        .iter()
        .find(|s| s["section_id"] == "floor")
        .cloned()
        .expect("floor");
    assert_eq!(
        (
            floor["kind"].clone(),
            floor["held"].clone(),
            floor["capacity"].clone()
        ),
        (json!("general_admission"), json!(2), json!(6000))
    );

    // The same seat again: 409 naming it, and nothing else held.
    let (status, _, body) = stack
        .call(M::POST, "/api/bookings", &buyer, Some(json!({"event_id": id, "seats": ["lower-north:1:2", "lower-north:1:3"], "general_admission": [{"section_id": "floor", "quantity": 1}]})))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["unavailable"], json!(["lower-north:1:2"]));
    let (status, _, body) = stack
        .call(
            M::POST,
            "/api/bookings",
            &buyer,
            Some(json!({"event_id": id, "seats": ["lower-north:1:3"]})),
        )
        .await;
    assert_eq!(
        status, 201,
        "seat 3 was released by the failed booking: {body}"
    );

    // Drafts are private; the organizer sees them with mine=true.
    let (status, headers, body) = stack
        .call(
            M::POST,
            "/api/events",
            &organizer,
            Some(json!({"name": "Secret", "venue": "Cellar", "starts_at": starts_at()})),
        )
        .await;
    assert_eq!(status, 201);
    let created_at = position(&headers);
    let secret = body["event_id"].as_str().expect("id").to_owned();
    let read = |token: &str| {
        stack
            .http
            .get(stack.url(&format!("/api/events/{secret}")))
            .bearer_auth(token)
            .header("x-min-position", &created_at)
            .send()
    };
    let owner_view = read(&organizer).await.expect("owner read");
    assert_eq!(
        owner_view.status(),
        200,
        "the organizer sees the draft once projected"
    );
    assert_eq!(
        read(&buyer).await.expect("buyer read").status(),
        404,
        "a buyer must not see a draft"
    );
    let mine: Value = stack
        .http
        .get(stack.url("/api/events?mine=true&per_page=1"))
        .bearer_auth(&organizer)
        .send()
        .await
        .expect("mine")
        .json()
        .await
        .expect("json");
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(mine["next_page"], 2, "two events, one per page");
}
