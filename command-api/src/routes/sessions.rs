//! `POST /api/auth/refresh`, `POST /api/auth/logout`, `GET /api/auth/sessions` and
//! `DELETE /api/auth/sessions/{session_id}`: the caller's sessions (see `crate::sessions`).
//! Access tokens stay stateless and short-lived (`JWT_TTL_SECONDS`): revoking a session
//! stops its refresh at once, and its access tokens within their remaining lifetime.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use schemas::api::users::{RefreshRequest, SessionView, TokenResponse};
use uuid::Uuid;

use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path};
use crate::routes::auth::{agent, tokens};
use crate::sessions::{self, Refreshed};
use crate::state::AppState;

pub async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<RefreshRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let refused = || ApiError::Unauthorized("the refresh token is not valid; sign in again".into());
    let Refreshed::Rotated {
        user_id,
        session_id,
        refresh_token,
    } = sessions::refresh(&state.pool, body.refresh_token.trim(), agent(&headers)).await?
    else {
        return Err(refused());
    };
    // Roles granted or removed since the login take effect here.
    let (user, _) = state
        .users
        .load(&user_id.to_string())
        .await
        .map_err(|e| ApiError::internal(anyhow::Error::new(e)))?;
    if !user.is_registered() {
        return Err(refused());
    }
    tokens(&state, user_id, &user.roles, session_id, refresh_token).map(Json)
}

pub async fn logout(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    // A token minted outside a login names no session: there is nothing to revoke.
    if let Some(session_id) = caller.session_id {
        sessions::revoke(&state.pool, caller.user_id, session_id).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    let rows = sessions::live(&state.pool, caller.user_id).await?;
    Ok(Json(
        rows.into_iter()
            .map(|s| SessionView {
                current: Some(s.session_id) == caller.session_id,
                session_id: s.session_id,
                created_at: s.created_at,
                last_used_at: s.last_used_at,
                user_agent: s.user_agent,
            })
            .collect(),
    ))
}

pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(session_id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    if sessions::revoke(&state.pool, caller.user_id, session_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("no such session".into()))
    }
}
