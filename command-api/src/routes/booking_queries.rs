//! The caller's bookings, from the `bookings` read model (honouring `X-Min-Position`).

use axum::extract::State;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use domain::booking::{BookingStatus, GeneralAdmission};
use domain::money::Money;
use plumbing::position::ReadModel;
use schemas::api::bookings::{BookingPage, BookingView, PageQuery};
use schemas::read_models::BOOKINGS;
use sqlx::types::Json as DbJson;
use uuid::Uuid;

use crate::http::auth::Caller;
use crate::http::consistency::MinPosition;
use crate::http::error::ApiError;
use crate::http::extract::page_window;
use crate::http::extract::{Json, Path, Query};
use crate::state::AppState;

pub const BOOKINGS_MODEL: ReadModel = ReadModel {
    consumer: BOOKINGS.consumer,
    aggregate_types: BOOKINGS.aggregate_types,
};

#[derive(sqlx::FromRow)]
struct BookingRow {
    booking_id: Uuid,
    event_id: Uuid,
    status: String,
    seats: DbJson<Vec<String>>,
    general_admission: DbJson<Vec<GeneralAdmission>>,
    total: DbJson<Money>,
    hold_expires_at: DateTime<Utc>,
    failure_reason: Option<String>,
    tickets: Vec<Uuid>,
}

const SELECT: &str = "SELECT b.booking_id, b.event_id, b.status, b.seats, b.general_admission,
        b.total, b.hold_expires_at, b.failure_reason,
        coalesce(array(SELECT t.ticket_id FROM ticket_view t WHERE t.booking_id = b.booking_id
                       ORDER BY t.idx), '{}') AS tickets
   FROM booking_view b";

fn view(row: BookingRow) -> BookingView {
    BookingView {
        booking_id: row.booking_id,
        event_id: row.event_id,
        status: serde_json::from_value(serde_json::Value::String(row.status))
            .unwrap_or(BookingStatus::Held),
        seats: row.seats.0,
        general_admission: row.general_admission.0,
        total: row.total.0,
        hold_expires_at: row.hold_expires_at,
        tickets: row.tickets,
        failure_reason: row.failure_reason,
    }
}

pub async fn get_booking(
    State(state): State<AppState>,
    caller: Caller,
    min: MinPosition,
    Path(booking_id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let freshness = min.wait(&state.pool, &[BOOKINGS_MODEL]).await?;
    let row: Option<BookingRow> = sqlx::query_as(&format!(
        "{SELECT} WHERE b.booking_id = $1 AND b.user_id = $2"
    ))
    .bind(booking_id)
    .bind(caller.user_id)
    .fetch_optional(&state.pool)
    .await?;
    let booking = match row {
        Some(row) => view(row),
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
            BookingView {
                booking_id,
                event_id: b.show_id.unwrap_or_default(),
                status: b.status,
                seats: b.seats,
                general_admission: b.general_admission,
                total: b.total.unwrap_or_else(|| Money::new(0, "EUR")),
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
    let rows: Vec<BookingRow> = sqlx::query_as(&format!(
        "{SELECT} WHERE b.user_id = $1 ORDER BY b.placed_at DESC, b.booking_id LIMIT $2 OFFSET $3"
    ))
    .bind(caller.user_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(&state.pool)
    .await?;
    let more = rows.len() as i64 == limit;
    let items = rows
        .into_iter()
        .take(query.per_page as usize)
        .map(view)
        .collect();
    Ok((
        freshness,
        Json(BookingPage {
            items,
            page: query.page,
            next_page: more.then_some(query.page + 1),
        }),
    ))
}
