//! The purchase workflow, each step one unit appended in one statement: placing a booking
//! (every section's hold and the booking itself), paying (the holds extended to the payment
//! deadline and the payment requested), cancelling (the booking cancelled and its holds
//! released; a confirmed booking asks for its refund instead). A refusal writes nothing, so
//! no step needs compensating. The HTTP handlers only parse requests and map outcomes.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cqrs_es::persist::PersistenceError;
use domain::booking::{BookingCommand, BookingError, BookingStatus, CancelReason};
use domain::inventory::{InventoryCommand, InventoryError, SectionInventory, inventory_id};
use domain::money::Money;
use domain::purchase::{self, PlanError, PurchaseRequest, Shortfall};
use plumbing::position::Position;
use plumbing::store::{StreamRef, Unit, UnitError};
use uuid::Uuid;

use crate::state::AppState;

/// How long a copy of a show may be trusted without asking the store: a published show's
/// layout, prices and sales window never change, and a cancellation racing a booking is
/// caught by the saga, which cancels bookings placed meanwhile. This bounds how long one
/// instance keeps selling a show another instance cancelled.
const SHOW_FRESH_FOR: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum PurchaseError {
    #[error(transparent)]
    Plan(PlanError),
    #[error("the event sells through its waiting room")]
    QueueRequired(Uuid),
    #[error("some seats or places are no longer available")]
    Unavailable(Shortfall),
    #[error(transparent)]
    Inventory(InventoryError),
    #[error(transparent)]
    Booking(BookingError),
    #[error("no such booking")]
    NotFound,
    #[error("the booking's streams are too contended")]
    Busy,
    #[error(transparent)]
    Store(PersistenceError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<UnitError<PurchaseError>> for PurchaseError {
    fn from(err: UnitError<PurchaseError>) -> Self {
        match err {
            UnitError::Rejected(e) => e,
            UnitError::Contended => Self::Busy,
            UnitError::Store(e) => Self::Store(e),
        }
    }
}

/// A booking placed: held until `hold_expires_at`.
pub struct Placed {
    pub booking_id: Uuid,
    pub hold_expires_at: DateTime<Utc>,
    pub total: Money,
    pub position: Position,
}

/// A booking's status after a step, and where its events are.
pub struct Stepped {
    pub status: BookingStatus,
    pub position: Position,
}

/// Holds every section's places and records the booking, all or nothing.
pub async fn place(
    state: &AppState,
    user_id: Uuid,
    event_id: Uuid,
    request: PurchaseRequest<'_>,
    metadata: &HashMap<String, String>,
) -> Result<Placed, PurchaseError> {
    let now = Utc::now();
    // Planned under the show's lock rather than on a copy of it (only the sections asked
    // for are copied into the plan).
    let (planned, queued) = state
        .shows
        .with_cached(
            &event_id.to_string(),
            SHOW_FRESH_FOR,
            |s| s.on_sale(now),
            |show, _| {
                let queued = show.queue.as_ref().is_some_and(|q| q.enabled);
                (purchase::plan(show, request, now), queued)
            },
        )
        .await
        .map_err(PurchaseError::Store)?;
    if let Err(err @ (PlanError::WrongSize | PlanError::NotOnSale)) = planned {
        return Err(PurchaseError::Plan(err));
    }
    if queued && !waiting_room::places::is_admitted(&state.pool, event_id, user_id).await? {
        return Err(PurchaseError::QueueRequired(event_id));
    }
    let plan = planned.map_err(PurchaseError::Plan)?;

    let booking_id = Uuid::new_v4();
    let expires_at = now + state.hold_ttl;
    let mut unit = Unit::new(metadata);
    let holds: Vec<(StreamRef<SectionInventory>, String, InventoryCommand)> = plan
        .holds(event_id, booking_id, expires_at, now)
        .into_iter()
        .map(|(section_id, command)| {
            let stream = unit.stream(&state.inventory, &inventory_id(event_id, &section_id));
            (stream, section_id, command)
        })
        .collect();
    let booking = unit.new_stream(&state.bookings, &booking_id.to_string());
    let place = BookingCommand::Place {
        booking_id,
        user_id,
        show_id: event_id,
        seats: request.seats.to_vec(),
        general_admission: request.general_admission.to_vec(),
        total: plan.total.clone(),
        hold_expires_at: expires_at,
        now,
    };
    let committed = unit
        .run(move |d| {
            let mut shortfall = Shortfall::default();
            for (stream, section_id, command) in &holds {
                if let Err(refusal) = d.execute(stream, command.clone()) {
                    shortfall
                        .record(section_id, refusal)
                        .map_err(PurchaseError::Inventory)?;
                }
            }
            if !shortfall.is_empty() {
                return Err(PurchaseError::Unavailable(shortfall));
            }
            d.execute(&booking, place.clone())
                .map_err(PurchaseError::Booking)?;
            Ok(())
        })
        .await?;
    Ok(Placed {
        booking_id,
        hold_expires_at: expires_at,
        total: plan.total,
        position: committed.position,
    })
}

/// A unit over an existing booking and the sections it holds seats in, as paying and
/// cancelling decide on them.
fn booking_unit(
    state: &AppState,
    metadata: &HashMap<String, String>,
    show_id: Uuid,
    section_ids: &[String],
    booking_id: Uuid,
) -> (
    Unit,
    Vec<StreamRef<SectionInventory>>,
    StreamRef<domain::booking::Booking>,
) {
    let mut unit = Unit::new(metadata);
    let sections = section_ids
        .iter()
        .map(|s| unit.stream(&state.inventory, &inventory_id(show_id, s)))
        .collect();
    let stream = unit.stream(&state.bookings, &booking_id.to_string());
    (unit, sections, stream)
}

/// The caller's booking's show and sections (facts fixed when it was placed), or NotFound.
async fn own_booking(
    state: &AppState,
    user_id: Uuid,
    booking_id: Uuid,
) -> Result<(Uuid, Vec<String>), PurchaseError> {
    let (booking, _) = state
        .bookings
        .cached(&booking_id.to_string(), Duration::MAX, |b| b.exists())
        .await
        .map_err(PurchaseError::Store)?;
    match (booking.exists(), booking.user_id, booking.show_id) {
        (true, Some(owner), Some(show_id)) if owner == user_id => {
            Ok((show_id, booking.section_ids()))
        }
        _ => Err(PurchaseError::NotFound),
    }
}

/// Extends the holds to the payment deadline and records the payment request.
pub async fn pay(
    state: &AppState,
    user_id: Uuid,
    booking_id: Uuid,
    payment_token: &str,
    metadata: &HashMap<String, String>,
) -> Result<Stepped, PurchaseError> {
    let (show_id, section_ids) = own_booking(state, user_id, booking_id).await?;
    let now = Utc::now();
    let deadline = now + state.payment_timeout;
    let (unit, sections, stream) = booking_unit(state, metadata, show_id, &section_ids, booking_id);
    let request = BookingCommand::RequestPayment {
        payment_id: Uuid::new_v4(),
        payment_token: payment_token.trim().to_owned(),
        payment_deadline: deadline,
        now,
    };
    let extend = InventoryCommand::ExtendHold {
        booking_id,
        expires_at: deadline,
        now,
    };
    let committed = unit
        .run(move |d| {
            let status = d.state(&stream).status;
            if status != BookingStatus::Held {
                return Err(PurchaseError::Booking(BookingError::NotAllowed(status)));
            }
            for section in &sections {
                match d.execute(section, extend.clone()) {
                    Ok(_) => {}
                    Err(InventoryError::HoldLapsed | InventoryError::NoHold) => {
                        return Err(PurchaseError::Booking(BookingError::HoldExpired));
                    }
                    Err(err) => return Err(PurchaseError::Inventory(err)),
                }
            }
            d.execute(&stream, request.clone())
                .map_err(PurchaseError::Booking)?;
            Ok(d.state(&stream).status)
        })
        .await?;
    Ok(Stepped {
        status: committed.value,
        position: committed.position,
    })
}

/// Cancels a held or pending booking and releases its holds; a confirmed one asks for its
/// refund (the saga refunds, then voids the tickets and gives the seats back).
pub async fn cancel(
    state: &AppState,
    user_id: Uuid,
    booking_id: Uuid,
    metadata: &HashMap<String, String>,
) -> Result<Stepped, PurchaseError> {
    let (show_id, section_ids) = own_booking(state, user_id, booking_id).await?;
    let now = Utc::now();
    // A booked show is published, and a published show's start never changes.
    let (show, _) = state
        .shows
        .cached(&show_id.to_string(), Duration::MAX, |s| {
            s.starts_at.is_some()
        })
        .await
        .map_err(PurchaseError::Store)?;
    let starts_at = show.starts_at.unwrap_or(now);
    let (unit, sections, stream) = booking_unit(state, metadata, show_id, &section_ids, booking_id);
    let committed = unit
        .run(move |d| {
            match d.state(&stream).status {
                BookingStatus::Held | BookingStatus::PaymentPending => {
                    d.execute(
                        &stream,
                        BookingCommand::Cancel {
                            reason: CancelReason::UserRequested,
                            detail: "cancelled by the buyer".into(),
                            now,
                        },
                    )
                    .map_err(PurchaseError::Booking)?;
                    for section in &sections {
                        d.execute(section, InventoryCommand::Release { booking_id })
                            .map_err(PurchaseError::Inventory)?;
                    }
                }
                BookingStatus::Confirmed => {
                    d.execute(
                        &stream,
                        BookingCommand::RequestRefund {
                            reason: CancelReason::UserRequested,
                            starts_at,
                            now,
                        },
                    )
                    .map_err(PurchaseError::Booking)?;
                }
                other => {
                    return Err(PurchaseError::Booking(BookingError::NotAllowed(other)));
                }
            }
            Ok(d.state(&stream).status)
        })
        .await?;
    Ok(Stepped {
        status: committed.value,
        position: committed.position,
    })
}
