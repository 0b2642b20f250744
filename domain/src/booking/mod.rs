//! The `Booking` aggregate: one buyer's purchase of seats and general-admission places of
//! one show, from the hold through payment to tickets. Its lifecycle (API.md):
//! held → payment_pending → confirmed | cancelled; held → expired | cancelled;
//! confirmed → refund_pending → refunded.

mod events;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use events::BookingEvent;

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GeneralAdmission {
    pub section_id: String,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BookingCommand {
    /// Records a booking whose seats are already held in every section it names.
    Place {
        booking_id: Uuid,
        user_id: Uuid,
        show_id: Uuid,
        seats: Vec<String>,
        general_admission: Vec<GeneralAdmission>,
        total: Money,
        hold_expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookingError {
    #[error("this booking already exists")]
    AlreadyPlaced,
    #[error("a booking holds 1 to {MAX_PLACES_PER_BOOKING} seats and places")]
    WrongSize,
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
    pub hold_expires_at: Option<DateTime<Utc>>,
    pub placed_at: Option<DateTime<Utc>>,
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
                hold_expires_at,
                placed_at,
            } => {
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
        }
    }
}

impl Booking {
    fn decide(&self, command: BookingCommand) -> Result<Vec<BookingEvent>, BookingError> {
        match command {
            BookingCommand::Place {
                booking_id,
                user_id,
                show_id,
                seats,
                general_admission,
                total,
                hold_expires_at,
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
                    hold_expires_at,
                    placed_at: now,
                }])
            }
        }
    }
}
