//! Catalogue queries, from the read models: the event list, event details and availability.
//! Drafts are private to their organizer (and admins): to anyone else they do not exist.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use domain::show::ShowStatus;
use domain::user::Role;
use plumbing::position::ReadModel;
use projections::models::catalog::Show;
use projections::models::{availability, catalog};
use schemas::api::events::{
    Availability, AvailabilityQuery, EventListQuery, EventPage, EventSummary,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::http::auth::{Caller, bearer};
use crate::http::consistency::MinPosition;
use crate::http::error::ApiError;
use crate::http::extract::page_window;
use crate::http::extract::{Json, Path, Query};
use crate::state::AppState;

const CATALOG_MODEL: ReadModel = catalog::NAME;
const AVAILABILITY_MODEL: ReadModel = availability::NAME;

/// Drafts are private to their organizer and admins.
fn visible_to(show: &Show, caller: Option<&Caller>) -> bool {
    show.status() != ShowStatus::Draft
        || caller.is_some_and(|c| c.user_id == show.organizer_id || c.has(Role::Admin))
}

/// The caller if a valid token was sent; anonymous otherwise. A token that is present but
/// invalid is still a 401, so clients learn their token expired.
fn optional_caller(state: &AppState, headers: &HeaderMap) -> Result<Option<Caller>, ApiError> {
    let Some(token) = bearer(headers) else {
        if headers.contains_key(header::AUTHORIZATION) {
            return Err(ApiError::Unauthorized(
                "a bearer access token is required".into(),
            ));
        }
        return Ok(None);
    };
    let claims = state.jwt.verify(token)?;
    Ok(Some(Caller {
        user_id: claims.sub,
        roles: claims.roles.into_iter().collect(),
        session_id: claims.sid,
    }))
}

pub async fn list_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    min: MinPosition,
    Query(query): Query<EventListQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let (limit, offset) = page_window(query.page, query.per_page)?;
    let caller = optional_caller(&state, &headers)?;
    let freshness = min.wait(&state.pool, &[CATALOG_MODEL]).await?;
    let rows = if query.mine {
        let caller = caller
            .ok_or_else(|| ApiError::Unauthorized("mine=true needs a bearer token".into()))?;
        caller.require_organizer()?;
        catalog::of_organizer(&state.pool, caller.user_id, limit, offset).await?
    } else {
        catalog::published(&state.pool, limit, offset).await?
    };
    let more = rows.len() as i64 == limit;
    let items: Vec<EventSummary> = rows
        .into_iter()
        .take(query.per_page as usize)
        .map(Show::summary)
        .collect();
    Ok((
        freshness,
        Json(EventPage {
            items,
            page: query.page,
            next_page: more.then_some(query.page + 1),
        }),
    ))
}

async fn visible_show(
    state: &AppState,
    headers: &HeaderMap,
    event_id: Uuid,
) -> Result<Show, ApiError> {
    let caller = optional_caller(state, headers)?;
    let row = catalog::show(&state.pool, event_id).await?;
    row.filter(|r| visible_to(r, caller.as_ref()))
        .ok_or_else(|| ApiError::NotFound("no such event".into()))
}

pub async fn get_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    min: MinPosition,
    Path(event_id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let freshness = min.wait(&state.pool, &[CATALOG_MODEL]).await?;
    let show = visible_show(&state, &headers, event_id).await?;
    Ok((freshness, Json(show.detail())))
}

pub async fn availability(
    State(state): State<AppState>,
    headers: HeaderMap,
    min: MinPosition,
    Path(event_id): Path<Uuid>,
    Query(query): Query<AvailabilityQuery>,
) -> Result<Response, ApiError> {
    let freshness = min
        .wait(&state.pool, &[CATALOG_MODEL, AVAILABILITY_MODEL])
        .await?;
    let show = visible_show(&state, &headers, event_id).await?;
    let only = query.section_id.as_deref();
    if let Some(id) = only
        && !show.sections().iter().any(|s| s.section_id() == id)
    {
        return Err(ApiError::NotFound("no such section".into()));
    }
    let mut conn = state.pool.acquire().await?;
    let out =
        availability::sections(&mut conn, event_id, show.sections(), only, Utc::now()).await?;
    let body = serde_json::to_vec(&Availability {
        event_id,
        sections: out,
    })
    .map_err(ApiError::internal)?;
    let etag = format!(
        "\"{}\"",
        Sha256::digest(&body)
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let etag_value = HeaderValue::from_str(&etag).map_err(ApiError::internal)?;
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response()
    };
    response.headers_mut().insert(header::ETAG, etag_value);
    Ok((freshness, response).into_response())
}
