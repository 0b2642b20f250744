//! `GET /ws`: the WebSocket endpoint. The token (`Authorization: Bearer` or `?token=`) is
//! checked before the upgrade (401 otherwise), and the `Origin`, when present, must be in
//! `WS_ALLOWED_ORIGINS` (403), and a user may hold at most `WS_MAX_CONNECTIONS_PER_USER`
//! connections (429). The upgraded socket is served by `connection`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::show::Show;
use hyper::upgrade::OnUpgrade;
use plumbing::jwt::TokenVerifier;
use plumbing::store::AggregateStore;
use serde::Deserialize;
use serde_json::json;

use crate::rooms::Hub;

pub struct WsConfig {
    pub verifier: TokenVerifier,
    /// Allowed `Origin` values; empty allows any.
    pub allowed_origins: Vec<String>,
    pub heartbeat: Duration,
    pub idle_timeout: Duration,
    /// A write (with the frames gathered into it) not done by then drops the client.
    pub send_timeout: Duration,
    /// Event rooms one connection may be in.
    pub max_subscriptions: usize,
    pub client_messages_per_second: u32,
    pub client_messages_burst: u32,
}

#[derive(Clone)]
pub struct WsState {
    pub hub: Arc<Hub>,
    pub config: Arc<WsConfig>,
    pub user_connections: Arc<crate::per_user::UserConnections>,
    /// Events, to check that a room to join names one the caller may see.
    pub shows: AggregateStore<Show>,
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

fn refuse(status: StatusCode, detail: &str) -> Response {
    let slug = match status {
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::TOO_MANY_REQUESTS => "rate-limited",
        StatusCode::BAD_REQUEST => "bad-request",
        _ => "forbidden",
    };
    let body = json!({"type": format!("/problems/{slug}"),
                      "title": status.canonical_reason().unwrap_or("Error"), "status": status.as_u16(), "detail": detail});
    let mut response = (status, axum::Json(body)).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        // A connection of the user has to close first; a few seconds is a fair retry.
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/problem+json"),
    );
    response
}

pub async fn upgrade(
    State(state): State<WsState>,
    Query(query): Query<TokenQuery>,
    mut request: Request,
) -> Response {
    let headers = request.headers();
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
    let Some(accept) = handshake_accept(headers) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "this endpoint speaks WebSocket only",
        );
    };
    let Some(on_upgrade) = request.extensions_mut().remove::<OnUpgrade>() else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "this connection cannot be upgraded",
        );
    };
    let Some(slot) = state.user_connections.acquire(claims.sub) else {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "too many open connections for this user; close one first",
        );
    };
    // The connection's one task: the upgraded socket is served here with tungstenite's frame
    // codec, without its per-connection buffers (see `wire`).
    tokio::spawn(async move {
        let _slot = slot;
        if let Ok(upgraded) = on_upgrade.await {
            crate::connection::run(upgraded, state, claims).await;
        }
    });
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::CONNECTION, HeaderValue::from_static("upgrade")),
            (header::UPGRADE, HeaderValue::from_static("websocket")),
            (header::SEC_WEBSOCKET_ACCEPT, accept),
        ],
    )
        .into_response()
}

/// The `Sec-WebSocket-Accept` answering a valid WebSocket (version 13) upgrade request
/// (RFC 6455, section 4.2; the key derived by tungstenite), `None` when the request is not one.
fn handshake_accept(headers: &HeaderMap) -> Option<HeaderValue> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(header::CONNECTION, "upgrade")
        || !has_token(header::UPGRADE, "websocket")
        || headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .map(HeaderValue::as_bytes)
            != Some(b"13")
    {
        return None;
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?;
    HeaderValue::from_str(&tungstenite::handshake::derive_accept_key(key.as_bytes())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_the_handshake_of_rfc_6455() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        headers.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        // The example of RFC 6455, section 1.3.
        assert_eq!(
            handshake_accept(&headers),
            Some(HeaderValue::from_static("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="))
        );
        headers.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
        assert_eq!(handshake_accept(&headers), None);
    }
}
