//! Voucher bodies (API.md, "Commerce").

use chrono::{DateTime, Utc};
use domain::voucher::Discount;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateVoucherRequest {
    /// `^[A-Za-z0-9_-]{3,32}$`, unique per event case-insensitively.
    pub code: String,
    /// `{"percent": 1..100}` or `{"amount": money}`.
    pub discount: Discount,
    /// 1..100000.
    pub max_uses: u32,
    #[serde(default)]
    pub valid_until: Option<DateTime<Utc>>,
    /// The tiers it discounts; absent or empty: every tier.
    #[serde(default)]
    pub tier_ids: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct VoucherResponse {
    pub voucher_id: Uuid,
    pub code: String,
    pub discount: Discount,
    pub max_uses: u32,
    /// Bookings holding a use now (held, paying or confirmed), read from the write side.
    pub uses: u32,
    pub valid_until: Option<DateTime<Utc>>,
    pub tier_ids: Vec<String>,
}
