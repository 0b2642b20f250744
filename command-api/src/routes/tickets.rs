//! `GET /api/tickets` (the caller's tickets with their signed codes) and `POST /api/checkin`
//! (staff, admins, or the organizer of the event). Check-in decides on the booking aggregate,
//! so a second scan is refused even when two doors scan at once.

use axum::extract::State;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use domain::booking::ticket::ticket_id;
use domain::booking::{BookingCommand, BookingError};
use domain::user::Role;
use projections::models::bookings;
use schemas::api::bookings::{CheckInRequest, CheckInResponse, TicketView};
use serde_json::json;

use crate::http::auth::Caller;
use crate::http::consistency::{MinPosition, Written};
use crate::http::context::RequestContext;
use crate::http::error::ApiError;
use crate::http::extract::Json;
use crate::http::store_error::from_execute;
use crate::routes::booking_queries::BOOKINGS_MODEL;
use crate::state::AppState;

pub async fn list_tickets(
    State(state): State<AppState>,
    caller: Caller,
    min: MinPosition,
) -> Result<impl IntoResponse, ApiError> {
    let freshness = min.wait(&state.pool, &[BOOKINGS_MODEL]).await?;
    let rows = bookings::tickets(&state.pool, caller.user_id).await?;
    let tickets: Vec<TicketView> = rows
        .into_iter()
        .map(|r| TicketView {
            status: r.status(),
            code: state.ticket_codes.sign(
                r.event_id,
                r.booking_id,
                u8::try_from(r.idx).unwrap_or(u8::MAX),
            ),
            ticket_id: r.ticket_id,
            booking_id: r.booking_id,
            event_id: r.event_id,
            seat_id: r.seat_id,
            section_id: r.section_id,
        })
        .collect();
    Ok((freshness, Json(tickets)))
}

pub async fn check_in(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    Json(body): Json<CheckInRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let staff = caller.has(Role::Staff) || caller.has(Role::Admin);
    if !staff {
        if !caller.has(Role::Organizer) {
            return Err(ApiError::Forbidden(
                "check-in needs the staff or organizer role".into(),
            ));
        }
        let (show, _) = state
            .shows
            .current(&body.event_id.to_string())
            .await
            .map_err(|e| ApiError::internal(anyhow::Error::new(e)))?;
        if show.organizer_id != Some(caller.user_id) {
            return Err(ApiError::Forbidden(
                "only the event's organizer or staff check tickets in".into(),
            ));
        }
    }
    let forged = || ApiError::unprocessable("this code is not a ticket of this event");
    let (booking_id, index) = state
        .ticket_codes
        .verify(body.event_id, &body.code)
        .ok_or_else(forged)?;
    let ticket = ticket_id(booking_id, index);
    let executed = state
        .bookings
        .execute(
            &booking_id.to_string(),
            BookingCommand::CheckIn {
                ticket_id: ticket,
                now: Utc::now(),
            },
            &ctx.metadata(Some(caller.user_id)),
        )
        .await
        .map_err(|e| {
            from_execute(e, |e| match e {
                BookingError::AlreadyCheckedIn { at } => ApiError::Conflict {
                    detail: "this ticket was already checked in".into(),
                    extensions: serde_json::Map::from_iter([(
                        "checked_in_at".to_owned(),
                        json!(at),
                    )]),
                },
                BookingError::TicketVoid => ApiError::Conflict {
                    detail: "this ticket is void".into(),
                    // RFC 9457 reserves `status` for the HTTP status, so the ticket's status travels
                    // as `ticket_status` (see the OpenAPI document).
                    extensions: serde_json::Map::from_iter([(
                        "ticket_status".to_owned(),
                        json!("void"),
                    )]),
                },
                _ => forged(),
            })
        })?;
    if executed.state.show_id != Some(body.event_id) {
        return Err(forged());
    }
    let issued = executed
        .state
        .tickets
        .iter()
        .find(|t| t.ticket_id == ticket)
        .ok_or_else(forged)?;
    let checked_in_at: DateTime<Utc> = issued.checked_in_at.unwrap_or_else(Utc::now);
    Ok((
        Written(executed.position()),
        Json(CheckInResponse {
            ticket_id: ticket,
            seat_id: issued.seat_id.clone(),
            section_id: issued.section_id.clone(),
            checked_in_at,
        }),
    ))
}
