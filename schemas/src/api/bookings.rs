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
    /// A voucher of the event (`^[A-Za-z0-9_-]{3,32}$`, any case): one use per booking.
    #[serde(default)]
    pub voucher_code: Option<String>,
    /// Instead of `seats` and `general_admission`: let the platform choose the seats.
    #[serde(default)]
    pub best_available: Option<BestAvailable>,
}

/// The best `quantity` seats: in `section_id`, else in the sections of `tier_id`, else in
/// every seated section (layout order, the first where they fit); the first row, then
/// nearest its centre; side by side unless `adjacent` is false; never leaving a lone free
/// seat when another choice exists.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BestAvailable {
    /// 1..10.
    pub quantity: u32,
    #[serde(default)]
    pub section_id: Option<String>,
    #[serde(default)]
    pub tier_id: Option<String>,
    /// Default true.
    #[serde(default = "yes")]
    pub adjacent: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct BookingHeldResponse {
    pub booking_id: Uuid,
    pub status: BookingStatus,
    pub hold_expires_at: DateTime<Utc>,
    /// After the discount.
    pub total: Money,
    /// What the voucher took off; zero without one.
    pub discount: Money,
    pub seats: Vec<String>,
    pub general_admission: Vec<GeneralAdmission>,
}

/// A general-admission section that could not supply the quantity asked for (409).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct UnavailableSection {
    pub section_id: String,
    pub available: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PayRequest {
    /// The provider's card token (`tok_visa`, `tok_decline`, `tok_timeout` in the simulator).
    pub payment_token: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct BookingStatusResponse {
    pub booking_id: Uuid,
    pub status: BookingStatus,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct BookingView {
    pub booking_id: Uuid,
    pub event_id: Uuid,
    pub status: BookingStatus,
    pub seats: Vec<String>,
    pub general_admission: Vec<GeneralAdmission>,
    /// After the discount.
    pub total: Money,
    /// What the voucher took off; zero without one.
    pub discount: Money,
    /// Placed for the buyer from the event's waiting list (held until `hold_expires_at`).
    pub offer: bool,
    pub hold_expires_at: DateTime<Utc>,
    pub tickets: Vec<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct BookingPage {
    pub items: Vec<BookingView>,
    pub page: u32,
    pub next_page: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    #[serde(default = "first_page")]
    pub page: u32,
    #[serde(default = "default_per_page")]
    pub per_page: u32,
}

fn first_page() -> u32 {
    1
}

fn default_per_page() -> u32 {
    20
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct TicketView {
    pub ticket_id: Uuid,
    pub booking_id: Uuid,
    pub event_id: Uuid,
    /// Null for general admission.
    pub seat_id: Option<String>,
    pub section_id: String,
    pub status: domain::booking::TicketStatus,
    /// The signed code a door scanner reads.
    pub code: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckInRequest {
    pub event_id: Uuid,
    pub code: String,
}

/// `POST /api/tickets/qr`: a ticket's code to draw as a QR code (the web app's tickets).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketQrRequest {
    pub event_id: Uuid,
    /// The ticket's signed code, as `GET /api/tickets` shows it.
    pub code: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct CheckInResponse {
    pub ticket_id: Uuid,
    pub seat_id: Option<String>,
    pub section_id: String,
    pub checked_in_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum WebhookType {
    #[serde(rename = "payment.succeeded")]
    PaymentSucceeded,
    #[serde(rename = "payment.failed")]
    PaymentFailed,
    #[serde(rename = "refund.succeeded")]
    RefundSucceeded,
}

/// What the payment provider posts to `/api/payments/webhook`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookNotification {
    pub notification_id: String,
    pub payment_id: Uuid,
    pub booking_id: Uuid,
    #[serde(rename = "type")]
    pub kind: WebhookType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub amount: Money,
    pub occurred_at: DateTime<Utc>,
}
