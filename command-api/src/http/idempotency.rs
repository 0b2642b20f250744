//! `Idempotency-Key` on state-changing requests, durable in PostgreSQL so it works across
//! restarts and instances. Scope: (caller, method, path, key). Same key and canonically equal
//! JSON body within 24 h → the first response (2xx/4xx, never 5xx or 429) is replayed with
//! `Idempotent-Replayed: true`; another body → 422; first request still running → 409.
//! Requests without a valid access token are never stored.
//!
//! A key is claimed with a lease before the handler runs; a process that dies mid-request
//! leaves the lease to expire, after which the key can be used again.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use sqlx::PgPool;

use super::auth::{JwtKeys, bearer};
use super::error::ApiError;
use super::extract::BODY_LIMIT;

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
const MAX_KEY_LEN: usize = 255;
/// How long a running request owns its key before another attempt may take it over.
const LEASE: Duration = Duration::from_secs(60);
/// Response headers worth replaying.
const KEPT_HEADERS: &[&str] = &["content-type", "location", "x-event-position", "etag"];

#[derive(Clone)]
pub struct IdempotencyState {
    pub pool: PgPool,
    pub jwt: Arc<JwtKeys>,
    /// Key of the request-body HMAC: stored hashes of bodies that contain passwords cannot
    /// be attacked offline without it.
    pub hash_key: Arc<Vec<u8>>,
}

/// Requests that change no state and whose answer must never be stored (access tokens).
const NOT_IDEMPOTENT_PATHS: &[&str] = &["/api/auth/login"];

struct Scope {
    caller: String,
    method: String,
    path: String,
    key: String,
}

pub async fn idempotency(
    State(state): State<IdempotencyState>,
    request: Request,
    next: Next,
) -> Response {
    match handle(state, request, next).await {
        Ok(response) | Err(response) => response,
    }
}

async fn handle(
    state: IdempotencyState,
    request: Request,
    next: Next,
) -> Result<Response, Response> {
    let applies = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let Some(key) = request.headers().get(&IDEMPOTENCY_KEY).cloned() else {
        return Ok(next.run(request).await);
    };
    if !applies || NOT_IDEMPOTENT_PATHS.contains(&request.uri().path()) {
        return Ok(next.run(request).await);
    }
    let key = key
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_LEN)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"
            ))
            .into_response()
        })?
        .to_owned();

    let (parts, body) = request.into_parts();
    // Only a signed-in caller's keys are stored. Anonymous requests (register, webhooks)
    // would share one scope, and anyone could fill the table with a row per random key;
    // they are safe to retry without one (API.md). A present but invalid token: the handler
    // answers 401 without touching keys.
    let Some(claims) = bearer(&parts.headers).and_then(|token| state.jwt.verify(token).ok()) else {
        return Ok(next.run(Request::from_parts(parts, body)).await);
    };
    let caller = format!("user:{}", claims.sub);
    let bytes = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| ApiError::PayloadTooLarge.into_response())?;
    let scope = Scope {
        caller,
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        key,
    };
    let hash = request_hash(&state.hash_key, &bytes);

    if let Some(replay) = claim(&state.pool, &scope, &hash)
        .await
        .map_err(IntoResponse::into_response)?
    {
        return Ok(replay);
    }

    // The handler and the recording of its response run in their own task: a client that
    // disconnects must not cancel them between the command's commit and the record, or a
    // retry with the same key would run the command again.
    let pool = state.pool.clone();
    let request = Request::from_parts(parts, Body::from(bytes));
    let task = tokio::spawn(async move {
        let response = next.run(request).await;
        record(&pool, &scope, response).await
    });
    task.await.map_err(|e| {
        ApiError::internal(anyhow::anyhow!("request task failed: {e}")).into_response()
    })
}

/// Stores a replayable response (2xx, 4xx other than 429) or frees the key.
async fn record(pool: &PgPool, scope: &Scope, response: Response) -> Response {
    let status = response.status();
    let keep = (status.is_success() || status.is_client_error())
        && status != StatusCode::TOO_MANY_REQUESTS;
    if !keep {
        release(pool, scope).await;
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(e) => {
            release(pool, scope).await;
            return ApiError::internal(anyhow::anyhow!("cannot buffer response: {e}"))
                .into_response();
        }
    };
    if let Err(err) = complete(pool, scope, status, &parts.headers, &bytes).await {
        // The effect happened; only the replay record is missing. Keep the key claimed (its
        // lease ends in a minute) rather than free it for an immediate second execution.
        tracing::warn!(error = %err, "cannot record idempotent response");
    }
    Response::from_parts(parts, Body::from(bytes))
}

#[derive(sqlx::FromRow)]
struct StoredKey {
    request_hash: String,
    state: String,
    status: Option<i16>,
    headers: Option<Value>,
    body: Option<Vec<u8>>,
}

/// Claims the key, or answers from an earlier request with it. `Ok(None)` = proceed.
async fn claim(pool: &PgPool, scope: &Scope, hash: &str) -> Result<Option<Response>, ApiError> {
    let lease = LEASE.as_secs_f64();
    // Fresh key, or a row older than 24 h (expired: the key may be reused).
    let claimed = sqlx::query(
        "INSERT INTO idempotency_keys (caller, method, path, key, request_hash, state, lease_until)
         VALUES ($1, $2, $3, $4, $5, 'running', now() + make_interval(secs => $6))
         ON CONFLICT (caller, method, path, key) DO UPDATE
            SET request_hash = EXCLUDED.request_hash, state = 'running',
                lease_until = EXCLUDED.lease_until, status = NULL, headers = NULL, body = NULL,
                created_at = now()
          WHERE idempotency_keys.created_at < now() - interval '24 hours'
             OR (idempotency_keys.state = 'running'
                 AND idempotency_keys.lease_until < now()
                 AND idempotency_keys.request_hash = EXCLUDED.request_hash)",
    )
    .bind(&scope.caller)
    .bind(&scope.method)
    .bind(&scope.path)
    .bind(&scope.key)
    .bind(hash)
    .bind(lease)
    .execute(pool)
    .await?
    .rows_affected()
        == 1;
    if claimed {
        return Ok(None);
    }

    let row: Option<StoredKey> = sqlx::query_as(
        "SELECT request_hash, state, status, headers, body FROM idempotency_keys
          WHERE caller = $1 AND method = $2 AND path = $3 AND key = $4",
    )
    .bind(&scope.caller)
    .bind(&scope.method)
    .bind(&scope.path)
    .bind(&scope.key)
    .fetch_optional(pool)
    .await?;
    let Some(StoredKey {
        request_hash: stored_hash,
        state,
        status,
        headers,
        body,
    }) = row
    else {
        // Deleted between the two statements (its first request failed): the client retries.
        return Err(ApiError::conflict(
            "a request with this Idempotency-Key was just abandoned; retry",
        ));
    };
    if stored_hash != hash {
        return Err(ApiError::unprocessable(
            "this Idempotency-Key was used with a different request body",
        ));
    }
    if state == "running" {
        return Err(ApiError::conflict(
            "a request with this Idempotency-Key is still being processed",
        ));
    }
    let status = status
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = Response::new(Body::from(body.unwrap_or_default()));
    *response.status_mut() = status;
    if let Some(Value::Object(map)) = headers {
        for (name, value) in map {
            if let (Ok(name), Some(Ok(value))) = (
                HeaderName::try_from(name.as_str()),
                value.as_str().map(HeaderValue::from_str),
            ) {
                response.headers_mut().insert(name, value);
            }
        }
    }
    response
        .headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    Ok(Some(response))
}

async fn complete(
    pool: &PgPool,
    scope: &Scope,
    status: StatusCode,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(), sqlx::Error> {
    let kept: serde_json::Map<String, Value> = KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            let value = headers.get(*name)?.to_str().ok()?;
            Some(((*name).to_owned(), Value::String(value.to_owned())))
        })
        .collect();
    sqlx::query(
        "UPDATE idempotency_keys SET state = 'done', status = $5, headers = $6, body = $7
          WHERE caller = $1 AND method = $2 AND path = $3 AND key = $4",
    )
    .bind(&scope.caller)
    .bind(&scope.method)
    .bind(&scope.path)
    .bind(&scope.key)
    .bind(status.as_u16() as i16)
    .bind(Value::Object(kept))
    .bind(body.as_ref())
    .execute(pool)
    .await?;
    Ok(())
}

/// Frees a key whose request ended in 5xx or 429, so a retry runs for real.
async fn release(pool: &PgPool, scope: &Scope) {
    let result = sqlx::query(
        "DELETE FROM idempotency_keys
          WHERE caller = $1 AND method = $2 AND path = $3 AND key = $4 AND state = 'running'",
    )
    .bind(&scope.caller)
    .bind(&scope.method)
    .bind(&scope.path)
    .bind(&scope.key)
    .execute(pool)
    .await;
    if let Err(err) = result {
        tracing::warn!(error = %err, "cannot release idempotency key; it frees itself when its lease ends");
    }
}

/// Deletes keys older than 24 hours; run periodically.
pub async fn purge_expired(pool: &PgPool) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'")
            .execute(pool)
            .await?
            .rows_affected(),
    )
}

/// SHA-256 of the body in canonical form: JSON with object keys sorted and no insignificant
/// whitespace, so `{"a":1,"b":2}` and `{ "b": 2, "a": 1 }` are the same request. Bodies that
/// are not JSON are hashed as they are.
fn request_hash(key: &[u8], body: &[u8]) -> String {
    let canonical = match serde_json::from_slice::<Value>(body) {
        Ok(value) => {
            let mut out = String::new();
            write_canonical(&value, &mut out);
            out.into_bytes()
        }
        Err(_) => body.to_vec(),
    };
    // HMAC takes keys of any length, so `new_from_slice` cannot fail.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(&canonical);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_and_whitespace_do_not_change_the_hash() {
        assert_eq!(
            request_hash(b"k", br#"{"a":1,"b":{"y":[1,2],"x":null}}"#),
            request_hash(b"k", br#"{ "b": {"x": null, "y": [1, 2]}, "a": 1 }"#)
        );
    }

    #[test]
    fn different_values_change_the_hash() {
        assert_ne!(
            request_hash(b"k", br#"{"a":1}"#),
            request_hash(b"k", br#"{"a":2}"#)
        );
        assert_ne!(
            request_hash(b"k", br#"[1,2]"#),
            request_hash(b"k", br#"[2,1]"#)
        );
        assert_ne!(
            request_hash(b"k", br#"{"a":1}"#),
            request_hash(b"j", br#"{"a":1}"#)
        );
    }
}
