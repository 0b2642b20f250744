//! `POST /api/auth/register` and `POST /api/auth/login`, served from the write side so login
//! works the moment register has answered.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::header::USER_AGENT;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use chrono::Utc;
use domain::rules::{self, Checks, MAX_STRING};
use domain::user::{Role, UserCommand, UserError, user_id_for_email};
use schemas::api::users::{LoginRequest, RegisterRequest, RegisterResponse, TokenResponse};
use uuid::Uuid;

use crate::http::consistency::Written;
use crate::http::context::RequestContext;
use crate::http::error::ApiError;
use crate::http::extract::Json;
use crate::http::lockout::ClientAddress;
use crate::http::store_error::from_execute;
use crate::sessions;
use crate::state::AppState;

pub async fn register(
    State(state): State<AppState>,
    ctx: RequestContext,
    Json(body): Json<RegisterRequest>,
) -> Result<impl IntoResponse, ApiError> {
    Checks::new()
        .email("email", body.email.trim())
        .password("password", &body.password)
        .text("name", &body.name, MAX_STRING)
        .finish()
        .map_err(ApiError::Validation)?;
    let email = rules::normalize_email(&body.email);
    let user_id = user_id_for_email(&email);
    let password_hash = state.passwords.hash(body.password).await?;
    let executed = state
        .users
        .execute(
            &user_id.to_string(),
            UserCommand::Register {
                user_id,
                email,
                name: body.name.trim().to_owned(),
                password_hash,
                now: Utc::now(),
            },
            &ctx.metadata(Some(user_id)),
        )
        .await
        .map_err(|e| {
            from_execute(e, |e| match e {
                UserError::EmailTaken => {
                    ApiError::conflict("an account with this email already exists")
                }
                other => ApiError::unprocessable(other.to_string()),
            })
        })?;
    Ok((
        StatusCode::CREATED,
        Written(executed.position()),
        Json(RegisterResponse { user_id }),
    ))
}

pub async fn login(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    Json(body): Json<LoginRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let email = rules::normalize_email(&body.email);
    if email.is_empty() || email.len() > rules::MAX_EMAIL || body.password.len() > 1024 {
        return Err(invalid_credentials());
    }
    state.limits.logins.check(&email, client)?;
    let (user, _) = state
        .users
        .load(&user_id_for_email(&email).to_string())
        .await
        .map_err(|e| ApiError::internal(anyhow::Error::new(e)))?;
    let stored = user.is_registered().then(|| user.password_hash.clone());
    if !state.passwords.verify(body.password, stored).await? {
        state.limits.logins.failed(&email, client)?;
        return Err(invalid_credentials());
    }
    state.limits.logins.succeeded(&email, client);
    let user_id = user.user_id.ok_or_else(invalid_credentials)?;
    let (session_id, refresh_token) = sessions::open(&state.pool, user_id, agent(&headers)).await?;
    tokens(&state, user_id, &user.roles, session_id, refresh_token).map(Json)
}

/// The `User-Agent` a session remembers.
pub fn agent(headers: &HeaderMap) -> Option<&str> {
    headers.get(USER_AGENT).and_then(|v| v.to_str().ok())
}

/// Login's answer: a new access token in `session_id` and the session's refresh token.
pub fn tokens(
    state: &AppState,
    user_id: Uuid,
    roles: &BTreeSet<Role>,
    session_id: Uuid,
    refresh_token: String,
) -> Result<TokenResponse, ApiError> {
    let now = Utc::now().timestamp().max(0) as u64;
    let access_token = state.jwt.issue(user_id, roles, session_id, now)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: state.jwt.ttl().as_secs(),
        refresh_token,
        session_id,
    })
}

/// One message for a wrong email and a wrong password, so accounts cannot be enumerated.
fn invalid_credentials() -> ApiError {
    ApiError::Unauthorized("wrong email or password".into())
}
