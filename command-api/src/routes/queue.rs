//! The virtual waiting room (API.md): joining, one's place, and the organizer's figures. The
//! queue itself lives in the `waiting-room` crate; these handlers check the event on the
//! write side (it must be published with `queue.enabled`) and who is asking.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use domain::show::{Show, ShowStatus};
use uuid::Uuid;
use waiting_room::RoomSettings;

use super::event_access::{owned_show, visible_show};
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path};
use crate::state::AppState;

/// `POST /api/events/{event_id}/queue` → 201 with the caller's place (the same place when
/// they are already waiting; their admission when admitted; a new place at the back when
/// their admission expired).
pub async fn join(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let show = visible_show(&state, &caller, event_id).await?;
    let settings = room_settings(&show)?;
    let place = state
        .joiner
        .join(event_id, caller.user_id, settings)
        .await
        .map_err(|err| {
            tracing::warn!(error = format!("{err:#}"), "cannot join a queue");
            ApiError::Unavailable("the waiting room is busy; try again".into())
        })?;
    Ok((StatusCode::CREATED, Json(place)))
}

/// `GET /api/events/{event_id}/queue` → the caller's place; 404 when not in the queue.
pub async fn place(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let place = waiting_room::places::place(&state.pool, event_id, caller.user_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("you are not in this event's waiting room".into()))?;
    Ok(Json(place))
}

/// `GET /api/events/{event_id}/queue/stats` → the queue's figures, for the event's
/// organizer and admins.
pub async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let show = owned_show(&state, &caller, event_id).await?;
    let settings = show
        .queue
        .as_ref()
        .filter(|q| q.enabled)
        .ok_or_else(|| ApiError::NotFound("this event has no waiting room".into()))?;
    let stats = waiting_room::places::stats(&state.pool, event_id)
        .await?
        .unwrap_or(schemas::api::queue::QueueStats {
            event_id,
            waiting: 0,
            admitted: 0,
            expired: 0,
            joined_total: 0,
            admitted_total: 0,
            admit_per_minute: settings.admit_per_minute,
            admitted_last_minute: 0,
        });
    Ok(Json(stats))
}

/// The queue settings of a published, queue-enabled event whose sales have not closed.
fn room_settings(show: &Show) -> Result<RoomSettings, ApiError> {
    let queue = show
        .queue
        .as_ref()
        .filter(|q| q.enabled)
        .ok_or_else(|| ApiError::unprocessable("this event has no waiting room"))?;
    let (ShowStatus::Published, Some(open), Some(close)) =
        (show.status, show.sales_open_at, show.sales_close_at)
    else {
        return Err(ApiError::unprocessable("this event is not on sale"));
    };
    if Utc::now() >= close {
        return Err(ApiError::unprocessable("sales for this event have closed"));
    }
    Ok(RoomSettings {
        admit_per_minute: queue.admit_per_minute,
        admission_minutes: queue.admission_minutes,
        admit_from: open,
        admit_until: close,
    })
}
