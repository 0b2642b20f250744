//! `POST /api/bookings`, `…/pay` and `…/cancel`: parse the request, run the purchase step
//! (`crate::purchase`) and map its outcome to API.md's answers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use domain::FieldError;
use domain::booking::{BookingError, BookingStatus};
use domain::customer::CustomerError;
use domain::inventory::InventoryError;
use domain::purchase::{BestRequest, PlanError, PurchaseRequest};
use domain::rules::{Checks, MAX_STRING};
use schemas::api::bookings::{
    BookingHeldResponse, BookingStatusResponse, CreateBookingRequest, PayRequest,
    UnavailableSection,
};
use serde_json::json;
use uuid::Uuid;

use crate::http::auth::Caller;
use crate::http::consistency::Written;
use crate::http::context::RequestContext;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path};
use crate::http::store_error::from_persistence;
use crate::purchase::{self, Choice, PurchaseError};
use crate::state::AppState;

pub async fn create_booking(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    Json(body): Json<CreateBookingRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let choice = match &body.best_available {
        Some(_) if !body.seats.is_empty() || !body.general_admission.is_empty() => {
            return Err(ApiError::Validation(vec![FieldError::new(
                "best_available",
                "ask for best_available instead of seats and general_admission, not with them",
            )]));
        }
        Some(best) => Choice::Best(BestRequest {
            quantity: best.quantity,
            section_id: best.section_id.as_deref(),
            tier_id: best.tier_id.as_deref(),
            adjacent: best.adjacent,
        }),
        None => Choice::Exact(PurchaseRequest {
            seats: &body.seats,
            general_admission: &body.general_admission,
        }),
    };
    let placed = purchase::place(
        &state,
        caller.user_id,
        body.event_id,
        choice,
        body.voucher_code.as_deref(),
        &ctx.metadata(Some(caller.user_id)),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Written(placed.position),
        Json(BookingHeldResponse {
            booking_id: placed.booking_id,
            status: BookingStatus::Held,
            hold_expires_at: placed.hold_expires_at,
            total: placed.total,
            discount: placed.discount,
            seats: placed.seats,
            general_admission: body.general_admission,
        }),
    ))
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
    let paid = purchase::pay(
        &state,
        caller.user_id,
        booking_id,
        &body.payment_token,
        &ctx.metadata(Some(caller.user_id)),
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Written(paid.position),
        Json(BookingStatusResponse {
            booking_id,
            status: paid.status,
        }),
    ))
}

pub async fn cancel_booking(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    Path(booking_id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let cancelled = purchase::cancel(
        &state,
        caller.user_id,
        booking_id,
        &ctx.metadata(Some(caller.user_id)),
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Written(cancelled.position),
        Json(BookingStatusResponse {
            booking_id,
            status: cancelled.status,
        }),
    ))
}

impl From<PurchaseError> for ApiError {
    fn from(err: PurchaseError) -> Self {
        match err {
            PurchaseError::Plan(PlanError::WrongSize) => {
                ApiError::Validation(vec![FieldError::new(
                    "seats",
                    PlanError::WrongSize.to_string(),
                )])
            }
            PurchaseError::Plan(PlanError::Invalid(errors)) => ApiError::Validation(errors),
            PurchaseError::Plan(other) => ApiError::unprocessable(other.to_string()),
            PurchaseError::QueueRequired(event_id) => ApiError::QueueRequired(format!(
                "this event sells through its waiting room: join it with \
                 POST /api/events/{event_id}/queue and book once admitted"
            )),
            PurchaseError::Unavailable(shortfall) => {
                let sections: Vec<UnavailableSection> = shortfall
                    .sections
                    .into_iter()
                    .map(|(section_id, available)| UnavailableSection {
                        section_id,
                        available,
                    })
                    .collect();
                ApiError::Conflict {
                    detail: "some seats or places are no longer available; nothing was held".into(),
                    extensions: serde_json::Map::from_iter([
                        ("unavailable".to_owned(), json!(shortfall.seats)),
                        ("unavailable_sections".to_owned(), json!(sections)),
                    ]),
                }
            }
            PurchaseError::Inventory(err @ InventoryError::BookingAlreadyHolds) => {
                ApiError::conflict(err.to_string())
            }
            PurchaseError::Inventory(other) => {
                ApiError::Validation(vec![FieldError::new("seats", other.to_string())])
            }
            PurchaseError::Booking(err) => booking_error(err),
            PurchaseError::Voucher(err) => ApiError::Rule {
                slug: "voucher-invalid",
                title: "Voucher not valid",
                detail: err.to_string(),
                extensions: serde_json::Map::new(),
            },
            PurchaseError::CustomerLimit(err @ CustomerError::LimitReached { limit, current }) => {
                ApiError::Rule {
                    slug: "customer-limit",
                    title: "Customer limit reached",
                    detail: err.to_string(),
                    extensions: serde_json::Map::from_iter([
                        ("limit".to_owned(), json!(limit)),
                        ("current".to_owned(), json!(current)),
                    ]),
                }
            }
            PurchaseError::NotFound => ApiError::NotFound("no such booking".into()),
            PurchaseError::Busy => {
                ApiError::Unavailable("the resource is busy; retry shortly".into())
            }
            PurchaseError::Store(err) => from_persistence(err),
            PurchaseError::Database(err) => ApiError::from(err),
        }
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
