//! `POST`, `GET` and `DELETE /api/events/{event_id}/waitlist`: the caller's place on a
//! sold-out event's waiting list. Joining is one unit over the list and every section of the
//! event, declared so the append checks them: "nothing is available" is judged on the same
//! states the join is stored on. The saga makes the offers (`saga_orchestrator::waitlist`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use domain::FieldError;
use domain::inventory::inventory_id;
use domain::waitlist::{
    EntryStatus, MAX_WAITLIST_QUANTITY, Waitlist, WaitlistCommand, WaitlistError,
};
use plumbing::store::{Unit, UnitError};
use schemas::api::waitlist::{JoinWaitlistRequest, WaitlistEntryResponse, WaitlistStatus};
use uuid::Uuid;

use crate::http::auth::Caller;
use crate::http::consistency::Written;
use crate::http::context::RequestContext;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path};
use crate::http::store_error::from_persistence;
use crate::routes::event_access::visible_show;
use crate::state::AppState;

pub async fn join(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    Path(event_id): Path<Uuid>,
    Json(body): Json<JoinWaitlistRequest>,
) -> Result<impl IntoResponse, ApiError> {
    if !(1..=MAX_WAITLIST_QUANTITY).contains(&body.quantity) {
        return Err(ApiError::Validation(vec![FieldError::new(
            "quantity",
            format!("1 to {MAX_WAITLIST_QUANTITY} places"),
        )]));
    }
    let show = visible_show(&state, &caller, event_id).await?;
    let now = Utc::now();
    if !show.on_sale(now) {
        return Err(ApiError::conflict("the event is not on sale"));
    }
    let user_id = caller.user_id;
    let mut unit = Unit::new(&ctx.metadata(Some(user_id)));
    let sections: Vec<_> = show
        .sections
        .iter()
        .map(|section| {
            let id = inventory_id(event_id, section.section_id());
            (unit.stream(&state.inventory, &id), section.clone())
        })
        .collect();
    let list = unit.stream(&state.waitlists, &event_id.to_string());
    let quantity = body.quantity;
    let committed = unit
        .run(move |d| {
            let free: u64 = sections
                .iter()
                .map(|(stream, section)| u64::from(d.state(stream).available_in(section, now)))
                .sum();
            let join = WaitlistCommand::Join {
                show_id: event_id,
                user_id,
                quantity,
                sold_out: free == 0,
                now,
            };
            d.execute(&list, join)?;
            Ok(answer(d.state(&list), user_id))
        })
        .await
        .map_err(|err| match err {
            UnitError::Rejected(WaitlistError::PlacesAvailable) => ApiError::conflict(
                "places are available for this event: book them instead of waiting",
            ),
            UnitError::Rejected(e) => ApiError::conflict(e.to_string()),
            UnitError::Contended => {
                ApiError::Unavailable("the event's waiting list is busy; retry shortly".into())
            }
            UnitError::Store(e) => from_persistence(e),
        })?;
    let entry = committed
        .value
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("a joined entry is missing")))?;
    Ok((
        StatusCode::CREATED,
        Written(committed.position),
        Json(entry),
    ))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<Uuid>,
) -> Result<Json<WaitlistEntryResponse>, ApiError> {
    let (list, _) = state
        .waitlists
        .current(&event_id.to_string())
        .await
        .map_err(from_persistence)?;
    answer(&list, caller.user_id)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("not on this event's waiting list".into()))
}

pub async fn leave(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    Path(event_id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let user_id = caller.user_id;
    let mut unit = Unit::new(&ctx.metadata(Some(user_id)));
    let list = unit.stream(&state.waitlists, &event_id.to_string());
    let committed = unit
        .run(move |d| {
            d.execute(
                &list,
                WaitlistCommand::Leave {
                    user_id,
                    now: Utc::now(),
                },
            )
        })
        .await
        .map_err(|err| match err {
            UnitError::Rejected(e) => ApiError::NotFound(e.to_string()),
            UnitError::Contended => {
                ApiError::Unavailable("the event's waiting list is busy; retry shortly".into())
            }
            UnitError::Store(e) => from_persistence(e),
        })?;
    Ok((StatusCode::NO_CONTENT, Written(committed.position)))
}

/// The caller's entry as the API shows it.
fn answer(list: &Waitlist, user_id: Uuid) -> Option<WaitlistEntryResponse> {
    let entry = list.entry(user_id)?;
    let status = match entry.status {
        EntryStatus::Waiting => WaitlistStatus::Waiting,
        EntryStatus::Offered { .. } | EntryStatus::Accepted { .. } => WaitlistStatus::Offered,
        EntryStatus::Lapsed { .. } => WaitlistStatus::Expired,
    };
    Some(WaitlistEntryResponse {
        position: list.position(user_id),
        status,
        booking_id: entry.status.booking_id(),
        quantity: entry.quantity,
    })
}
