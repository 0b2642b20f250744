//! Sales analytics bodies (organizer of the event, admin).

use chrono::{DateTime, Utc};
use domain::money::Money;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `GET /api/events/{event_id}/sales`. Sold means confirmed: a refund (even pending) takes
/// the places back out.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct SalesReport {
    pub tickets_sold: u64,
    /// Net of discounts (the sum of confirmed bookings' totals).
    pub revenue: Money,
    /// `by_tier` revenue is at list price; this is what vouchers took off confirmed bookings.
    pub discounts: Money,
    pub by_tier: Vec<TierSales>,
    /// Confirmed bookings per voucher code, and what each code took off; by code.
    pub vouchers: Vec<VoucherSales>,
    /// Bookings holding places now (held and not expired, or awaiting payment).
    pub active_holds: u64,
    pub bookings: BookingCounts,
    /// The event's waiting list, from the write side (so never behind a join or an offer).
    #[serde(default)]
    pub waitlist: WaitlistCounts,
}

/// Entries of an event's waiting list by state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct WaitlistCounts {
    pub waiting: u64,
    /// Offers open now (places held, not paid yet).
    pub offered: u64,
    /// Offers paid.
    pub accepted: u64,
    /// Offers that ran out unpaid or were declined.
    pub lapsed: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct VoucherSales {
    pub code: String,
    /// Confirmed bookings that used the code.
    pub uses: u64,
    pub discount: Money,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct TierSales {
    pub tier_id: String,
    pub sold: u64,
    pub revenue: Money,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct BookingCounts {
    pub confirmed: u64,
    pub cancelled: u64,
    pub expired: u64,
    pub refunded: u64,
}

/// `GET /api/events/{event_id}/sales/timeseries`: one point per minute with any activity,
/// oldest first.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct SalesTimeseries {
    pub event_id: Uuid,
    pub points: Vec<SalesPoint>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct SalesPoint {
    /// Start of the minute (UTC).
    pub minute: DateTime<Utc>,
    /// Tickets of bookings confirmed in this minute (gross: later refunds count in
    /// `tickets_refunded` of their own minute).
    pub tickets_sold: u64,
    pub revenue: Money,
    pub tickets_refunded: u64,
    pub refunded: Money,
}
