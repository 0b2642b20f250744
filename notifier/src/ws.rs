//! `GET /ws`: the WebSocket endpoint. The token (`Authorization: Bearer` or `?token=`) is
//! checked before the upgrade (401 otherwise), and the `Origin`, when present, must be in
//! `WS_ALLOWED_ORIGINS` (403). Each connection joins its `user:{id}` room; clients
//! subscribe to `event:{id}` rooms. Heartbeats: a ping every `heartbeat` and a close after
//! `idle_timeout` without any frame from the client; close code 4001 when the token expires.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use plumbing::jwt::{AccessClaims, TokenVerifier};
use schemas::ws::{ClientMessage, ServerMessage};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use uuid::Uuid;

use crate::rooms::{Frame, Hub};

pub struct WsConfig {
    pub verifier: TokenVerifier,
    /// Allowed `Origin` values; empty allows any.
    pub allowed_origins: Vec<String>,
    /// Frames queued per connection before it counts as slow and is dropped.
    pub client_buffer: usize,
    pub heartbeat: Duration,
    pub idle_timeout: Duration,
}

#[derive(Clone)]
pub struct WsState {
    pub hub: Arc<Hub>,
    pub config: Arc<WsConfig>,
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

fn refuse(status: StatusCode, detail: &str) -> Response {
    let body = json!({"type": format!("/problems/{}", if status == StatusCode::UNAUTHORIZED { "unauthorized" } else { "forbidden" }),
                      "title": status.canonical_reason().unwrap_or("Error"), "status": status.as_u16(), "detail": detail});
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/problem+json"),
    );
    response
}

pub async fn upgrade(
    State(state): State<WsState>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
        && !state.config.allowed_origins.is_empty()
        && !state.config.allowed_origins.iter().any(|o| o == origin)
    {
        return refuse(StatusCode::FORBIDDEN, "this origin may not connect");
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    let Some(token) = bearer.or(query.token) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "a bearer access token is required",
        );
    };
    let claims = match state.config.verifier.verify(&token) {
        Ok(claims) => claims,
        Err(err) => return refuse(StatusCode::UNAUTHORIZED, &err.to_string()),
    };
    let Ok(ws) = ws else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "this endpoint speaks WebSocket only",
        );
    };
    // Small per-connection buffers: the defaults (128 KiB to read and 128 KiB to write) cost
    // over 100 KiB of memory per idle connection, and a client only ever sends tiny frames.
    // Frames still go out whole; only how much is gathered before a write changes.
    ws.max_message_size(16 * 1024)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(8 * 1024)
        .max_write_buffer_size(256 * 1024)
        .on_upgrade(move |socket| connection(socket, state, claims))
}

fn error_frame(code: &str, message: &str) -> String {
    ServerMessage::Error {
        code: code.to_owned(),
        message: message.to_owned(),
    }
    .to_frame()
}

/// `event:{uuid}` rooms are the only ones a client may join; `user:` rooms are implicit.
fn valid_event_room(room: &str) -> bool {
    room.strip_prefix("event:")
        .is_some_and(|id| Uuid::parse_str(id).is_ok())
}

fn handle_client_text(state: &WsState, id: u64, text: &str) -> String {
    let Ok(message) = serde_json::from_str::<ClientMessage>(text) else {
        return error_frame(
            "bad_message",
            "expected {\"type\": \"subscribe\" | \"unsubscribe\", \"room\": \"event:{id}\"}",
        );
    };
    let (ClientMessage::Subscribe { room } | ClientMessage::Unsubscribe { room }) = &message;
    if !valid_event_room(room) {
        return error_frame("bad_room", "room must be event:{event_id}");
    }
    let room = room.clone();
    match message {
        ClientMessage::Subscribe { .. } => {
            state.hub.join(id, &room);
            ServerMessage::Subscribed { room }.to_frame()
        }
        ClientMessage::Unsubscribe { .. } => {
            state.hub.leave(id, &room);
            ServerMessage::Unsubscribed { room }.to_frame()
        }
    }
}

async fn connection(mut socket: WebSocket, state: WsState, claims: AccessClaims) {
    let (tx, mut rx) = mpsc::channel::<Frame>(state.config.client_buffer.max(1));
    let id = state.hub.connect(format!("user:{}", claims.sub), tx);
    let expires = Instant::now()
        + Duration::from_secs(
            claims
                .exp
                .saturating_sub(chrono::Utc::now().timestamp().max(0) as u64),
        );
    let mut heartbeat = tokio::time::interval(state.config.heartbeat);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_seen = Instant::now();
    let close = loop {
        tokio::select! {
            frame = rx.recv() => match frame {
                Some(frame) => {
                    if socket.send(Message::Text(Utf8Bytes::from(frame.as_ref()))).await.is_err() {
                        break None;
                    }
                }
                // The hub dropped us (too slow): say why and go.
                None => break Some((1008, "too slow: frames were not read in time")),
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    last_seen = Instant::now();
                    let reply = handle_client_text(&state, id, text.as_str());
                    if socket.send(Message::Text(reply.into())).await.is_err() {
                        break None;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                Some(Ok(_)) => last_seen = Instant::now(), // pong, ping, binary
            },
            _ = heartbeat.tick() => {
                if last_seen.elapsed() > state.config.idle_timeout {
                    break Some((1001, "idle timeout"));
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break None;
                }
            }
            _ = tokio::time::sleep_until(expires) => break Some((4001, "token expired")),
        }
    };
    state.hub.disconnect(id);
    if let Some((code, reason)) = close {
        let _ = socket
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_event_rooms_with_uuids_are_joinable() {
        assert!(valid_event_room(
            "event:2f6c1a3e-0d3b-4d7a-9f77-2b9c0f3c7a10"
        ));
        assert!(!valid_event_room("event:nope"));
        assert!(!valid_event_room(
            "user:2f6c1a3e-0d3b-4d7a-9f77-2b9c0f3c7a10"
        ));
        assert!(!valid_event_room("event:"));
    }
}
