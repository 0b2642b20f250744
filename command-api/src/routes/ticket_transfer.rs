//! `POST /api/tickets/{ticket_id}/transfer`: the holder reissues a ticket to another
//! registered user. One unit decides on the booking that owns the ticket and reads the
//! recipient's account stream, so "the recipient is registered" is checked as strongly as the
//! ticket's state; the old ticket turns void and the new one (a new code) is the
//! recipient's, all in one append.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use domain::booking::{Booking, BookingCommand, BookingError, BookingEvent, TicketStatus};
use domain::rules::{self, Checks};
use domain::user::{User, user_id_for_email};
use plumbing::store::{Unit, UnitError};
use projections::models::bookings;
use schemas::api::tickets::{TicketTransferResponse, TransferTicketRequest};
use serde_json::json;
use uuid::Uuid;

use crate::http::auth::Caller;
use crate::http::consistency::{MinPosition, Written};
use crate::http::context::RequestContext;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path};
use crate::routes::booking_queries::BOOKINGS_MODEL;
use crate::routes::bookings::booking_error;
use crate::state::AppState;

/// Why a transfer was refused.
enum Refusal {
    Booking(BookingError),
    UnknownRecipient,
}

pub async fn transfer(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    min: MinPosition,
    Path(ticket_id): Path<Uuid>,
    Json(body): Json<TransferTicketRequest>,
) -> Result<impl IntoResponse, ApiError> {
    Checks::new()
        .email("email", body.email.trim())
        .finish()
        .map_err(ApiError::Validation)?;
    let not_found = || ApiError::NotFound("no such ticket".into());
    // The ticket's booking and event never change, so the read model is a safe index; who
    // holds the ticket is decided on the booking itself.
    min.wait(&state.pool, &[BOOKINGS_MODEL]).await?;
    let (booking_id, event_id) = bookings::ticket_booking(&state.pool, ticket_id)
        .await?
        .ok_or_else(not_found)?;
    // A booked show is published, and a published show's start never changes.
    let (show, _) = state
        .shows
        .cached(&event_id.to_string(), Duration::MAX, |s| {
            s.starts_at.is_some()
        })
        .await
        .map_err(|e| ApiError::internal(anyhow::Error::new(e)))?;
    let now = Utc::now();
    let recipient = user_id_for_email(&rules::normalize_email(&body.email));
    let command = BookingCommand::TransferTicket {
        ticket_id,
        from_user_id: caller.user_id,
        to_user_id: recipient,
        max_transfers: state.ticket_max_transfers,
        starts_at: show.starts_at.unwrap_or(now),
        now,
    };

    let mut unit = Unit::new(&ctx.metadata(Some(caller.user_id)));
    let booking = unit.stream::<Booking>(&state.bookings, &booking_id.to_string());
    let user = unit.stream::<User>(&state.users, &recipient.to_string());
    let committed = unit
        .run(move |d| {
            if !d.state(&user).is_registered() {
                return Err(Refusal::UnknownRecipient);
            }
            let events = d
                .execute(&booking, command.clone())
                .map_err(Refusal::Booking)?;
            Ok(events.into_iter().find_map(|e| match e {
                BookingEvent::TicketTransferred { new_ticket, .. } => Some(new_ticket.ticket_id),
                _ => None,
            }))
        })
        .await
        .map_err(|err| match err {
            UnitError::Rejected(Refusal::UnknownRecipient) => {
                ApiError::Validation(vec![domain::FieldError::new(
                    "email",
                    "no registered user has this email",
                )])
            }
            UnitError::Rejected(Refusal::Booking(e)) => transfer_error(e),
            UnitError::Contended => {
                ApiError::Unavailable("the resource is busy; retry shortly".into())
            }
            UnitError::Store(e) => ApiError::internal(anyhow::Error::new(e)),
        })?;
    let new_ticket_id = committed.value.ok_or_else(|| {
        ApiError::internal(anyhow::anyhow!("a transfer wrote no TicketTransferred"))
    })?;
    Ok((
        StatusCode::ACCEPTED,
        Written(committed.position),
        Json(TicketTransferResponse {
            ticket_id,
            status: TicketStatus::Void,
            new_ticket_id,
        }),
    ))
}

fn transfer_error(err: BookingError) -> ApiError {
    match err {
        BookingError::UnknownTicket | BookingError::NotTheHolder => {
            ApiError::NotFound("no such ticket".into())
        }
        BookingError::TransferToSelf => {
            ApiError::Validation(vec![domain::FieldError::new("email", err.to_string())])
        }
        BookingError::TicketVoid => ApiError::Conflict {
            detail: "this ticket is void".into(),
            extensions: serde_json::Map::from_iter([("ticket_status".to_owned(), json!("void"))]),
        },
        BookingError::TransferLimit { max } => ApiError::Conflict {
            detail: err.to_string(),
            extensions: serde_json::Map::from_iter([("max_transfers".to_owned(), json!(max))]),
        },
        other => booking_error(other),
    }
}
