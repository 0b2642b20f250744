//! Events of the `Booking` aggregate.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::GeneralAdmission;
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
        hold_expires_at: DateTime<Utc>,
        placed_at: DateTime<Utc>,
    },
}

impl DomainEvent for BookingEvent {
    fn event_type(&self) -> String {
        match self {
            BookingEvent::BookingPlaced { .. } => "BookingPlaced",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}
