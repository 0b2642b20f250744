//! Booking bodies.

use chrono::{DateTime, Utc};
use domain::booking::{BookingStatus, GeneralAdmission};
use domain::money::Money;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBookingRequest {
    pub event_id: Uuid,
    #[serde(default)]
    pub seats: Vec<String>,
    #[serde(default)]
    pub general_admission: Vec<GeneralAdmission>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct BookingHeldResponse {
    pub booking_id: Uuid,
    pub status: BookingStatus,
    pub hold_expires_at: DateTime<Utc>,
    pub total: Money,
    pub seats: Vec<String>,
    pub general_admission: Vec<GeneralAdmission>,
}

/// A general-admission section that could not supply the quantity asked for (409).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct UnavailableSection {
    pub section_id: String,
    pub available: u32,
}
