//! The `Booking` aggregate: one buyer's purchase of seats and general-admission places of
//! one show, from the hold through payment to tickets and check-in. Its lifecycle (API.md):
//! held → payment_pending → confirmed | cancelled; held → expired | cancelled;
//! confirmed → refund_pending → refunded.
//!
//! Tickets live inside the booking (see `ticket`): check-in, void and refund then decide on
//! one consistent state — a ticket can never be checked in while its refund voids it.

mod commands;
mod events;
#[cfg(test)]
mod tests;
pub mod ticket;
mod transfer;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use commands::BookingCommand;
pub use events::BookingEvent;
pub use ticket::{IssuedTicket, TicketStatus};

use crate::money::Money;

/// Most seats plus places in one booking.
pub const MAX_PLACES_PER_BOOKING: u32 = 10;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    #[default]
    Held,
    PaymentPending,
    Confirmed,
    Cancelled,
    Expired,
    RefundPending,
    Refunded,
}

impl BookingStatus {
    /// No transition leaves a final state.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Cancelled | Self::Expired | Self::Refunded)
    }
}

/// Why a booking was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    UserRequested,
    PaymentDeclined,
    PaymentTimedOut,
    EventCancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GeneralAdmission {
    pub section_id: String,
    pub quantity: u32,
}

/// The commercial terms a booking was placed on: the voucher whose use it holds and the
/// discount that took off `total`, and whether its places count towards the show's
/// per-customer limit. Fixed at placement; the steps that end the booking give the voucher
/// use and the counted places back from these.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Terms {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voucher_id: Option<Uuid>,
    /// The code as the voucher was created (for invoices and sales figures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voucher_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount: Option<Money>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub customer_limited: bool,
    /// Placed by the saga for the first fitting person of the show's waiting list: its end
    /// unpaid lets the next one have the places.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub offer: bool,
}

impl Terms {
    pub fn is_plain(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookingError {
    #[error("this booking already exists")]
    AlreadyPlaced,
    #[error("no such booking")]
    UnknownBooking,
    #[error("a booking holds 1 to {MAX_PLACES_PER_BOOKING} seats and places")]
    WrongSize,
    #[error("the booking is {0:?}; that is not possible now")]
    NotAllowed(BookingStatus),
    #[error("the hold has expired")]
    HoldExpired,
    #[error("the hold has not expired yet")]
    HoldNotExpired,
    #[error("the event has started; bookings can no longer be cancelled")]
    EventStarted,
    #[error("a ticket of this booking was checked in")]
    CheckedIn,
    #[error("no such ticket in this booking")]
    UnknownTicket,
    #[error("the ticket was already checked in")]
    AlreadyCheckedIn { at: DateTime<Utc> },
    #[error("the ticket is void")]
    TicketVoid,
    #[error("this ticket is not the caller's")]
    NotTheHolder,
    #[error("the event has started; tickets can no longer be transferred")]
    TooLateToTransfer,
    #[error("this seat was already transferred {max} times, the most allowed")]
    TransferLimit { max: u8 },
    #[error("a ticket cannot be transferred to its own holder")]
    TransferToSelf,
    #[error("a ticket of this booking was transferred; it can no longer be cancelled")]
    Transferred,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Booking {
    pub booking_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub show_id: Option<Uuid>,
    pub status: BookingStatus,
    pub seats: Vec<String>,
    pub general_admission: Vec<GeneralAdmission>,
    pub total: Option<Money>,
    pub terms: Terms,
    pub hold_expires_at: Option<DateTime<Utc>>,
    pub placed_at: Option<DateTime<Utc>>,
    pub payment_id: Option<Uuid>,
    /// The card's label (what the buyer may see), not the provider's token.
    pub card: Option<String>,
    pub payment_deadline: Option<DateTime<Utc>>,
    pub cancel_reason: Option<CancelReason>,
    pub failure_reason: Option<String>,
    pub tickets: Vec<IssuedTicket>,
}

impl Booking {
    pub fn exists(&self) -> bool {
        self.booking_id.is_some()
    }

    pub fn places(&self) -> u32 {
        self.seats.len() as u32
            + self
                .general_admission
                .iter()
                .map(|g| g.quantity)
                .sum::<u32>()
    }

    /// The sections this booking holds or bought places in, in order.
    pub fn section_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .seats
            .iter()
            .filter_map(|s| {
                crate::show::layout::parse_seat_id(s).map(|(section, _, _)| section.to_owned())
            })
            .chain(self.general_admission.iter().map(|g| g.section_id.clone()))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    fn require(&self) -> Result<(), BookingError> {
        if self.exists() {
            Ok(())
        } else {
            Err(BookingError::UnknownBooking)
        }
    }
}

impl Aggregate for Booking {
    const TYPE: &'static str = "booking";
    type Command = BookingCommand;
    type Event = BookingEvent;
    type Error = BookingError;
    type Services = ();

    async fn handle(
        &mut self,
        command: BookingCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), BookingError> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: BookingEvent) {
        match event {
            BookingEvent::BookingPlaced {
                booking_id,
                user_id,
                show_id,
                seats,
                general_admission,
                total,
                terms,
                hold_expires_at,
                placed_at,
            } => {
                self.terms = terms;
                self.booking_id = Some(booking_id);
                self.user_id = Some(user_id);
                self.show_id = Some(show_id);
                self.status = BookingStatus::Held;
                self.seats = seats;
                self.general_admission = general_admission;
                self.total = Some(total);
                self.hold_expires_at = Some(hold_expires_at);
                self.placed_at = Some(placed_at);
            }
            BookingEvent::PaymentRequested {
                payment_id,
                card,
                payment_deadline,
                ..
            } => {
                self.status = BookingStatus::PaymentPending;
                self.payment_id = Some(payment_id);
                self.card = Some(card);
                self.payment_deadline = Some(payment_deadline);
            }
            BookingEvent::BookingConfirmed { tickets, .. } => {
                self.status = BookingStatus::Confirmed;
                self.tickets = tickets;
            }
            BookingEvent::BookingCancelled { reason, detail, .. } => {
                self.status = BookingStatus::Cancelled;
                self.cancel_reason = Some(reason);
                self.failure_reason = Some(detail);
            }
            BookingEvent::BookingExpired { .. } => {
                self.status = BookingStatus::Expired;
                self.failure_reason = Some("the hold expired before payment".into());
            }
            BookingEvent::RefundRequested { reason, .. } => {
                self.status = BookingStatus::RefundPending;
                self.cancel_reason = Some(reason);
            }
            BookingEvent::BookingRefunded { .. } => {
                self.status = BookingStatus::Refunded;
                for ticket in &mut self.tickets {
                    ticket.status = TicketStatus::Void;
                }
            }
            BookingEvent::TicketCheckedIn {
                ticket_id,
                checked_in_at,
            } => {
                if let Some(ticket) = self.tickets.iter_mut().find(|t| t.ticket_id == ticket_id) {
                    ticket.status = TicketStatus::CheckedIn;
                    ticket.checked_in_at = Some(checked_in_at);
                }
            }
            BookingEvent::TicketTransferred {
                ticket_id,
                new_ticket,
                ..
            } => {
                if let Some(ticket) = self.tickets.iter_mut().find(|t| t.ticket_id == ticket_id) {
                    ticket.status = TicketStatus::Void;
                }
                self.tickets.push(new_ticket);
            }
        }
    }
}

impl Booking {
    fn decide(&self, command: BookingCommand) -> Result<Vec<BookingEvent>, BookingError> {
        use BookingStatus as S;
        match command {
            BookingCommand::Place {
                booking_id,
                user_id,
                show_id,
                seats,
                general_admission,
                total,
                hold_expires_at,
                terms,
                now,
            } => {
                if self.exists() {
                    return Err(BookingError::AlreadyPlaced);
                }
                let places = seats.len() as u64
                    + general_admission
                        .iter()
                        .map(|g| u64::from(g.quantity))
                        .sum::<u64>();
                if !(1..=u64::from(MAX_PLACES_PER_BOOKING)).contains(&places) {
                    return Err(BookingError::WrongSize);
                }
                Ok(vec![BookingEvent::BookingPlaced {
                    booking_id,
                    user_id,
                    show_id,
                    seats,
                    general_admission,
                    total,
                    terms,
                    hold_expires_at,
                    placed_at: now,
                }])
            }
            BookingCommand::RequestPayment {
                payment_id,
                card,
                payment_deadline,
                now,
            } => {
                self.require()?;
                if self.status != S::Held {
                    return Err(BookingError::NotAllowed(self.status));
                }
                if self.hold_expires_at.is_some_and(|at| now >= at) {
                    return Err(BookingError::HoldExpired);
                }
                Ok(vec![BookingEvent::PaymentRequested {
                    payment_id,
                    card,
                    payment_deadline,
                    requested_at: now,
                }])
            }
            BookingCommand::Confirm { now } => {
                self.require()?;
                match self.status {
                    S::PaymentPending => {
                        let booking_id = self.booking_id.ok_or(BookingError::UnknownBooking)?;
                        Ok(vec![BookingEvent::BookingConfirmed {
                            tickets: ticket::issue(
                                booking_id,
                                &self.seats,
                                &self.general_admission,
                            ),
                            confirmed_at: now,
                        }])
                    }
                    S::Confirmed => Ok(vec![]),
                    other => Err(BookingError::NotAllowed(other)),
                }
            }
            BookingCommand::Cancel {
                reason,
                detail,
                now,
            } => {
                self.require()?;
                match self.status {
                    S::Held | S::PaymentPending => Ok(vec![BookingEvent::BookingCancelled {
                        reason,
                        detail,
                        cancelled_at: now,
                    }]),
                    // Retried or racing cancellations: the booking is already over.
                    S::Cancelled | S::Expired => Ok(vec![]),
                    other => Err(BookingError::NotAllowed(other)),
                }
            }
            BookingCommand::Expire { now } => {
                self.require()?;
                match self.status {
                    S::Held if self.hold_expires_at.is_some_and(|at| now >= at) => {
                        Ok(vec![BookingEvent::BookingExpired { expired_at: now }])
                    }
                    S::Held => Err(BookingError::HoldNotExpired),
                    _ => Ok(vec![]),
                }
            }
            BookingCommand::RequestRefund {
                reason,
                starts_at,
                now,
            } => {
                self.require()?;
                match self.status {
                    S::Confirmed => {
                        if reason != CancelReason::EventCancelled && now >= starts_at {
                            return Err(BookingError::EventStarted);
                        }
                        if self
                            .tickets
                            .iter()
                            .any(|t| t.status == TicketStatus::CheckedIn)
                        {
                            return Err(BookingError::CheckedIn);
                        }
                        // The recipient's ticket is not the buyer's to give back; only the
                        // organizer cancelling the event refunds it.
                        if reason != CancelReason::EventCancelled && self.has_transferred() {
                            return Err(BookingError::Transferred);
                        }
                        Ok(vec![BookingEvent::RefundRequested {
                            reason,
                            requested_at: now,
                        }])
                    }
                    S::RefundPending | S::Refunded => Ok(vec![]),
                    other => Err(BookingError::NotAllowed(other)),
                }
            }
            BookingCommand::MarkRefunded { now } => {
                self.require()?;
                match self.status {
                    S::RefundPending => {
                        Ok(vec![BookingEvent::BookingRefunded { refunded_at: now }])
                    }
                    S::Refunded => Ok(vec![]),
                    other => Err(BookingError::NotAllowed(other)),
                }
            }
            BookingCommand::CheckIn { ticket_id, now } => {
                self.require()?;
                let ticket = self
                    .tickets
                    .iter()
                    .find(|t| t.ticket_id == ticket_id)
                    .ok_or(BookingError::UnknownTicket)?;
                match (ticket.status, ticket.checked_in_at) {
                    (TicketStatus::CheckedIn, Some(at)) => {
                        Err(BookingError::AlreadyCheckedIn { at })
                    }
                    (TicketStatus::Void, _) => Err(BookingError::TicketVoid),
                    _ if self.status != S::Confirmed => Err(BookingError::TicketVoid),
                    _ => Ok(vec![BookingEvent::TicketCheckedIn {
                        ticket_id,
                        checked_in_at: now,
                    }]),
                }
            }
            BookingCommand::TransferTicket {
                ticket_id,
                from_user_id,
                to_user_id,
                max_transfers,
                starts_at,
                now,
            } => {
                self.require()?;
                self.decide_transfer(transfer::Transfer {
                    ticket_id,
                    from_user_id,
                    to_user_id,
                    max_transfers,
                    starts_at,
                    now,
                })
            }
        }
    }
}
