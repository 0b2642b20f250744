//! Invoice bodies: the documents of the buyer's own bookings.

use chrono::{DateTime, Utc};
use domain::ledger::{DocumentKind, InvoiceLine};
use domain::money::Money;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An item of `GET /api/invoices`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct InvoiceSummary {
    pub invoice_id: Uuid,
    /// The organizer's document number: one gapless series per organizer.
    pub number: u64,
    pub booking_id: Uuid,
    pub issued_at: DateTime<Utc>,
    pub total: Money,
    pub kind: DocumentKind,
}

/// `GET /api/invoices/{invoice_id}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct InvoiceDocument {
    pub invoice_id: Uuid,
    pub number: u64,
    pub kind: DocumentKind,
    pub booking_id: Uuid,
    pub event_id: Uuid,
    /// The seller: the event's organizer.
    pub organizer_id: Uuid,
    pub issued_at: DateTime<Utc>,
    /// One line per price tier.
    pub lines: Vec<InvoiceLine>,
    pub total: Money,
}
