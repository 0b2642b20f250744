//! `invoices`: every invoice and credit note as its organizer's ledger issued it
//! (`invoice_view`). Numbers are copied from the ledger events, so a rebuild reproduces them.
//! Tables: `migrations/0012_invoices.sql`.

use chrono::{DateTime, Utc};
use domain::ledger::{DocumentKind, InvoiceLine, LedgerEvent};
use domain::money::Money;
use plumbing::position::ReadModel;
use schemas::DecodedEvent;
use schemas::api::invoices::{InvoiceDocument, InvoiceSummary};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;

use super::ids::uuid_id;
use crate::fold::{Fact, Model, NoGroup, Poison, Row, Ts, json};

pub const NAME: ReadModel = ReadModel {
    consumer: "invoices",
    aggregate_types: &["ledger"],
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoiceRow {
    pub invoice_id: Uuid,
    pub organizer_id: Uuid,
    pub number: i64,
    /// `invoice` or `credit_note`.
    pub kind: String,
    pub booking_id: Uuid,
    pub event_id: Uuid,
    pub buyer_id: Uuid,
    pub lines: Value,
    pub total: Value,
    pub issued_at: Ts,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InvoiceKey {
    pub invoice_id: Uuid,
}

impl Row for InvoiceRow {
    const TABLE: &'static str = "invoice_view";
    type Key = InvoiceKey;
    type Group = NoGroup;
    fn key(&self) -> InvoiceKey {
        InvoiceKey {
            invoice_id: self.invoice_id,
        }
    }
}

crate::rows! {
    pub struct Rows { invoices: InvoiceRow }
}

pub struct Invoices;

impl Model for Invoices {
    const NAME: ReadModel = NAME;
    type Rows = Rows;

    fn apply(rows: &mut Rows, fact: &Fact) -> Result<(), Poison> {
        let DecodedEvent::Ledger(LedgerEvent::DocumentIssued {
            invoice_id,
            kind,
            number,
            booking_id,
            event_id,
            buyer_id,
            lines,
            total,
            issued_at,
        }) = &fact.event
        else {
            return Ok(());
        };
        let organizer_id = uuid_id("ledger", fact)?;
        // A document is issued once (the ledger refuses a second one per booking and
        // kind), so it is written without looking for an earlier row.
        rows.invoices.put(InvoiceRow {
            invoice_id: *invoice_id,
            organizer_id,
            number: i64::try_from(*number).unwrap_or(i64::MAX),
            kind: json(kind).as_str().unwrap_or_default().to_owned(),
            booking_id: *booking_id,
            event_id: *event_id,
            buyer_id: *buyer_id,
            lines: json(lines),
            total: json(total),
            issued_at: (*issued_at).into(),
        });
        Ok(())
    }
}

#[derive(sqlx::FromRow)]
struct Document {
    invoice_id: Uuid,
    organizer_id: Uuid,
    number: i64,
    kind: String,
    booking_id: Uuid,
    event_id: Uuid,
    lines: Json<Vec<InvoiceLine>>,
    total: Json<Money>,
    issued_at: DateTime<Utc>,
}

impl Document {
    fn kind(&self) -> DocumentKind {
        if self.kind == "credit_note" {
            DocumentKind::CreditNote
        } else {
            DocumentKind::Invoice
        }
    }

    fn number(&self) -> u64 {
        u64::try_from(self.number).unwrap_or(0)
    }
}

const COLUMNS: &str =
    "invoice_id, organizer_id, number, kind, booking_id, event_id, lines, total, issued_at";

/// `buyer_id`'s invoices and credit notes, newest first (at most 1,000).
pub async fn of_buyer(pool: &PgPool, buyer_id: Uuid) -> Result<Vec<InvoiceSummary>, sqlx::Error> {
    let rows: Vec<Document> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM invoice_view WHERE buyer_id = $1
         ORDER BY issued_at DESC, number DESC LIMIT 1000"
    ))
    .bind(buyer_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| InvoiceSummary {
            kind: r.kind(),
            number: r.number(),
            invoice_id: r.invoice_id,
            booking_id: r.booking_id,
            issued_at: r.issued_at,
            total: r.total.0,
        })
        .collect())
}

/// One of `buyer_id`'s documents with its lines.
pub async fn document(
    pool: &PgPool,
    invoice_id: Uuid,
    buyer_id: Uuid,
) -> Result<Option<InvoiceDocument>, sqlx::Error> {
    let row: Option<Document> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM invoice_view WHERE invoice_id = $1 AND buyer_id = $2"
    ))
    .bind(invoice_id)
    .bind(buyer_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|row| InvoiceDocument {
        kind: row.kind(),
        number: row.number(),
        invoice_id: row.invoice_id,
        booking_id: row.booking_id,
        event_id: row.event_id,
        organizer_id: row.organizer_id,
        issued_at: row.issued_at,
        lines: row.lines.0,
        total: row.total.0,
    }))
}
