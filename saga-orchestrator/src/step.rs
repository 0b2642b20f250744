//! One saga step as one unit: the booking, its payment and its sections are decided on
//! together (`decide`) and every command the decision calls for is appended in one statement
//! — a booking's end and the release of its seats, a sale and its confirmation, can no longer
//! be stored one without the other. Provider calls (charge, refund) happen after the append.
//!
//! The states come from the store's caches, which the reactions keep warm from the events
//! they consume; a stale cache costs no correctness: the append refuses a decision whose
//! streams moved, and a step that writes nothing is checked against the store before it is
//! answered (both through `Unit`).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::booking::{Booking, BookingCommand, CancelReason};
use domain::customer::{CustomerCommand, CustomerPlaces, customer_places_id};
use domain::inventory::{InventoryCommand, SectionInventory, inventory_id};
use domain::payment::{Payment, PaymentCommand};
use domain::voucher::{Voucher, VoucherCommand};
use plumbing::store::{Decision, StreamRef, Unit, UnitError};
use uuid::Uuid;

use crate::decide::{Action, Step, decide, refund};
use crate::provider::{Charge, RefundRequest};
use crate::worker::Stores;

/// A call to the payment provider, made once the step's commands are stored.
#[derive(Debug, Clone)]
pub enum Call {
    Charge(Charge),
    Refund(RefundRequest),
}

/// Why a step's unit was refused.
#[derive(Debug)]
pub enum Skip {
    /// The booking gained a payment after its streams were declared: declare again.
    Redeclare,
    /// An aggregate refused a command the decision called for (retried with backoff).
    Refused(String),
}

/// The streams of one step.
struct Streams {
    booking_id: Uuid,
    booking: StreamRef<Booking>,
    payment: Option<StreamRef<Payment>>,
    sections: Vec<StreamRef<SectionInventory>>,
    /// The voucher whose use the booking holds, when the step may end the booking.
    voucher: Option<StreamRef<Voucher>>,
    /// The buyer's counted places, when the show has a limit and the step may end the
    /// booking or return its sale.
    customer: Option<StreamRef<CustomerPlaces>>,
}

/// Decides `step` for `booking_id` and stores what it decides; the provider calls to make.
pub async fn run(
    stores: &Stores,
    booking_id: Uuid,
    step: &Step,
    metadata: &HashMap<String, String>,
) -> anyhow::Result<Vec<Call>> {
    // A booking's show, sections and payment id never change once set: a cached copy names
    // the right streams (a payment appearing meanwhile is caught by `Redeclare`, whose
    // check brings the cache up to date).
    for _ in 0..3 {
        let id = booking_id.to_string();
        let (known, _) = stores
            .bookings
            .cached(&id, Duration::MAX, Booking::exists)
            .await?;
        let starts_at = match (step, known.show_id) {
            (Step::CancelForShow, Some(show_id)) => {
                let (show, _) = stores
                    .shows
                    .cached(&show_id.to_string(), Duration::MAX, |s| {
                        s.starts_at.is_some()
                    })
                    .await?;
                show.starts_at
            }
            _ => None,
        };
        let mut unit = Unit::new(metadata);
        // Steps that never touch the inventory do not declare its streams: a declared stream
        // is checked by the append, and a section buyers keep holding in would make the step
        // decide again for nothing.
        let touches_inventory = !matches!(step, Step::HoldDeadline | Step::Charge | Step::Refund);
        let mut section_ids: Vec<String> = known
            .show_id
            .filter(|_| touches_inventory)
            .map(|show| {
                known
                    .section_ids()
                    .iter()
                    .map(|s| inventory_id(show, s))
                    .collect()
            })
            .unwrap_or_default();
        if let Step::OrphanHold { inventory_id } = step
            && !section_ids.contains(inventory_id)
        {
            section_ids.push(inventory_id.clone());
        }
        // Every step that may end the booking (or return its sale) gives back what its terms
        // took: the voucher's use and the places counted towards the buyer's limit.
        let may_end = !matches!(step, Step::Charge | Step::Refund);
        let terms = known.terms.clone();
        let voucher = terms
            .voucher_id
            .filter(|_| may_end)
            .map(|v| unit.stream(&stores.vouchers, &v.to_string()));
        let customer = match (known.show_id, known.user_id) {
            (Some(show), Some(user)) if may_end && terms.customer_limited => {
                Some(unit.stream(&stores.customers, &customer_places_id(show, user)))
            }
            _ => None,
        };
        let streams = Streams {
            voucher,
            customer,
            booking_id,
            booking: unit.stream(&stores.bookings, &id),
            payment: known
                .payment_id
                .map(|p| unit.stream(&stores.payments, &p.to_string())),
            sections: section_ids
                .iter()
                .map(|s| unit.stream(&stores.inventory, s))
                .collect(),
        };
        let step = step.clone();
        let outcome = unit
            .run(move |d| decide_and_apply(d, &streams, &step, starts_at, Utc::now()))
            .await;
        match outcome {
            Ok(committed) => return Ok(committed.value),
            Err(UnitError::Rejected(Skip::Redeclare)) => continue,
            Err(UnitError::Rejected(Skip::Refused(why))) => anyhow::bail!(why),
            Err(UnitError::Contended) => anyhow::bail!("the booking's streams are contended"),
            Err(UnitError::Store(err)) => return Err(err.into()),
        }
    }
    anyhow::bail!("booking {booking_id} kept changing its payment")
}

fn refused<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> Skip {
    move |e| Skip::Refused(format!("{what}: {e}"))
}

/// The step's decision on the current states, applied to them.
fn decide_and_apply(
    d: &mut Decision<'_>,
    s: &Streams,
    step: &Step,
    starts_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Vec<Call>, Skip> {
    let booking = d.state(&s.booking).clone();
    if booking.payment_id.is_some() && s.payment.is_none() {
        return Err(Skip::Redeclare);
    }
    let payment = match &s.payment {
        Some(p) => Some(d.state(p).clone()).filter(Payment::exists),
        None => None,
    };
    let actions = decide(step, &booking, payment.as_ref(), now);
    let mut calls = Vec::new();
    for action in actions {
        if apply(
            d,
            s,
            &booking,
            payment.as_ref(),
            action,
            starts_at,
            now,
            &mut calls,
        )? == Flow::Stop
        {
            break;
        }
    }
    Ok(calls)
}

#[derive(PartialEq)]
enum Flow {
    Continue,
    Stop,
}

#[allow(clippy::too_many_arguments)]
fn apply(
    d: &mut Decision<'_>,
    s: &Streams,
    booking: &Booking,
    payment: Option<&Payment>,
    action: Action,
    starts_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    calls: &mut Vec<Call>,
) -> Result<Flow, Skip> {
    let booking_id = s.booking_id;
    match action {
        Action::RecordPaymentRequest {
            payment_id: _,
            amount,
            card,
        } => {
            let payment = s.payment.as_ref().ok_or(Skip::Redeclare)?;
            d.execute(
                payment,
                PaymentCommand::Request {
                    booking_id,
                    amount,
                    card,
                    now,
                },
            )
            .map_err(refused("record payment request"))?;
        }
        Action::Charge { payment_id, amount } => calls.push(Call::Charge(Charge {
            payment_id,
            booking_id,
            amount,
        })),
        Action::ConfirmSales => {
            let still_ours = s
                .sections
                .iter()
                .all(|section| d.state(section).holds_or_sold(booking_id));
            if !still_ours {
                // The seats went to someone else before the payment settled (its hold had
                // lapsed): cancel instead, and give the money back.
                d.execute(
                    &s.booking,
                    BookingCommand::Cancel {
                        reason: CancelReason::PaymentTimedOut,
                        detail: "the seats were released before the payment completed".into(),
                        now,
                    },
                )
                .map_err(refused("cancel booking"))?;
                release(d, s)?;
                for action in refund(booking, payment) {
                    apply(d, s, booking, payment, action, starts_at, now, calls)?;
                }
                return Ok(Flow::Stop);
            }
            for section in &s.sections {
                d.execute(section, InventoryCommand::ConfirmSale { booking_id })
                    .map_err(refused("confirm sale"))?;
            }
        }
        Action::ConfirmBooking => {
            d.execute(&s.booking, BookingCommand::Confirm { now })
                .map_err(refused("confirm booking"))?;
        }
        Action::CancelBooking { reason, detail } => {
            d.execute(
                &s.booking,
                BookingCommand::Cancel {
                    reason,
                    detail,
                    now,
                },
            )
            .map_err(refused("cancel booking"))?;
        }
        Action::ExpireBooking => {
            d.execute(&s.booking, BookingCommand::Expire { now })
                .map_err(refused("expire booking"))?;
            give_back(d, s, true)?;
        }
        Action::ReleaseHolds => release(d, s)?,
        Action::ReleaseHold { inventory_id } => {
            for section in s.sections.iter().filter(|x| x.id() == inventory_id) {
                d.execute(section, InventoryCommand::Release { booking_id })
                    .map_err(refused("release hold"))?;
            }
        }
        Action::RequestPaymentRefund { .. } => {
            let payment = s.payment.as_ref().ok_or(Skip::Redeclare)?;
            d.execute(payment, PaymentCommand::RequestRefund { now })
                .map_err(refused("request refund"))?;
        }
        Action::CallRefund { payment_id, amount } => {
            calls.push(Call::Refund(RefundRequest { payment_id, amount }));
        }
        Action::MarkBookingRefunded => {
            d.execute(&s.booking, BookingCommand::MarkRefunded { now })
                .map_err(refused("mark refunded"))?;
        }
        Action::ReturnSales => {
            for section in &s.sections {
                d.execute(section, InventoryCommand::ReturnSale { booking_id })
                    .map_err(refused("return sale"))?;
            }
            // A refunded booking was confirmed: its voucher use stays spent.
            give_back(d, s, false)?;
        }
        Action::RequestBookingRefund { reason } => {
            d.execute(
                &s.booking,
                BookingCommand::RequestRefund {
                    reason,
                    starts_at: starts_at.unwrap_or(now),
                    now,
                },
            )
            .map_err(refused("request booking refund"))?;
        }
    }
    Ok(Flow::Continue)
}

fn release(d: &mut Decision<'_>, s: &Streams) -> Result<(), Skip> {
    for section in &s.sections {
        d.execute(
            section,
            InventoryCommand::Release {
                booking_id: s.booking_id,
            },
        )
        .map_err(refused("release hold"))?;
    }
    give_back(d, s, true)
}

/// Stops counting the booking's places towards the buyer's limit and, for a booking that
/// ended without a sale, gives its voucher use back. Both are no-ops the second time.
fn give_back(d: &mut Decision<'_>, s: &Streams, voucher_too: bool) -> Result<(), Skip> {
    let booking_id = s.booking_id;
    if let Some(customer) = &s.customer {
        d.execute(customer, CustomerCommand::Release { booking_id })
            .map_err(refused("release counted places"))?;
    }
    if let (true, Some(voucher)) = (voucher_too, &s.voucher) {
        d.execute(voucher, VoucherCommand::Return { booking_id })
            .map_err(refused("return voucher use"))?;
    }
    Ok(())
}
