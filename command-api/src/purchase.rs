//! The purchase workflow, each step one unit appended in one statement: placing a booking
//! (every section's hold and the booking itself), paying (the holds extended to the payment
//! deadline and the payment requested), cancelling (the booking cancelled and its holds
//! released; a confirmed booking asks for its refund instead). A refusal writes nothing, so
//! no step needs compensating. The HTTP handlers only parse requests and map outcomes.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cqrs_es::persist::PersistenceError;
use domain::booking::{BookingCommand, BookingError, BookingStatus, CancelReason, Terms};
use domain::customer::{CustomerCommand, CustomerError, customer_places_id};
use domain::inventory::{InventoryCommand, InventoryError, SectionInventory, inventory_id};
use domain::money::Money;
use domain::purchase::{self, BestRequest, PlanError, PurchasePlan, PurchaseRequest, Shortfall};
use domain::voucher::{VoucherCommand, VoucherError};
use plumbing::position::Position;
use plumbing::store::{Decision, StreamRef, Unit, UnitError};
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
    #[error(transparent)]
    Voucher(VoucherError),
    #[error(transparent)]
    CustomerLimit(CustomerError),
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
    /// What the voucher took off (zero without one).
    pub discount: Money,
    /// The seats held (chosen by the platform for a best-available booking).
    pub seats: Vec<String>,
    pub position: Position,
}

/// A booking's status after a step, and where its events are.
pub struct Stepped {
    pub status: BookingStatus,
    pub position: Position,
}

/// What a buyer books: exact seats and places, or the best seats the platform finds.
#[derive(Debug, Clone, Copy)]
pub enum Choice<'a> {
    Exact(PurchaseRequest<'a>),
    Best(BestRequest<'a>),
}

/// Holds every section's places and records the booking, all or nothing. A best-available
/// booking tries its candidate sections in layout order, each in a unit of its own that
/// chooses the seats on the section's current state, so the choice is never stale.
pub async fn place(
    state: &AppState,
    user_id: Uuid,
    event_id: Uuid,
    choice: Choice<'_>,
    voucher_code: Option<&str>,
    metadata: &HashMap<String, String>,
) -> Result<Placed, PurchaseError> {
    let now = Utc::now();
    // Planned under the show's lock rather than on a copy of it (only the sections asked
    // for are copied into the plan).
    let (planned, queued, limit) = state
        .shows
        .with_cached(
            &event_id.to_string(),
            SHOW_FRESH_FOR,
            |s| s.on_sale(now),
            |show, _| {
                let queued = show.queue.as_ref().is_some_and(|q| q.enabled);
                let limit = show.max_tickets_per_customer;
                let planned = match choice {
                    Choice::Exact(request) => purchase::plan(show, request, now).map(|p| vec![p]),
                    Choice::Best(request) => purchase::plan_best(show, request, now),
                };
                (planned, queued, limit)
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
    let plans = planned.map_err(PurchaseError::Plan)?;
    let voucher_id = match voucher_code {
        Some(code) => Some(find_voucher(state, event_id, code).await?),
        None => None,
    };
    let attempt = Attempt {
        user_id,
        event_id,
        voucher_id,
        limit,
        now,
    };
    let best = match choice {
        Choice::Exact(request) => {
            let plan = plans.into_iter().next().ok_or(PurchaseError::NotFound)?;
            return attempt
                .place(state, plan, Seats::Given(request), metadata)
                .await;
        }
        Choice::Best(best) => best,
    };
    let mut shortfall = Shortfall::default();
    for plan in plans {
        let seats = Seats::Best {
            quantity: best.quantity,
            adjacent: best.adjacent,
        };
        match attempt.place(state, plan, seats, metadata).await {
            Err(PurchaseError::Unavailable(missing)) => shortfall.sections.extend(missing.sections),
            other => return other,
        }
    }
    Err(PurchaseError::Unavailable(shortfall))
}

/// How a planned booking's seats are known.
enum Seats<'a> {
    Given(PurchaseRequest<'a>),
    /// Chosen in the plan's one section when its hold is decided.
    Best {
        quantity: u32,
        adjacent: bool,
    },
}

/// The parts of a placement every candidate plan shares.
struct Attempt {
    user_id: Uuid,
    event_id: Uuid,
    voucher_id: Option<Uuid>,
    limit: Option<u32>,
    now: DateTime<Utc>,
}

impl Attempt {
    async fn place(
        &self,
        state: &AppState,
        plan: PurchasePlan,
        seats: Seats<'_>,
        metadata: &HashMap<String, String>,
    ) -> Result<Placed, PurchaseError> {
        let Attempt {
            user_id,
            event_id,
            voucher_id,
            limit,
            now,
        } = *self;
        let booking_id = Uuid::new_v4();
        let expires_at = now + state.hold_ttl;
        let mut unit = Unit::new(metadata);
        let voucher = voucher_id.map(|id| unit.stream(&state.vouchers, &id.to_string()));
        let customer = limit.map(|limit| {
            let id = customer_places_id(event_id, user_id);
            (unit.stream(&state.customers, &id), limit)
        });
        let places = plan.places();
        let lines = plan.tier_lines();
        let currency = plan.total.currency.clone();
        let holds: Vec<(StreamRef<SectionInventory>, String, InventoryCommand)> = plan
            .holds(event_id, booking_id, expires_at, now)
            .into_iter()
            .map(|(section_id, command)| {
                let stream = unit.stream(&state.inventory, &inventory_id(event_id, &section_id));
                (stream, section_id, command)
            })
            .collect();
        let booking = unit.new_stream(&state.bookings, &booking_id.to_string());
        let (given_seats, general_admission, best) = match seats {
            Seats::Given(request) => (
                request.seats.to_vec(),
                request.general_admission.to_vec(),
                None,
            ),
            Seats::Best { quantity, adjacent } => {
                (Vec::new(), Vec::new(), Some((quantity, adjacent)))
            }
        };
        let gross = plan.total.clone();
        let committed = unit
            .run(move |d| {
                // A best-available plan has one hold, whose seats are chosen here.
                let (seats, chosen) = match best {
                    Some((quantity, adjacent)) => {
                        let (seats, hold) = choose_best(d, &holds, quantity, adjacent, now)?;
                        (seats, Some(hold))
                    }
                    None => (given_seats.clone(), None),
                };
                // The limit and the voucher before the seats: a buyer past either hears
                // why, whatever the seats' state.
                if let Some((stream, limit)) = &customer {
                    d.execute(
                        stream,
                        CustomerCommand::Reserve {
                            booking_id,
                            places,
                            limit: *limit,
                        },
                    )
                    .map_err(PurchaseError::CustomerLimit)?;
                }
                let (discount, voucher_code) = match &voucher {
                    Some(stream) => {
                        let state = d.state(stream);
                        let code = state.code.clone();
                        let off = state
                            .discount_for(&lines, now)
                            .map_err(PurchaseError::Voucher)?;
                        d.execute(stream, VoucherCommand::Redeem { booking_id, now })
                            .map_err(PurchaseError::Voucher)?;
                        (Some(off), Some(code))
                    }
                    None => (None, None),
                };
                let mut shortfall = Shortfall::default();
                for (stream, section_id, command) in &holds {
                    let command = chosen.as_ref().unwrap_or(command).clone();
                    if let Err(refusal) = d.execute(stream, command) {
                        shortfall
                            .record(section_id, refusal)
                            .map_err(PurchaseError::Inventory)?;
                    }
                }
                if !shortfall.is_empty() {
                    return Err(PurchaseError::Unavailable(shortfall));
                }
                let off = discount.clone().unwrap_or_else(|| Money::new(0, &currency));
                let total = Money::new(gross.amount_minor - off.amount_minor, &currency);
                let place = BookingCommand::Place {
                    booking_id,
                    user_id,
                    show_id: event_id,
                    seats: seats.clone(),
                    general_admission: general_admission.clone(),
                    total: total.clone(),
                    terms: Terms {
                        voucher_id,
                        voucher_code,
                        discount,
                        customer_limited: customer.is_some(),
                        offer: false,
                    },
                    hold_expires_at: expires_at,
                    now,
                };
                d.execute(&booking, place).map_err(PurchaseError::Booking)?;
                Ok((total, off, seats))
            })
            .await?;
        let (total, discount, seats) = committed.value;
        Ok(Placed {
            booking_id,
            hold_expires_at: expires_at,
            total,
            discount,
            seats,
            position: committed.position,
        })
    }
}

/// The best seats of the plan's one section as it stands in this decision, and its hold
/// asking for them; a section where they do not fit is a shortfall naming what it has left.
fn choose_best(
    d: &mut Decision<'_>,
    holds: &[(StreamRef<SectionInventory>, String, InventoryCommand)],
    quantity: u32,
    adjacent: bool,
    now: DateTime<Utc>,
) -> Result<(Vec<String>, InventoryCommand), PurchaseError> {
    let [(stream, section_id, hold)] = holds else {
        return Err(PurchaseError::NotFound);
    };
    let inventory = d.state(stream);
    purchase::best_hold(inventory, hold, quantity, adjacent, now).ok_or_else(|| {
        PurchaseError::Unavailable(Shortfall {
            seats: Vec::new(),
            sections: vec![(section_id.clone(), inventory.available(now))],
        })
    })
}

/// The voucher `code` names for the show. Codes never leave a show's book, so a cached book
/// that knows the code is good enough; one that does not is checked against the store.
async fn find_voucher(state: &AppState, show_id: Uuid, code: &str) -> Result<Uuid, PurchaseError> {
    let (book, _) = state
        .voucher_books
        .cached(&show_id.to_string(), Duration::MAX, |b| {
            b.voucher_for(code).is_some()
        })
        .await
        .map_err(PurchaseError::Store)?;
    book.voucher_for(code)
        .ok_or(PurchaseError::Voucher(VoucherError::Unknown))
}

/// The facts of a booking fixed when it was placed: whose it is, its show, its sections and
/// its terms.
struct Known {
    user_id: Uuid,
    show_id: Uuid,
    section_ids: Vec<String>,
    terms: Terms,
}

/// The streams a step on an existing booking decides on: the booking, the sections it holds
/// seats in, and what its terms took (a voucher's use, places counted towards a limit).
struct BookingStreams {
    booking_id: Uuid,
    booking: StreamRef<domain::booking::Booking>,
    sections: Vec<StreamRef<SectionInventory>>,
    voucher: Option<StreamRef<domain::voucher::Voucher>>,
    customer: Option<StreamRef<domain::customer::CustomerPlaces>>,
}

impl BookingStreams {
    /// Gives back what the booking's terms took, as it ends without a sale.
    fn give_back(&self, d: &mut Decision<'_>) -> Result<(), PurchaseError> {
        let booking_id = self.booking_id;
        if let Some(customer) = &self.customer {
            d.execute(customer, CustomerCommand::Release { booking_id })
                .map_err(PurchaseError::CustomerLimit)?;
        }
        if let Some(voucher) = &self.voucher {
            d.execute(voucher, VoucherCommand::Return { booking_id })
                .map_err(PurchaseError::Voucher)?;
        }
        Ok(())
    }
}

/// A unit over an existing booking and its streams, as paying and cancelling decide on them.
fn booking_unit(
    state: &AppState,
    metadata: &HashMap<String, String>,
    known: &Known,
    booking_id: Uuid,
    with_terms: bool,
) -> (Unit, BookingStreams) {
    let mut unit = Unit::new(metadata);
    let sections = known
        .section_ids
        .iter()
        .map(|s| unit.stream(&state.inventory, &inventory_id(known.show_id, s)))
        .collect();
    let voucher = known
        .terms
        .voucher_id
        .filter(|_| with_terms)
        .map(|v| unit.stream(&state.vouchers, &v.to_string()));
    let customer = (with_terms && known.terms.customer_limited).then(|| {
        let id = customer_places_id(known.show_id, known.user_id);
        unit.stream(&state.customers, &id)
    });
    let booking = unit.stream(&state.bookings, &booking_id.to_string());
    let streams = BookingStreams {
        booking_id,
        booking,
        sections,
        voucher,
        customer,
    };
    (unit, streams)
}

/// The caller's booking's fixed facts, or NotFound.
async fn own_booking(
    state: &AppState,
    user_id: Uuid,
    booking_id: Uuid,
) -> Result<Known, PurchaseError> {
    let (booking, _) = state
        .bookings
        .cached(&booking_id.to_string(), Duration::MAX, |b| b.exists())
        .await
        .map_err(PurchaseError::Store)?;
    match (booking.exists(), booking.user_id, booking.show_id) {
        (true, Some(owner), Some(show_id)) if owner == user_id => Ok(Known {
            user_id,
            show_id,
            section_ids: booking.section_ids(),
            terms: booking.terms.clone(),
        }),
        _ => Err(PurchaseError::NotFound),
    }
}

/// Extends the holds to the payment deadline and records the payment request. The card
/// token goes to the write side's vault (`payment_tokens`), keyed by the new
/// payment id, before the event that names that id is appended; the event carries only the
/// card's label.
pub async fn pay(
    state: &AppState,
    user_id: Uuid,
    booking_id: Uuid,
    payment_token: &str,
    metadata: &HashMap<String, String>,
) -> Result<Stepped, PurchaseError> {
    let known = own_booking(state, user_id, booking_id).await?;
    let now = Utc::now();
    let deadline = now + state.payment_timeout;
    let (unit, streams) = booking_unit(state, metadata, &known, booking_id, false);
    let payment_id = Uuid::new_v4();
    let token = payment_token.trim();
    crate::payment_tokens::keep(&state.pool, payment_id, token).await?;
    let request = BookingCommand::RequestPayment {
        payment_id,
        card: domain::payment::card_label(token),
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
            let status = d.state(&streams.booking).status;
            if status != BookingStatus::Held {
                return Err(PurchaseError::Booking(BookingError::NotAllowed(status)));
            }
            for section in &streams.sections {
                match d.execute(section, extend.clone()) {
                    Ok(_) => {}
                    Err(InventoryError::HoldLapsed | InventoryError::NoHold) => {
                        return Err(PurchaseError::Booking(BookingError::HoldExpired));
                    }
                    Err(err) => return Err(PurchaseError::Inventory(err)),
                }
            }
            d.execute(&streams.booking, request.clone())
                .map_err(PurchaseError::Booking)?;
            Ok(d.state(&streams.booking).status)
        })
        .await;
    let committed = match committed {
        Ok(committed) => committed,
        // Refused, or given up on before any append: nothing names this payment, so its
        // token has no use. (After a store failure the append may have happened: it stays.)
        Err(err @ (UnitError::Rejected(_) | UnitError::Contended)) => {
            crate::payment_tokens::forget(&state.pool, payment_id).await?;
            return Err(err.into());
        }
        Err(err) => return Err(err.into()),
    };
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
    let known = own_booking(state, user_id, booking_id).await?;
    let now = Utc::now();
    // A booked show is published, and a published show's start never changes.
    let (show, _) = state
        .shows
        .cached(&known.show_id.to_string(), Duration::MAX, |s| {
            s.starts_at.is_some()
        })
        .await
        .map_err(PurchaseError::Store)?;
    let starts_at = show.starts_at.unwrap_or(now);
    let (unit, streams) = booking_unit(state, metadata, &known, booking_id, true);
    let committed = unit
        .run(move |d| {
            let stream = &streams.booking;
            match d.state(stream).status {
                BookingStatus::Held | BookingStatus::PaymentPending => {
                    d.execute(
                        stream,
                        BookingCommand::Cancel {
                            reason: CancelReason::UserRequested,
                            detail: "cancelled by the buyer".into(),
                            now,
                        },
                    )
                    .map_err(PurchaseError::Booking)?;
                    for section in &streams.sections {
                        d.execute(section, InventoryCommand::Release { booking_id })
                            .map_err(PurchaseError::Inventory)?;
                    }
                    streams.give_back(d)?;
                }
                BookingStatus::Confirmed => {
                    d.execute(
                        stream,
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
            Ok(d.state(stream).status)
        })
        .await?;
    Ok(Stepped {
        status: committed.value,
        position: committed.position,
    })
}
