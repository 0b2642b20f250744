//! Events of the `Show` aggregate.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{QueueSettings, Section, Tier};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum ShowEvent {
    ShowCreated {
        show_id: Uuid,
        organizer_id: Uuid,
        name: String,
        venue: String,
        description: Option<String>,
        starts_at: DateTime<Utc>,
        created_at: DateTime<Utc>,
    },
    /// Replaces the layout and clears the pricing (tiers name sections).
    LayoutSet {
        sections: Vec<Section>,
    },
    PricingSet {
        tiers: Vec<Tier>,
    },
    ShowPublished {
        sales_open_at: DateTime<Utc>,
        sales_close_at: DateTime<Utc>,
        /// Present only when the waiting room is enabled.
        queue: Option<QueueSettings>,
        /// Absent in events stored before limits existed: no limit.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_tickets_per_customer: Option<u32>,
        published_at: DateTime<Utc>,
    },
    /// Version 2 added `reason`; version 1 events are upcast with the one reason there was
    /// then (`schemas::upcast`).
    ShowCancelled {
        cancelled_at: DateTime<Utc>,
        reason: String,
    },
    /// A message from the organizer to everyone watching the show.
    AnnouncementPosted {
        message: String,
        posted_at: DateTime<Utc>,
    },
}

impl DomainEvent for ShowEvent {
    fn event_type(&self) -> String {
        match self {
            ShowEvent::ShowCreated { .. } => "ShowCreated",
            ShowEvent::LayoutSet { .. } => "LayoutSet",
            ShowEvent::PricingSet { .. } => "PricingSet",
            ShowEvent::ShowPublished { .. } => "ShowPublished",
            ShowEvent::ShowCancelled { .. } => "ShowCancelled",
            ShowEvent::AnnouncementPosted { .. } => "AnnouncementPosted",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        match self {
            ShowEvent::ShowCancelled { .. } => "2",
            _ => "1",
        }
        .to_string()
    }
}
