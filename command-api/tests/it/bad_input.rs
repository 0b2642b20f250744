//! Bad input gets the status API.md names as problem+json, never 5xx, and writes nothing.

use axum::http::{Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use plumbing::testkit;
use serde_json::json;

use crate::support::{TestApp, assert_problem};

#[tokio::test]
async fn malformed_register_bodies_are_rejected_without_writing() {
    let app = TestApp::new().await;
    let before = app.event_count().await;
    let cases: &[(&str, &str, StatusCode)] = &[
        (
            "malformed JSON",
            r#"{"email": "a@b.co", "password": "#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "unknown field",
            r#"{"email":"a@b.co","password":"long enough 1","name":"A","admin":true}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "wrong type",
            r#"{"email":5,"password":"long enough 1","name":"A"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "missing field",
            r#"{"email":"a@b.co","name":"A"}"#,
            StatusCode::BAD_REQUEST,
        ),
        ("not an object", r#"[1,2,3]"#, StatusCode::BAD_REQUEST),
        (
            "invalid email",
            r#"{"email":"not-an-email","password":"long enough 1","name":"A"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "short password",
            r#"{"email":"a@b.co","password":"short","name":"A"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "empty name",
            r#"{"email":"a@b.co","password":"long enough 1","name":"   "}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (what, body, status) in cases {
        let reply = app
            .json(Method::POST, "/api/auth/register", body, None)
            .await;
        assert_problem(&reply, *status, what);
    }
    let overlong = json!({"email": "a@b.co", "password": "long enough 1", "name": "x".repeat(201)});
    let reply = app
        .json(
            Method::POST,
            "/api/auth/register",
            &overlong.to_string(),
            None,
        )
        .await;
    assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY, "overlong name");
    assert_eq!(reply.body["errors"][0]["field"], "name");
    let overlong_email = json!({"email": format!("{}@example.com", "a".repeat(250)), "password": "long enough 1", "name": "A"});
    let reply = app
        .json(
            Method::POST,
            "/api/auth/register",
            &overlong_email.to_string(),
            None,
        )
        .await;
    assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY, "overlong email");
    assert_eq!(app.event_count().await, before, "bad input wrote events");
}

#[tokio::test]
async fn oversized_and_mistyped_bodies_are_refused() {
    let app = TestApp::new().await;
    let before = app.event_count().await;
    let huge = format!(
        r#"{{"email":"a@b.co","password":"long enough 1","name":"{}"}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    let reply = app
        .json(Method::POST, "/api/auth/register", &huge, None)
        .await;
    assert_problem(&reply, StatusCode::PAYLOAD_TOO_LARGE, "2 MiB body");

    let reply = app
        .raw(
            Method::POST,
            "/api/auth/register",
            br#"{"email":"a@b.co","password":"long enough 1","name":"A"}"#.to_vec(),
            &[("content-type", "text/plain")],
        )
        .await;
    assert_problem(
        &reply,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "wrong content type",
    );
    assert_eq!(app.event_count().await, before);
}

fn token_with(claims: serde_json::Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encode")
}

#[tokio::test]
async fn bad_tokens_get_401_and_write_nothing() {
    let app = TestApp::new().await;
    let good = app.register_and_login("tokens@example.com").await;
    let before = app.event_count().await;
    let now = chrono::Utc::now().timestamp();
    let sub = domain::user::user_id_for_email("tokens@example.com");
    let claims = |exp: i64, aud: &str, iss: &str| json!({"sub": sub, "roles": ["customer", "admin"], "iss": iss, "aud": aud, "iat": now, "exp": exp});

    // Flip one character of the signature-covered payload.
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let mut payload = URL_SAFE_NO_PAD.decode(&parts[1]).expect("payload");
    let pos = payload
        .iter()
        .position(|b| *b == b'c')
        .expect("a c in payload");
    payload[pos] = b'd';
    parts[1] = URL_SAFE_NO_PAD.encode(payload);
    let tampered = parts.join(".");

    let header_none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body_none =
        URL_SAFE_NO_PAD.encode(claims(now + 600, "ticketing-api", "ticketing").to_string());
    let alg_none = format!("{header_none}.{body_none}.");

    let cases = [
        ("tampered", tampered),
        ("alg none", alg_none),
        (
            "expired",
            token_with(
                claims(now - 120, "ticketing-api", "ticketing"),
                testkit::jwt_secret(),
            ),
        ),
        (
            "wrong audience",
            token_with(
                claims(now + 600, "someone-else", "ticketing"),
                testkit::jwt_secret(),
            ),
        ),
        (
            "wrong issuer",
            token_with(
                claims(now + 600, "ticketing-api", "evil"),
                testkit::jwt_secret(),
            ),
        ),
        (
            "wrong secret",
            token_with(
                claims(now + 600, "ticketing-api", "ticketing"),
                "another-secret-0123456789abcdef0123456789",
            ),
        ),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (what, token) in &cases {
        let read = app
            .json(Method::GET, "/api/users/profile", "", Some(token))
            .await;
        assert_problem(&read, StatusCode::UNAUTHORIZED, what);
        let write = app
            .json(
                Method::PUT,
                "/api/users/profile",
                r#"{"name":"Mallory"}"#,
                Some(token),
            )
            .await;
        assert_problem(&write, StatusCode::UNAUTHORIZED, what);
        let grant = app
            .json(
                Method::POST,
                &format!("/api/admin/users/{sub}/roles"),
                r#"{"role":"admin"}"#,
                Some(token),
            )
            .await;
        assert_problem(&grant, StatusCode::UNAUTHORIZED, what);
    }
    let missing = app.json(Method::GET, "/api/users/profile", "", None).await;
    assert_problem(&missing, StatusCode::UNAUTHORIZED, "no token");
    assert_eq!(
        app.event_count().await,
        before,
        "rejected tokens wrote events"
    );
}

#[tokio::test]
async fn role_and_parameter_errors_use_the_documented_statuses() {
    let app = TestApp::new().await;
    let token = app.register_and_login("customer@example.com").await;
    let other = domain::user::user_id_for_email("customer@example.com");
    let before = app.event_count().await;

    let grant = app
        .json(
            Method::POST,
            &format!("/api/admin/users/{other}/roles"),
            r#"{"role":"admin"}"#,
            Some(&token),
        )
        .await;
    assert_problem(&grant, StatusCode::FORBIDDEN, "customer grants a role");

    let bad_uuid = app
        .json(
            Method::PUT,
            "/api/users/addresses/not-a-uuid",
            r#"{"label":"h","line1":"1 St","city":"X","postal_code":"1","country":"DE"}"#,
            Some(&token),
        )
        .await;
    assert_problem(&bad_uuid, StatusCode::BAD_REQUEST, "malformed UUID");

    let unknown = app
        .json(
            Method::DELETE,
            &format!("/api/users/addresses/{}", uuid::Uuid::new_v4()),
            "",
            Some(&token),
        )
        .await;
    assert_problem(&unknown, StatusCode::NOT_FOUND, "unknown address");

    let bad_country = app
        .json(
            Method::POST,
            "/api/users/addresses",
            r#"{"label":"h","line1":"1 St","city":"X","postal_code":"1","country":"Germany"}"#,
            Some(&token),
        )
        .await;
    assert_problem(&bad_country, StatusCode::UNPROCESSABLE_ENTITY, "country");

    let bad_phone = app
        .json(
            Method::PUT,
            "/api/users/profile",
            r#"{"phone":"call me maybe"}"#,
            Some(&token),
        )
        .await;
    assert_problem(&bad_phone, StatusCode::UNPROCESSABLE_ENTITY, "phone");

    let bad_position = app
        .raw(
            Method::GET,
            "/api/users/profile",
            vec![],
            &[
                ("authorization", &format!("Bearer {token}")),
                ("x-min-position", "%%%not-a-token"),
            ],
        )
        .await;
    assert_problem(
        &bad_position,
        StatusCode::BAD_REQUEST,
        "malformed X-Min-Position",
    );

    let nowhere = app.json(Method::GET, "/api/nowhere", "", None).await;
    assert_problem(&nowhere, StatusCode::NOT_FOUND, "unknown path");

    let long_key = "k".repeat(256);
    let bad_key = app
        .raw(
            Method::POST,
            "/api/users/addresses",
            br#"{"label":"h","line1":"1 St","city":"X","postal_code":"1","country":"DE"}"#.to_vec(),
            &[
                ("authorization", &format!("Bearer {token}")),
                ("content-type", "application/json"),
                ("idempotency-key", &long_key),
            ],
        )
        .await;
    assert_problem(
        &bad_key,
        StatusCode::BAD_REQUEST,
        "overlong Idempotency-Key",
    );
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_401() {
    let app = TestApp::new().await;
    app.register_and_login("known@example.com").await;
    let wrong = app
        .json(
            Method::POST,
            "/api/auth/login",
            r#"{"email":"known@example.com","password":"wrong password"}"#,
            None,
        )
        .await;
    let unknown = app
        .json(
            Method::POST,
            "/api/auth/login",
            r#"{"email":"nobody@example.com","password":"wrong password"}"#,
            None,
        )
        .await;
    assert_problem(&wrong, StatusCode::UNAUTHORIZED, "wrong password");
    assert_problem(&unknown, StatusCode::UNAUTHORIZED, "unknown email");
    assert_eq!(wrong.body["detail"], unknown.body["detail"]);
}

#[tokio::test]
async fn repeated_failed_logins_from_one_client_are_rate_limited() {
    let app = TestApp::new().await;
    app.register_and_login("target@example.com").await;
    let attempt = |password: &'static str| {
        let body = json!({"email": "target@example.com", "password": password}).to_string();
        let app = &app;
        async move { app.json(Method::POST, "/api/auth/login", &body, None).await }
    };
    for i in 0..10 {
        let reply = attempt("wrong password").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let limited = attempt("wrong password").await;
    assert_problem(&limited, StatusCode::TOO_MANY_REQUESTS, "11th failure");
    assert!(limited.headers.contains_key("retry-after"));
    // Locked: even the right password waits, so guessing cannot continue.
    let right = attempt(crate::support::PASSWORD).await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
    // Other accounts are unaffected.
    app.register_and_login("bystander@example.com").await;
}

#[tokio::test]
async fn the_openapi_document_and_docs_page_are_served() {
    let app = TestApp::new().await;
    let doc = app.json(Method::GET, "/api/openapi.json", "", None).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert_eq!(doc.body["openapi"], "3.1.0");
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(schemas::export::json_dir().join("openapi.json"))
            .expect("committed document"),
    )
    .expect("json");
    assert_eq!(
        doc.body, committed,
        "served and committed documents differ; run `cargo run -p schemas --bin export-schemas`"
    );
    let page = app.raw(Method::GET, "/api/docs", vec![], &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/html"))
    );
}
