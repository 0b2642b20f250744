//! `pay` and `cancel` on a booking. Paying extends the booking's holds to the payment
//! deadline (so nobody takes the seats while the provider answers) and records the payment
//! request; the saga charges the provider and settles. Cancelling a held or pending booking
//! cancels it (the saga releases the seats); cancelling a confirmed one asks for a refund.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use domain::booking::{Booking, BookingCommand, BookingError, BookingStatus, CancelReason};
use domain::inventory::{InventoryCommand, InventoryError, inventory_id};
use domain::rules::{Checks, MAX_STRING};
use plumbing::position::Position;
use plumbing::store::ExecuteError;
use schemas::api::bookings::{BookingStatusResponse, PayRequest};
use serde_json::json;
use uuid::Uuid;

use crate::http::auth::Caller;
use crate::http::consistency::Written;
use crate::http::context::RequestContext;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path};
use crate::http::store_error::from_execute;
use crate::state::AppState;

/// The caller's booking, or 404 (another user's booking does not exist for them).
pub async fn own_booking(
    state: &AppState,
    caller: &Caller,
    booking_id: Uuid,
) -> Result<Booking, ApiError> {
    let (booking, _) = state
        .bookings
        .load(&booking_id.to_string())
        .await
        .map_err(|e| ApiError::internal(anyhow::Error::new(e)))?;
    if booking.exists() && booking.user_id == Some(caller.user_id) {
        Ok(booking)
    } else {
        Err(ApiError::NotFound("no such booking".into()))
    }
}

pub fn booking_error(err: BookingError) -> ApiError {
    match err {
        BookingError::UnknownBooking => ApiError::NotFound("no such booking".into()),
        BookingError::NotAllowed(status) => ApiError::Conflict {
            detail: err.to_string(),
            extensions: serde_json::Map::from_iter([("booking_status".to_owned(), json!(status))]),
        },
        BookingError::WrongSize => ApiError::unprocessable(err.to_string()),
        other => ApiError::conflict(other.to_string()),
    }
}

pub async fn pay(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    Path(booking_id): Path<Uuid>,
    Json(body): Json<PayRequest>,
) -> Result<impl IntoResponse, ApiError> {
    Checks::new()
        .text("payment_token", &body.payment_token, MAX_STRING)
        .finish()
        .map_err(ApiError::Validation)?;
    let booking = own_booking(&state, &caller, booking_id).await?;
    if booking.status != BookingStatus::Held {
        return Err(booking_error(BookingError::NotAllowed(booking.status)));
    }
    let now = Utc::now();
    let deadline = now + state.payment_timeout;
    let meta = ctx.metadata(Some(caller.user_id));
    let show_id = booking
        .show_id
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("booking without show")))?;
    let mut position = Position::default();
    for section_id in booking.section_ids() {
        let extended = state
            .inventory
            .execute(
                &inventory_id(show_id, &section_id),
                InventoryCommand::ExtendHold {
                    booking_id,
                    expires_at: deadline,
                    now,
                },
                &meta,
            )
            .await;
        match extended {
            Ok(executed) => position = position.merge(executed.position()),
            Err(ExecuteError::Rejected(InventoryError::HoldLapsed | InventoryError::NoHold)) => {
                return Err(booking_error(BookingError::HoldExpired));
            }
            Err(err) => return Err(from_execute(err, |e| ApiError::conflict(e.to_string()))),
        }
    }
    let executed = state
        .bookings
        .execute(
            &booking_id.to_string(),
            BookingCommand::RequestPayment {
                payment_id: Uuid::new_v4(),
                payment_token: body.payment_token.trim().to_owned(),
                payment_deadline: deadline,
                now,
            },
            &meta,
        )
        .await
        .map_err(|e| from_execute(e, booking_error))?;
    Ok((
        StatusCode::ACCEPTED,
        Written(position.merge(executed.position())),
        Json(BookingStatusResponse {
            booking_id,
            status: executed.state.status,
        }),
    ))
}

pub async fn cancel_booking(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    Path(booking_id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let booking = own_booking(&state, &caller, booking_id).await?;
    let now = Utc::now();
    let command = match booking.status {
        BookingStatus::Held | BookingStatus::PaymentPending => BookingCommand::Cancel {
            reason: CancelReason::UserRequested,
            detail: "cancelled by the buyer".into(),
            now,
        },
        BookingStatus::Confirmed => {
            let show_id = booking.show_id.unwrap_or_default();
            let (show, _) = state
                .shows
                .current(&show_id.to_string())
                .await
                .map_err(|e| ApiError::internal(anyhow::Error::new(e)))?;
            BookingCommand::RequestRefund {
                reason: CancelReason::UserRequested,
                starts_at: show.starts_at.unwrap_or(now),
                now,
            }
        }
        other => return Err(booking_error(BookingError::NotAllowed(other))),
    };
    let executed = state
        .bookings
        .execute(
            &booking_id.to_string(),
            command,
            &ctx.metadata(Some(caller.user_id)),
        )
        .await
        .map_err(|e| from_execute(e, booking_error))?;
    Ok((
        StatusCode::ACCEPTED,
        Written(executed.position()),
        Json(BookingStatusResponse {
            booking_id,
            status: executed.state.status,
        }),
    ))
}
