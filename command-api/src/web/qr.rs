//! `POST /api/tickets/qr`: a ticket code as a QR code (SVG), for the pages that show tickets.
//! Only codes this system signed for the named event are drawn, so this is no general QR
//! service; the code travels in the body, never in a URL that logs or caches would keep.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use qrcode::QrCode;
use qrcode::render::svg;
use schemas::api::bookings::TicketQrRequest;

use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::Json;
use crate::state::AppState;

/// Renders `code` as an SVG QR code with its quiet zone.
pub fn svg_of(code: &str) -> Result<String, ApiError> {
    let qr = QrCode::new(code.as_bytes()).map_err(ApiError::internal)?;
    Ok(qr
        .render::<svg::Color>()
        .min_dimensions(160, 160)
        .dark_color(svg::Color("#111827"))
        .light_color(svg::Color("#ffffff"))
        .build())
}

pub async fn render(
    State(state): State<AppState>,
    _caller: Caller,
    Json(body): Json<TicketQrRequest>,
) -> Result<Response, ApiError> {
    if state
        .ticket_codes
        .verify(body.event_id, &body.code)
        .is_none()
    {
        return Err(ApiError::unprocessable(
            "this code is not a ticket of this event",
        ));
    }
    let mut response = svg_of(body.code.trim())?.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(response)
}
