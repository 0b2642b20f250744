//! `POST /api/bookings`: holds seats and places section by section, all or nothing, then
//! records the booking. A hold is one command on one section aggregate; when a later section
//! fails, the sections already held are released before answering 409, so nothing stays held.
//! A crash between the holds and the booking leaves holds that expire by themselves (the
//! inventory treats an expired hold as free) and that the saga releases.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use domain::FieldError;
use domain::booking::{BookingCommand, BookingStatus, GeneralAdmission, MAX_PLACES_PER_BOOKING};
use domain::inventory::{HoldRequest, InventoryCommand, InventoryError, inventory_id};
use domain::money::Money;
use domain::show::layout::parse_seat_id;
use domain::show::{Section, Show};
use plumbing::position::Position;
use schemas::api::bookings::{BookingHeldResponse, CreateBookingRequest, UnavailableSection};
use serde_json::json;
use uuid::Uuid;

use crate::http::auth::Caller;
use crate::http::consistency::Written;
use crate::http::context::RequestContext;
use crate::http::error::ApiError;
use crate::http::extract::Json;
use crate::http::store_error::from_execute;
use crate::state::AppState;

/// What one section is asked for.
struct SectionRequest {
    section: Section,
    request: HoldRequest,
    places: u32,
}

pub async fn create_booking(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    Json(body): Json<CreateBookingRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let places = body.seats.len() as u64
        + body
            .general_admission
            .iter()
            .map(|g| u64::from(g.quantity))
            .sum::<u64>();
    if !(1..=u64::from(MAX_PLACES_PER_BOOKING)).contains(&places) {
        return Err(ApiError::Validation(vec![FieldError::new(
            "seats",
            format!("a booking holds 1 to {MAX_PLACES_PER_BOOKING} seats and places in total"),
        )]));
    }
    let now = Utc::now();
    let (show, _) = state
        .shows
        .current(&body.event_id.to_string())
        .await
        .map_err(|e| ApiError::internal(anyhow::Error::new(e)))?;
    if !show.exists() || !show.on_sale(now) {
        return Err(ApiError::unprocessable("the event is not on sale"));
    }
    if show.queue.as_ref().is_some_and(|q| q.enabled)
        && !waiting_room::places::is_admitted(&state.pool, body.event_id, caller.user_id).await?
    {
        return Err(ApiError::QueueRequired(format!(
            "this event sells through its waiting room: join it with \
             POST /api/events/{}/queue and book once admitted",
            body.event_id
        )));
    }
    let requests = group_by_section(&show, &body)?;
    let total = price(&show, &requests)?;

    let booking_id = Uuid::new_v4();
    let expires_at = now + state.hold_ttl;
    let meta = ctx.metadata(Some(caller.user_id));
    let mut held: Vec<String> = Vec::new();
    let mut position = Position::default();
    let mut unavailable: Vec<String> = Vec::new();
    let mut unavailable_sections: Vec<UnavailableSection> = Vec::new();
    let mut failure: Option<ApiError> = None;
    for (section_id, wanted) in &requests {
        let id = inventory_id(body.event_id, section_id);
        let outcome = state
            .inventory
            .execute(
                &id,
                InventoryCommand::Hold {
                    show_id: body.event_id,
                    section: wanted.section.clone(),
                    booking_id,
                    request: wanted.request.clone(),
                    expires_at,
                    now,
                },
                &meta,
            )
            .await;
        match outcome {
            Ok(executed) => {
                position = position.merge(executed.position());
                held.push(id);
            }
            Err(plumbing::store::ExecuteError::Rejected(InventoryError::SeatsUnavailable(
                seats,
            ))) => {
                unavailable.extend(seats);
            }
            Err(plumbing::store::ExecuteError::Rejected(
                InventoryError::InsufficientCapacity { available },
            )) => {
                unavailable_sections.push(UnavailableSection {
                    section_id: section_id.clone(),
                    available,
                });
            }
            Err(err) => {
                failure = Some(from_execute(err, inventory_error));
                break;
            }
        }
    }
    if failure.is_some() || !unavailable.is_empty() || !unavailable_sections.is_empty() {
        release_all(&state, &held, booking_id, &meta).await?;
        return Err(failure.unwrap_or_else(|| ApiError::Conflict {
            detail: "some seats or places are no longer available; nothing was held".into(),
            extensions: serde_json::Map::from_iter([
                ("unavailable".to_owned(), json!(unavailable)),
                (
                    "unavailable_sections".to_owned(),
                    json!(unavailable_sections),
                ),
            ]),
        }));
    }

    let placed = state
        .bookings
        .execute_new(
            &booking_id.to_string(),
            BookingCommand::Place {
                booking_id,
                user_id: caller.user_id,
                show_id: body.event_id,
                seats: body.seats.clone(),
                general_admission: body.general_admission.clone(),
                total: total.clone(),
                hold_expires_at: expires_at,
                now,
            },
            &meta,
        )
        .await;
    let placed = match placed {
        Ok(executed) => executed,
        Err(err) => {
            release_all(&state, &held, booking_id, &meta).await?;
            return Err(from_execute(err, |e| {
                ApiError::unprocessable(e.to_string())
            }));
        }
    };
    Ok((
        StatusCode::CREATED,
        Written(position.merge(placed.position())),
        Json(BookingHeldResponse {
            booking_id,
            status: BookingStatus::Held,
            hold_expires_at: expires_at,
            total,
            seats: body.seats,
            general_admission: body.general_admission,
        }),
    ))
}

/// Compensation: frees every section this request held.
async fn release_all(
    state: &AppState,
    held: &[String],
    booking_id: Uuid,
    meta: &std::collections::HashMap<String, String>,
) -> Result<(), ApiError> {
    for id in held {
        state
            .inventory
            .execute(id, InventoryCommand::Release { booking_id }, meta)
            .await
            .map_err(|e| from_execute(e, inventory_error))?;
    }
    Ok(())
}

/// Groups the requested seats and places by section (in section id order), checking that
/// every seat and section exists and has the right kind.
fn group_by_section(
    show: &Show,
    body: &CreateBookingRequest,
) -> Result<BTreeMap<String, SectionRequest>, ApiError> {
    let mut errors = Vec::new();
    let mut seats_by_section: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, seat) in body.seats.iter().enumerate() {
        let known = parse_seat_id(seat)
            .and_then(|(section_id, _, _)| show.section(section_id))
            .filter(|section| section.has_seat(seat));
        match known {
            Some(section) => seats_by_section
                .entry(section.section_id().to_owned())
                .or_default()
                .push(seat.clone()),
            None => errors.push(FieldError::new(
                format!("seats[{i}]"),
                format!("no seat {seat:?} in this event"),
            )),
        }
    }
    let mut requests = BTreeMap::new();
    for (section_id, seats) in seats_by_section {
        let section = show
            .section(&section_id)
            .cloned()
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("section vanished")))?;
        let places = seats.len() as u32;
        requests.insert(
            section_id,
            SectionRequest {
                section,
                request: HoldRequest::Seats(seats),
                places,
            },
        );
    }
    for (
        i,
        GeneralAdmission {
            section_id,
            quantity,
        },
    ) in body.general_admission.iter().enumerate()
    {
        let at = format!("general_admission[{i}]");
        match show.section(section_id) {
            Some(section) if !section.is_seated() && *quantity > 0 => {
                if requests.contains_key(section_id) {
                    errors.push(FieldError::new(at, "each section at most once"));
                } else {
                    requests.insert(
                        section_id.clone(),
                        SectionRequest {
                            section: section.clone(),
                            request: HoldRequest::Quantity(*quantity),
                            places: *quantity,
                        },
                    );
                }
            }
            Some(section) if section.is_seated() => {
                errors.push(FieldError::new(
                    at,
                    format!("{section_id:?} is seated: choose seats"),
                ));
            }
            Some(_) => errors.push(FieldError::new(at, "quantity must be at least 1")),
            None => errors.push(FieldError::new(
                at,
                format!("no section {section_id:?} in this event"),
            )),
        }
    }
    let mut sorted = body.seats.clone();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != body.seats.len() {
        errors.push(FieldError::new("seats", "a seat is listed twice"));
    }
    if errors.is_empty() {
        Ok(requests)
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// The total from the tiers the sections are priced in.
fn price(show: &Show, requests: &BTreeMap<String, SectionRequest>) -> Result<Money, ApiError> {
    let currency = show
        .tiers
        .first()
        .map(|t| t.price.currency.clone())
        .ok_or_else(|| ApiError::unprocessable("the event has no pricing"))?;
    let mut lines = Vec::new();
    for (section_id, wanted) in requests {
        let tier = show.tier_of(section_id).ok_or_else(|| {
            ApiError::unprocessable(format!("section {section_id:?} has no price"))
        })?;
        lines.push(
            tier.price
                .times(wanted.places)
                .ok_or_else(|| ApiError::unprocessable("price overflow"))?,
        );
    }
    Money::sum(lines.iter(), &currency).ok_or_else(|| ApiError::unprocessable("price overflow"))
}

fn inventory_error(err: InventoryError) -> ApiError {
    match err {
        InventoryError::SeatsUnavailable(seats) => ApiError::Conflict {
            detail: "some seats are no longer available".into(),
            extensions: serde_json::Map::from_iter([
                ("unavailable".to_owned(), json!(seats)),
                ("unavailable_sections".to_owned(), json!([])),
            ]),
        },
        InventoryError::BookingAlreadyHolds => ApiError::conflict(err.to_string()),
        other => ApiError::Validation(vec![FieldError::new("seats", other.to_string())]),
    }
}
