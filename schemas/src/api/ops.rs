//! Operations bodies (admin).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `GET /api/admin/projections`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct ProjectionsHealth {
    /// The newest event's global position in the store.
    pub head_position: i64,
    pub projections: Vec<ProjectionHealth>,
}

/// One read model's consumer, as it last reported itself.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct ProjectionHealth {
    pub name: String,
    /// Highest global position applied (0 before its first report).
    pub applied_position: i64,
    /// Messages waiting in its Kafka partitions.
    pub lag_messages: i64,
    /// Messages in its dead-letter topic.
    pub dead_lettered: i64,
    /// When it last reported; absent if never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reported_at: Option<DateTime<Utc>>,
    /// Reported within the last 30 seconds, with nothing dead-lettered.
    pub healthy: bool,
}
