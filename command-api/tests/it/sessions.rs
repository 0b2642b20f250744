//! Sessions (API.md, "Integrations"): login opens a session with a refresh token; refresh
//! rotates it; a spent token presented again revokes the session; logout and deleting a
//! session from another device stop refresh; sessions are listed per user with their user
//! agent, and another user's session id is a 404.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{PASSWORD, TestApp, assert_problem};

async fn login(app: &TestApp, email: &str, agent: &str) -> Value {
    let body = json!({"email": email, "password": PASSWORD}).to_string();
    let reply = app
        .raw(
            Method::POST,
            "/api/auth/login",
            body.into_bytes(),
            &[("content-type", "application/json"), ("user-agent", agent)],
        )
        .await;
    assert_eq!(reply.status, 200, "login: {}", reply.body);
    reply.body
}

async fn refresh(app: &TestApp, refresh_token: &str) -> (u16, Value) {
    let reply = app
        .json(
            Method::POST,
            "/api/auth/refresh",
            &json!({"refresh_token": refresh_token}).to_string(),
            None,
        )
        .await;
    (reply.status.as_u16(), reply.body)
}

fn text<'a>(body: &'a Value, field: &str) -> &'a str {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {body}"))
}

async fn sessions(app: &TestApp, access: &str) -> Vec<Value> {
    let reply = app
        .json(Method::GET, "/api/auth/sessions", "", Some(access))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body.as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_rotated_refresh_token_works_once_and_its_replay_revokes_the_session() {
    let app = TestApp::new().await;
    app.register_and_login("rotate@example.com").await;
    let first = login(&app, "rotate@example.com", "laptop/1.0").await;
    assert_eq!(
        first["expires_in"], 900,
        "short-lived access tokens by default"
    );
    let spent = text(&first, "refresh_token").to_owned();

    let (status, second) = refresh(&app, &spent).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["session_id"], first["session_id"]);
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    let newest = text(&second, "refresh_token").to_owned();
    // The new access token works.
    let profile = app
        .json(
            Method::GET,
            "/api/users/profile",
            "",
            Some(text(&second, "access_token")),
        )
        .await;
    assert_eq!(profile.status, 200);

    // The spent one is replayed (a stolen copy): 401, and the session's newest token dies too.
    let (status, body) = refresh(&app, &spent).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = refresh(&app, &newest).await;
    assert_eq!(status, 401, "the whole session is revoked: {body}");

    // Made-up, empty and oversized tokens are refused the same way; a bad body is a 4xx.
    for token in ["rt_00", "", &"a".repeat(5000)] {
        assert_eq!(refresh(&app, token).await.0, 401, "{token:.20}");
    }
    let reply = app
        .json(
            Method::POST,
            "/api/auth/refresh",
            r#"{"refresh_token": 7}"#,
            None,
        )
        .await;
    assert!(reply.status.is_client_error(), "{}", reply.body);
}

#[tokio::test]
async fn logout_and_revoking_from_another_device_stop_refresh() {
    let app = TestApp::new().await;
    app.register_and_login("devices@example.com").await;
    let laptop = login(&app, "devices@example.com", "laptop/1.0").await;
    let phone = login(&app, "devices@example.com", "phone/2.0").await;
    let laptop_access = text(&laptop, "access_token");

    let listed = sessions(&app, laptop_access).await;
    let ids: Vec<&Value> = listed.iter().map(|s| &s["session_id"]).collect();
    assert!(ids.contains(&&laptop["session_id"]) && ids.contains(&&phone["session_id"]));
    let own = listed
        .iter()
        .find(|s| s["session_id"] == laptop["session_id"])
        .expect("the laptop's session");
    assert_eq!(own["current"], true);
    assert_eq!(own["user_agent"], "laptop/1.0");
    let other = listed
        .iter()
        .find(|s| s["session_id"] == phone["session_id"])
        .expect("the phone's session");
    assert_eq!(other["current"], false);
    assert_eq!(other["user_agent"], "phone/2.0");

    // The laptop signs the phone out.
    let path = format!("/api/auth/sessions/{}", text(&phone, "session_id"));
    let reply = app
        .json(Method::DELETE, &path, "", Some(laptop_access))
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(refresh(&app, text(&phone, "refresh_token")).await.0, 401);
    let reply = app
        .json(Method::DELETE, &path, "", Some(laptop_access))
        .await;
    assert_problem(&reply, StatusCode::NOT_FOUND, "revoked twice");

    // Another user can neither see nor revoke the laptop's session.
    let stranger = app.register_and_login("stranger@example.com").await;
    assert!(
        sessions(&app, &stranger)
            .await
            .iter()
            .all(|s| s["session_id"] != laptop["session_id"])
    );
    let path = format!("/api/auth/sessions/{}", text(&laptop, "session_id"));
    let reply = app.json(Method::DELETE, &path, "", Some(&stranger)).await;
    assert_problem(&reply, StatusCode::NOT_FOUND, "another user's session");
    let reply = app
        .json(
            Method::DELETE,
            "/api/auth/sessions/not-a-uuid",
            "",
            Some(&stranger),
        )
        .await;
    assert_eq!(reply.status, 400);

    // Logout ends the laptop's own session.
    let reply = app
        .json(Method::POST, "/api/auth/logout", "", Some(laptop_access))
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(refresh(&app, text(&laptop, "refresh_token")).await.0, 401);
    let reply = app.json(Method::POST, "/api/auth/logout", "", None).await;
    assert_eq!(reply.status, 401);
}
