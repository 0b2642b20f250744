//! Waiting-list bodies (API.md, "Commerce").

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinWaitlistRequest {
    /// 1..10 places, offered together in one section.
    pub quantity: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WaitlistStatus {
    Waiting,
    /// Places are held for the caller as `booking_id` (also once it is paid).
    Offered,
    /// The offer ended unpaid (expired or declined); joining again starts at the end.
    Expired,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct WaitlistEntryResponse {
    /// 1-based rank among those waiting; 0 once offered or expired.
    pub position: u64,
    pub status: WaitlistStatus,
    /// The offer's booking, once offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking_id: Option<Uuid>,
    /// Places asked for.
    pub quantity: u32,
}
