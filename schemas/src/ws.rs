//! WebSocket messages of the notifier (API.md, "WebSocket"): what a client may send and every
//! frame the server sends, one flat JSON object per frame tagged by `type`.

use chrono::{DateTime, Utc};
use domain::booking::BookingStatus;
use domain::payment::PaymentStatus;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::queue::PlaceStatus;

/// A frame a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Joins `event:{event_id}`.
    Subscribe {
        room: String,
    },
    Unsubscribe {
        room: String,
    },
}

/// One seat whose status changed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct SeatChange {
    pub seat_id: String,
    /// `available`, `held` or `sold`.
    pub status: String,
}

/// A section's places available after the changes of the frame.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct SectionAvailable {
    pub section_id: String,
    pub available: u32,
}

/// A frame the server sends.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// To `event:{event_id}`: seat changes merged over a short window. `position` is the
    /// global position of the last change, to line deltas up with an availability read.
    SeatStatus {
        event_id: Uuid,
        position: i64,
        changes: Vec<SeatChange>,
        sections: Vec<SectionAvailable>,
    },
    /// To the booking's owner.
    BookingStatus {
        booking_id: Uuid,
        status: BookingStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failure_reason: Option<String>,
    },
    /// To the booking's owner.
    PaymentStatus {
        booking_id: Uuid,
        status: PaymentStatus,
    },
    /// To the user only: their place in an event's waiting room.
    QueuePosition {
        event_id: Uuid,
        /// 1-based rank among those waiting; 0 once admitted or expired.
        position: u64,
        status: PlaceStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        admitted_until: Option<DateTime<Utc>>,
    },
    /// To the user only: places of a sold-out event are held for them from its waiting list,
    /// as booking `booking_id`, until `expires_at` (pay it like any held booking).
    WaitlistOffer {
        event_id: Uuid,
        booking_id: Uuid,
        expires_at: DateTime<Utc>,
    },
    /// To `event:{event_id}`: a message from the organizer.
    Announcement { event_id: Uuid, message: String },
    /// Answers a `subscribe`.
    Subscribed { room: String },
    /// Answers an `unsubscribe`.
    Unsubscribed { room: String },
    /// A client message was refused; the connection stays usable.
    Error { code: String, message: String },
}

impl ServerMessage {
    /// The frame's text. Serialising these types cannot fail (string keys, no maps of
    /// non-string keys), so this never returns an empty frame in practice.
    pub fn to_frame(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
