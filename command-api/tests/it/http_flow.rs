//! The walking skeleton against running services: command-api, relay and projections as
//! processes on real PostgreSQL and Kafka.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, Stack};

fn position(reply: &reqwest::Response) -> String {
    reply
        .headers()
        .get("x-event-position")
        .expect("commands answer X-Event-Position")
        .to_str()
        .expect("ascii")
        .to_owned()
}

/// GET with `X-Min-Position`; asserts the answer is fresh.
async fn read_fresh(stack: &Stack, token: &str, path: &str, min: &str) -> Value {
    let reply = stack
        .http
        .get(stack.url(path))
        .bearer_auth(token)
        .header("x-min-position", min)
        .send()
        .await
        .expect("read");
    assert_eq!(reply.status(), StatusCode::OK, "{path}");
    assert!(
        reply.headers().get("x-consistency").is_none(),
        "{path} answered stale"
    );
    reply.json().await.expect("json")
}

#[tokio::test]
async fn register_login_profile_and_addresses_read_back_their_writes() {
    let stack = Stack::start().await;
    let email = "Walker@Example.com";
    let reply = stack.register(email).await;
    assert_eq!(reply.status(), StatusCode::CREATED);
    let registered_at = position(&reply);
    let user_id = reply.json::<Value>().await.expect("body")["user_id"].clone();

    // Login works at once, case-insensitively, from the write side.
    let token = stack.login("walker@example.com", PASSWORD).await;
    let profile = read_fresh(&stack, &token, "/api/users/profile", &registered_at).await;
    assert_eq!(profile["user_id"], user_id);
    assert_eq!(profile["email"], "walker@example.com");
    assert_eq!(profile["roles"], json!(["customer"]));

    // Read-your-writes, many times in a row: every read sees the write just made.
    for i in 0..100 {
        let name = format!("Walker {i}");
        let reply = stack
            .http
            .put(stack.url("/api/users/profile"))
            .bearer_auth(&token)
            .json(&json!({"name": name, "phone": format!("+49 30 {i}")}))
            .send()
            .await
            .expect("update");
        assert_eq!(reply.status(), StatusCode::OK);
        let written = position(&reply);
        let profile = read_fresh(&stack, &token, "/api/users/profile", &written).await;
        assert_eq!(profile["name"], name, "read {i} missed its write");
    }

    let home = json!({"label": "home", "line1": "1 Main St", "city": "Berlin", "postal_code": "10115", "country": "DE"});
    let reply = stack
        .http
        .post(stack.url("/api/users/addresses"))
        .bearer_auth(&token)
        .json(&home)
        .send()
        .await
        .expect("add address");
    assert_eq!(reply.status(), StatusCode::CREATED);
    let written = position(&reply);
    let address: Value = reply.json().await.expect("address");
    let address_id = address["address_id"].as_str().expect("id").to_owned();
    let listed = read_fresh(&stack, &token, "/api/users/addresses", &written).await;
    assert_eq!(listed.as_array().expect("list").len(), 1);
    assert_eq!(listed[0]["city"], "Berlin");
    assert_eq!(listed[0]["line2"], Value::Null);

    let moved = json!({"label": "home", "line1": "2 Side St", "line2": "Apt 3", "city": "Hamburg", "postal_code": "20095", "country": "DE"});
    let reply = stack
        .http
        .put(stack.url(&format!("/api/users/addresses/{address_id}")))
        .bearer_auth(&token)
        .json(&moved)
        .send()
        .await
        .expect("update address");
    assert_eq!(reply.status(), StatusCode::OK);
    let listed = read_fresh(&stack, &token, "/api/users/addresses", &position(&reply)).await;
    assert_eq!(listed[0]["city"], "Hamburg");
    assert_eq!(listed[0]["line2"], "Apt 3");

    // Another user cannot see or touch it.
    stack.register("intruder@example.com").await;
    let intruder = stack.login("intruder@example.com", PASSWORD).await;
    let theirs: Value = stack
        .http
        .get(stack.url("/api/users/addresses"))
        .bearer_auth(&intruder)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(theirs, json!([]));
    let steal = stack
        .http
        .delete(stack.url(&format!("/api/users/addresses/{address_id}")))
        .bearer_auth(&intruder)
        .send()
        .await
        .expect("delete");
    assert_eq!(steal.status(), StatusCode::NOT_FOUND);

    let reply = stack
        .http
        .delete(stack.url(&format!("/api/users/addresses/{address_id}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("delete");
    assert_eq!(reply.status(), StatusCode::NO_CONTENT);
    let listed = read_fresh(&stack, &token, "/api/users/addresses", &position(&reply)).await;
    assert_eq!(listed, json!([]));
}

#[tokio::test]
async fn concurrent_registrations_of_one_email_create_one_account() {
    let stack = Stack::start().await;
    let attempts = (0..20).map(|i| {
        // Different case and whitespace: still the same account.
        let email = if i % 2 == 0 {
            "race@example.com"
        } else {
            " RACE@example.COM"
        };
        stack.register(email)
    });
    let statuses: Vec<StatusCode> = join_all(attempts)
        .await
        .iter()
        .map(|r| r.status())
        .collect();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, conflicts), (1, 19), "statuses: {statuses:?}");
    let registered: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'UserRegistered' AND aggregate_id = $1",
    )
    .bind(domain::user::user_id_for_email("race@example.com").to_string())
    .fetch_one(&stack.db.pool)
    .await
    .expect("count");
    assert_eq!(registered, 1);
}

#[tokio::test]
async fn idempotency_key_replays_across_restarts_and_refuses_another_body() {
    let mut stack = Stack::start().await;
    stack.register("idem@example.com").await;
    let token = stack.login("idem@example.com", PASSWORD).await;
    let post = |body: &'static str, key: &'static str, stack: &Stack, token: &str| {
        stack
            .http
            .post(stack.url("/api/users/addresses"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(body)
            .send()
    };
    let first = post(
        r#"{"label":"home","line1":"1 A St","city":"Rome","postal_code":"00100","country":"IT"}"#,
        "key-1",
        &stack,
        &token,
    )
    .await
    .expect("first");
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_body: Value = first.json().await.expect("json");

    // Same key, same body in another key order and spacing: the first answer again.
    let replay = post(
        r#"{ "country": "IT", "postal_code": "00100", "city": "Rome", "line1": "1 A St", "label": "home" }"#,
        "key-1",
        &stack,
        &token,
    )
    .await
    .expect("replay");
    assert_eq!(replay.status(), StatusCode::CREATED);
    assert_eq!(
        replay
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap_or_default()),
        Some("true")
    );
    assert_eq!(replay.json::<Value>().await.expect("json"), first_body);

    let other = post(
        r#"{"label":"work","line1":"1 A St","city":"Rome","postal_code":"00100","country":"IT"}"#,
        "key-1",
        &stack,
        &token,
    )
    .await
    .expect("other body");
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);

    stack.restart_api().await;
    let after_restart = post(
        r#"{"label":"home","line1":"1 A St","city":"Rome","postal_code":"00100","country":"IT"}"#,
        "key-1",
        &stack,
        &token,
    )
    .await
    .expect("after restart");
    assert_eq!(after_restart.status(), StatusCode::CREATED);
    assert!(after_restart.headers().get("idempotent-replayed").is_some());
    assert_eq!(
        after_restart.json::<Value>().await.expect("json"),
        first_body
    );

    let added: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'AddressAdded'")
            .fetch_one(&stack.db.pool)
            .await
            .expect("count");
    assert_eq!(added, 1, "replays must not execute the command again");
}

#[tokio::test]
async fn bootstrap_admin_grants_roles_that_the_next_login_carries() {
    let stack = Stack::start().await;
    let admin = stack.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let reply = stack.register("organizer@example.com").await;
    let user_id = reply.json::<Value>().await.expect("json")["user_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let customer = stack.login("organizer@example.com", PASSWORD).await;

    let denied = stack
        .http
        .post(stack.url(&format!("/api/admin/users/{user_id}/roles")))
        .bearer_auth(&customer)
        .json(&json!({"role": "organizer"}))
        .send()
        .await
        .expect("grant");
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);

    let granted = stack
        .http
        .post(stack.url(&format!("/api/admin/users/{user_id}/roles")))
        .bearer_auth(&admin)
        .json(&json!({"role": "organizer"}))
        .send()
        .await
        .expect("grant");
    assert_eq!(granted.status(), StatusCode::OK);
    let written = position(&granted);
    let body: Value = granted.json().await.expect("json");
    assert_eq!(body["roles"], json!(["customer", "organizer"]));

    let token = stack.login("organizer@example.com", PASSWORD).await;
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).expect("payload"))
            .expect("base64"),
    )
    .expect("claims");
    assert_eq!(claims["roles"], json!(["customer", "organizer"]));
    let profile = read_fresh(&stack, &token, "/api/users/profile", &written).await;
    assert_eq!(profile["roles"], json!(["customer", "organizer"]));

    let missing = stack
        .http
        .post(stack.url(&format!("/api/admin/users/{}/roles", uuid::Uuid::new_v4())))
        .bearer_auth(&admin)
        .json(&json!({"role": "staff"}))
        .send()
        .await
        .expect("grant");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn every_process_reports_health_readiness_and_metrics() {
    let stack = Stack::start().await;
    let targets = [
        stack.api.as_ref().expect("api").ops_url(),
        stack.relay.ops_url(),
        stack.projections.ops_url(),
    ];
    for base in targets {
        for path in ["/health", "/ready", "/metrics"] {
            let reply = plumbing::testkit::eventually(
                &format!("{base}{path} to answer 200"),
                Duration::from_secs(30),
                || async {
                    let r = stack.http.get(format!("{base}{path}")).send().await.ok()?;
                    (r.status() == StatusCode::OK).then_some(r)
                },
            )
            .await;
            if path == "/metrics" {
                let text = reply.text().await.expect("text");
                assert!(!text.contains("<html"), "metrics is Prometheus text");
            }
        }
    }
}
