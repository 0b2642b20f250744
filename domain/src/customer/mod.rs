//! `CustomerPlaces`: one user's held and paid places for one show (stream id
//! `{show_id}:{user_id}`), the consistency boundary of `max_tickets_per_customer`. Bookings
//! of a show with a limit reserve their places here in the same unit as their holds, and
//! give them back in the unit that ends the booking without a sale or refunds it; one user's
//! racing bookings are therefore decided one after another.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The stream id of `user_id`'s places for `show_id`.
pub fn customer_places_id(show_id: Uuid, user_id: Uuid) -> String {
    format!("{show_id}:{user_id}")
}

#[derive(Debug, Clone, PartialEq)]
pub enum CustomerCommand {
    /// Counts `places` for `booking_id`, unless that would pass `limit`.
    Reserve {
        booking_id: Uuid,
        places: u32,
        limit: u32,
    },
    /// Stops counting `booking_id` (ended without a sale, or refunded). Idempotent.
    Release { booking_id: Uuid },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum CustomerEvent {
    PlacesReserved { booking_id: Uuid, places: u32 },
    PlacesReleased { booking_id: Uuid },
}

impl DomainEvent for CustomerEvent {
    fn event_type(&self) -> String {
        match self {
            Self::PlacesReserved { .. } => "PlacesReserved",
            Self::PlacesReleased { .. } => "PlacesReleased",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomerError {
    #[error("at most {limit} tickets per customer for this event; you have {current}")]
    LimitReached { limit: u32, current: u32 },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomerPlaces {
    /// Held or paid places, by booking.
    pub bookings: BTreeMap<Uuid, u32>,
}

impl CustomerPlaces {
    pub fn current(&self) -> u32 {
        self.bookings.values().sum()
    }
}

impl Aggregate for CustomerPlaces {
    const TYPE: &'static str = "customer_places";
    type Command = CustomerCommand;
    type Event = CustomerEvent;
    type Error = CustomerError;
    type Services = ();

    async fn handle(
        &mut self,
        command: CustomerCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), CustomerError> {
        let event = match command {
            CustomerCommand::Reserve {
                booking_id,
                places,
                limit,
            } => {
                if self.bookings.contains_key(&booking_id) {
                    return Ok(());
                }
                let current = self.current();
                if current + places > limit {
                    return Err(CustomerError::LimitReached { limit, current });
                }
                CustomerEvent::PlacesReserved { booking_id, places }
            }
            CustomerCommand::Release { booking_id } => {
                if !self.bookings.contains_key(&booking_id) {
                    return Ok(());
                }
                CustomerEvent::PlacesReleased { booking_id }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: CustomerEvent) {
        match event {
            CustomerEvent::PlacesReserved { booking_id, places } => {
                self.bookings.insert(booking_id, places);
            }
            CustomerEvent::PlacesReleased { booking_id } => {
                self.bookings.remove(&booking_id);
            }
        }
    }
}
