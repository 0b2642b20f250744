//! The `InvoiceLedger` aggregate: one per organizer (aggregate id = organizer id), the
//! source of that organizer's invoice numbers. Every confirmed booking gets an invoice and
//! every refund a credit note, numbered from one series per organizer, 1, 2, 3, … with no
//! gap and no reuse: the number is decided here, on the write side, and stored in the event,
//! so redelivered booking events and replayed read models never renumber anything. Issuing
//! is idempotent per (booking, kind): asking again writes nothing.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::Money;

/// What a document is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    Invoice,
    CreditNote,
}

/// One line: the places of one tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InvoiceLine {
    pub tier_id: String,
    pub description: String,
    pub quantity: u32,
    pub unit_price: Money,
    pub amount: Money,
}

/// The id of the document of `kind` for `booking_id`: derived, so issuing twice names the
/// same document.
pub fn document_id(booking_id: Uuid, kind: DocumentKind) -> Uuid {
    let name = match kind {
        DocumentKind::Invoice => "invoice",
        DocumentKind::CreditNote => "credit-note",
    };
    Uuid::new_v5(&booking_id, name.as_bytes())
}

#[derive(Debug, Clone, PartialEq)]
pub enum LedgerCommand {
    Issue {
        kind: DocumentKind,
        booking_id: Uuid,
        event_id: Uuid,
        buyer_id: Uuid,
        lines: Vec<InvoiceLine>,
        total: Money,
        now: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum LedgerEvent {
    DocumentIssued {
        invoice_id: Uuid,
        kind: DocumentKind,
        /// The organizer's next number: 1, 2, 3, … across invoices and credit notes.
        number: u64,
        booking_id: Uuid,
        event_id: Uuid,
        buyer_id: Uuid,
        lines: Vec<InvoiceLine>,
        total: Money,
        issued_at: DateTime<Utc>,
    },
}

impl DomainEvent for LedgerEvent {
    fn event_type(&self) -> String {
        match self {
            LedgerEvent::DocumentIssued { .. } => "DocumentIssued",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("a credit note needs the booking's invoice first")]
    CreditWithoutInvoice,
    #[error("an invoice needs at least one line")]
    NoLines,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InvoiceLedger {
    pub last_number: u64,
    /// (booking, kind) → number, for idempotency.
    pub issued: BTreeMap<String, u64>,
}

fn key(booking_id: Uuid, kind: DocumentKind) -> String {
    format!("{booking_id}:{kind:?}")
}

impl InvoiceLedger {
    pub fn number_of(&self, booking_id: Uuid, kind: DocumentKind) -> Option<u64> {
        self.issued.get(&key(booking_id, kind)).copied()
    }

    fn decide(&self, command: LedgerCommand) -> Result<Vec<LedgerEvent>, LedgerError> {
        let LedgerCommand::Issue {
            kind,
            booking_id,
            event_id,
            buyer_id,
            lines,
            total,
            now,
        } = command;
        if self.number_of(booking_id, kind).is_some() {
            return Ok(vec![]);
        }
        if kind == DocumentKind::CreditNote
            && self.number_of(booking_id, DocumentKind::Invoice).is_none()
        {
            return Err(LedgerError::CreditWithoutInvoice);
        }
        if lines.is_empty() {
            return Err(LedgerError::NoLines);
        }
        Ok(vec![LedgerEvent::DocumentIssued {
            invoice_id: document_id(booking_id, kind),
            kind,
            number: self.last_number + 1,
            booking_id,
            event_id,
            buyer_id,
            lines,
            total,
            issued_at: now,
        }])
    }
}

impl Aggregate for InvoiceLedger {
    const TYPE: &'static str = "ledger";
    type Command = LedgerCommand;
    type Event = LedgerEvent;
    type Error = LedgerError;
    type Services = ();

    async fn handle(
        &mut self,
        command: LedgerCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), LedgerError> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: LedgerEvent) {
        let LedgerEvent::DocumentIssued {
            kind,
            number,
            booking_id,
            ..
        } = event;
        self.last_number = number;
        self.issued.insert(key(booking_id, kind), number);
    }
}
