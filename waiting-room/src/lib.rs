//! The virtual waiting room (API.md, "Virtual waiting room"): for an event published with
//! `queue.enabled`, buyers join a durable per-event queue and are admitted in joining order
//! at the event's `admit_per_minute`; only admitted users may book, until `admitted_until`.
//!
//! - `places`: reading the queue — a user's place, whether they may book, the statistics,
//!   and the places the notifier pushes.
//! - `join`: joining, batched so that a rush of joins costs a few transactions, not one each.
//! - `admitter`: the one active admitter (an advisory-lock leader) that moves each queue's
//!   admission cursor, smoothly and exactly once per place.
//!
//! The state lives in PostgreSQL (migration `0009_waiting_room.sql`) rather than in an event
//! stream; see that migration for the ordinal scheme that makes a position O(1).

pub mod admitter;
pub mod join;
pub mod places;

/// `pg_notify` channel on which the admitter announces each admission step (JSON
/// `{"event_id", "from", "through"}`: ordinals in `(from, through]` were admitted).
pub const ADMITTED_CHANNEL: &str = "waiting_room_admitted";

/// A queue's configuration, from the event's published `queue` settings and sales window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomSettings {
    pub admit_per_minute: u32,
    pub admission_minutes: u32,
    /// Admission starts when sales open and stops when they close.
    pub admit_from: chrono::DateTime<chrono::Utc>,
    pub admit_until: chrono::DateTime<chrono::Utc>,
}
