//! `GET /api/tickets/{ticket_id}/pdf`: one of the caller's tickets as a PDF with its QR code.
//! The caller must hold the ticket (the tickets read model lists it under their id); anyone
//! else's ticket is a 404.

use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use domain::show::Show;
use domain::user::User;
use projections::models::bookings;
use uuid::Uuid;

use crate::http::auth::Caller;
use crate::http::consistency::MinPosition;
use crate::http::error::ApiError;
use crate::http::extract::Path;
use crate::routes::booking_queries::BOOKINGS_MODEL;
use crate::state::AppState;
use crate::ticket_pdf::{self, TicketDocument};

/// How long a holder's name is trusted before it is read again.
const NAME_FRESH_FOR: Duration = Duration::from_secs(60);

pub async fn pdf(
    State(state): State<AppState>,
    caller: Caller,
    min: MinPosition,
    Path(ticket_id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let freshness = min.wait(&state.pool, &[BOOKINGS_MODEL]).await?;
    let ticket = bookings::held_ticket(&state.pool, ticket_id, caller.user_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such ticket".into()))?;
    let store = |e| ApiError::internal(anyhow::Error::new(e));
    // A booked show is published: its name, venue and start never change.
    let (show, _) = state
        .shows
        .cached(&ticket.event_id.to_string(), Duration::MAX, Show::exists)
        .await
        .map_err(store)?;
    let (holder, _) = state
        .users
        .cached(
            &caller.user_id.to_string(),
            NAME_FRESH_FOR,
            User::is_registered,
        )
        .await
        .map_err(store)?;
    let index = u8::try_from(ticket.idx).unwrap_or(u8::MAX);
    let document = TicketDocument {
        event_name: show.name,
        venue: show.venue,
        starts_at: show.starts_at,
        seat_id: ticket.seat_id.clone(),
        section_id: ticket.section_id.clone(),
        holder: holder.name,
        status: ticket.status(),
        code: state
            .ticket_codes
            .sign(ticket.event_id, ticket.booking_id, index),
    };
    let bytes = ticket_pdf::render(&document).map_err(ApiError::internal)?;
    Ok((
        freshness,
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"ticket-{ticket_id}.pdf\""),
            ),
            (header::CACHE_CONTROL, "private, no-store".to_owned()),
        ],
        bytes,
    ))
}
