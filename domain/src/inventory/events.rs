//! Events of the `SectionInventory` aggregate. Seated holds list their seats; general
//! admission holds have no seats and a quantity.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::show::Section;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum InventoryEvent {
    SectionOpened {
        show_id: Uuid,
        section: Section,
    },
    SeatsHeld {
        booking_id: Uuid,
        seats: Vec<String>,
        quantity: u32,
        expires_at: DateTime<Utc>,
    },
    /// An expired hold whose places a newer hold needed.
    HoldExpired {
        booking_id: Uuid,
        seats: Vec<String>,
        quantity: u32,
    },
    HoldReleased {
        booking_id: Uuid,
        seats: Vec<String>,
        quantity: u32,
    },
    HoldSold {
        booking_id: Uuid,
        seats: Vec<String>,
        quantity: u32,
    },
    /// Payment started: the hold lasts until the payment deadline.
    HoldExtended {
        booking_id: Uuid,
        expires_at: DateTime<Utc>,
    },
    /// A refunded sale gave its seats or places back.
    SaleReturned {
        booking_id: Uuid,
        seats: Vec<String>,
        quantity: u32,
    },
}

impl DomainEvent for InventoryEvent {
    fn event_type(&self) -> String {
        match self {
            InventoryEvent::SectionOpened { .. } => "SectionOpened",
            InventoryEvent::SeatsHeld { .. } => "SeatsHeld",
            InventoryEvent::HoldExpired { .. } => "HoldExpired",
            InventoryEvent::HoldReleased { .. } => "HoldReleased",
            InventoryEvent::HoldSold { .. } => "HoldSold",
            InventoryEvent::HoldExtended { .. } => "HoldExtended",
            InventoryEvent::SaleReturned { .. } => "SaleReturned",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}
