//! Events of the `Booking` aggregate.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{CancelReason, GeneralAdmission, IssuedTicket, Terms};
use crate::money::Money;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum BookingEvent {
    BookingPlaced {
        booking_id: Uuid,
        user_id: Uuid,
        show_id: Uuid,
        seats: Vec<String>,
        general_admission: Vec<GeneralAdmission>,
        total: Money,
        /// Absent in events stored before vouchers and limits: plain terms.
        #[serde(default, skip_serializing_if = "Terms::is_plain")]
        terms: Terms,
        hold_expires_at: DateTime<Utc>,
        placed_at: DateTime<Utc>,
    },
    PaymentRequested {
        payment_id: Uuid,
        /// What the buyer may see of the card (`payment::card_label`). The provider's token
        /// never enters an event: it waits in the write side's `payment_tokens` table.
        /// Version 1 carried the token instead (`schemas::upcast`).
        #[serde(default)]
        card: String,
        payment_deadline: DateTime<Utc>,
        requested_at: DateTime<Utc>,
    },
    BookingConfirmed {
        tickets: Vec<IssuedTicket>,
        confirmed_at: DateTime<Utc>,
    },
    BookingCancelled {
        reason: CancelReason,
        /// Human-readable, shown as `failure_reason`.
        detail: String,
        cancelled_at: DateTime<Utc>,
    },
    BookingExpired {
        expired_at: DateTime<Utc>,
    },
    RefundRequested {
        reason: CancelReason,
        requested_at: DateTime<Utc>,
    },
    BookingRefunded {
        refunded_at: DateTime<Utc>,
    },
    TicketCheckedIn {
        ticket_id: Uuid,
        checked_in_at: DateTime<Utc>,
    },
    /// The ticket `ticket_id` is void and `new_ticket` (a new id, hence a new code) is
    /// issued to `to_user_id` for the same place.
    TicketTransferred {
        ticket_id: Uuid,
        new_ticket: IssuedTicket,
        from_user_id: Uuid,
        to_user_id: Uuid,
        transferred_at: DateTime<Utc>,
    },
}

impl DomainEvent for BookingEvent {
    fn event_type(&self) -> String {
        match self {
            BookingEvent::BookingPlaced { .. } => "BookingPlaced",
            BookingEvent::PaymentRequested { .. } => "PaymentRequested",
            BookingEvent::BookingConfirmed { .. } => "BookingConfirmed",
            BookingEvent::BookingCancelled { .. } => "BookingCancelled",
            BookingEvent::BookingExpired { .. } => "BookingExpired",
            BookingEvent::RefundRequested { .. } => "RefundRequested",
            BookingEvent::BookingRefunded { .. } => "BookingRefunded",
            BookingEvent::TicketCheckedIn { .. } => "TicketCheckedIn",
            BookingEvent::TicketTransferred { .. } => "TicketTransferred",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        match self {
            // v2: the card's label instead of the provider's token.
            BookingEvent::PaymentRequested { .. } => "2",
            _ => "1",
        }
        .to_string()
    }
}
