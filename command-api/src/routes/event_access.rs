//! Who may see an event's private figures: the write-side event (current, not a read model)
//! checked against the caller, with the statuses of API.md's roles table.

use domain::show::{Show, ShowStatus};
use domain::user::Role;
use uuid::Uuid;

use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::state::AppState;

/// The event from the write side; a draft is visible to its organizer and admins only (404
/// to anyone else, as if it did not exist).
pub async fn visible_show(
    state: &AppState,
    caller: &Caller,
    event_id: Uuid,
) -> Result<Show, ApiError> {
    let (show, _) = state
        .shows
        .current(&event_id.to_string())
        .await
        .map_err(|e| ApiError::internal(anyhow::Error::new(e)))?;
    let private = show.status == ShowStatus::Draft
        && show.organizer_id != Some(caller.user_id)
        && !caller.has(Role::Admin);
    if !show.exists() || private {
        return Err(ApiError::NotFound("no such event".into()));
    }
    Ok(show)
}

/// The event, for its organizer or an admin: 403 without the organizer role or for someone
/// else's published event.
pub async fn owned_show(
    state: &AppState,
    caller: &Caller,
    event_id: Uuid,
) -> Result<Show, ApiError> {
    caller.require_organizer()?;
    let show = visible_show(state, caller, event_id).await?;
    if show.organizer_id != Some(caller.user_id) && !caller.has(Role::Admin) {
        return Err(ApiError::Forbidden(
            "only the event's organizer sees its figures".into(),
        ));
    }
    Ok(show)
}
