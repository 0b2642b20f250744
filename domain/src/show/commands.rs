//! Commands of the `Show` aggregate. The acting user and the time arrive in the command.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{QueueSettings, Section, Tier};

/// Who is acting: organizers may change their own shows, admins any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Uuid,
    pub admin: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ShowCommand {
    Create {
        show_id: Uuid,
        organizer_id: Uuid,
        name: String,
        venue: String,
        description: Option<String>,
        starts_at: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    SetLayout {
        actor: Actor,
        sections: Vec<Section>,
    },
    SetPricing {
        actor: Actor,
        tiers: Vec<Tier>,
    },
    Publish {
        actor: Actor,
        sales_open_at: Option<DateTime<Utc>>,
        sales_close_at: Option<DateTime<Utc>>,
        queue: Option<QueueSettings>,
        /// Most places one user may hold and have bought for the show (1..=100).
        max_tickets_per_customer: Option<u32>,
        now: DateTime<Utc>,
    },
    Cancel {
        actor: Actor,
        now: DateTime<Utc>,
    },
    /// A message from the organizer to everyone watching a published show.
    Announce {
        actor: Actor,
        message: String,
        now: DateTime<Utc>,
    },
}
