//! Virtual waiting room bodies.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where a user stands in an event's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlaceStatus {
    /// In the queue; `position` says how many are ahead, plus one.
    Waiting,
    /// May book until `admitted_until`.
    Admitted,
    /// The admission ran out; joining again puts the user at the back.
    Expired,
}

/// `POST` and `GET /api/events/{event_id}/queue`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct QueuePlace {
    /// 1-based rank among those still waiting; 0 once admitted or expired (nobody is ahead).
    pub position: u64,
    pub status: PlaceStatus,
    /// Until when an admitted user may book; present once admitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admitted_until: Option<DateTime<Utc>>,
}

/// `GET /api/events/{event_id}/queue/stats` (owner, admin).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct QueueStats {
    pub event_id: Uuid,
    /// Users waiting now (the queue's length).
    pub waiting: u64,
    /// Users whose admission is valid now.
    pub admitted: u64,
    /// Users whose admission ran out and who have not joined again.
    pub expired: u64,
    /// Places handed out since the queue opened, rejoins included.
    pub joined_total: u64,
    /// Admissions made since the queue opened.
    pub admitted_total: u64,
    /// The configured rate.
    pub admit_per_minute: u32,
    /// Admissions in the last 60 seconds: the rate actually achieved.
    pub admitted_last_minute: u64,
}
