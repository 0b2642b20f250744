//! The caller's bookings, from the `bookings` read model (honouring `X-Min-Position`).

use axum::extract::State;
use axum::response::IntoResponse;
use domain::money::Money;
use plumbing::position::ReadModel;
use projections::models::bookings;
use schemas::api::bookings::{BookingPage, BookingView, PageQuery};
use uuid::Uuid;

use crate::http::auth::Caller;
use crate::http::consistency::MinPosition;
use crate::http::error::ApiError;
use crate::http::extract::page_window;
use crate::http::extract::{Json, Path, Query};
use crate::state::AppState;

pub const BOOKINGS_MODEL: ReadModel = bookings::NAME;

pub async fn get_booking(
    State(state): State<AppState>,
    caller: Caller,
    min: MinPosition,
    Path(booking_id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let freshness = min.wait(&state.pool, &[BOOKINGS_MODEL]).await?;
    let booking = match bookings::booking(&state.pool, booking_id, caller.user_id).await? {
        Some(booking) => booking,
        // Not projected yet: answer from the write side (still only the owner's).
        None => {
            let (b, _) = state
                .bookings
                .load(&booking_id.to_string())
                .await
                .map_err(|e| ApiError::internal(anyhow::Error::new(e)))?;
            if !b.exists() || b.user_id != Some(caller.user_id) {
                return Err(ApiError::NotFound("no such booking".into()));
            }
            let total = b.total.unwrap_or_else(|| Money::new(0, "EUR"));
            BookingView {
                booking_id,
                event_id: b.show_id.unwrap_or_default(),
                status: b.status,
                seats: b.seats,
                general_admission: b.general_admission,
                discount: b
                    .terms
                    .discount
                    .unwrap_or_else(|| Money::new(0, &total.currency)),
                total,
                offer: b.terms.offer,
                hold_expires_at: b.hold_expires_at.unwrap_or_default(),
                tickets: b.tickets.iter().map(|t| t.ticket_id).collect(),
                failure_reason: b.failure_reason,
            }
        }
    };
    Ok((freshness, Json(booking)))
}

pub async fn list_bookings(
    State(state): State<AppState>,
    caller: Caller,
    min: MinPosition,
    Query(query): Query<PageQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let (limit, offset) = page_window(query.page, query.per_page)?;
    let freshness = min.wait(&state.pool, &[BOOKINGS_MODEL]).await?;
    let rows = bookings::of_user(&state.pool, caller.user_id, limit, offset).await?;
    let more = rows.len() as i64 == limit;
    let items = rows.into_iter().take(query.per_page as usize).collect();
    Ok((
        freshness,
        Json(BookingPage {
            items,
            page: query.page,
            next_page: more.then_some(query.page + 1),
        }),
    ))
}
