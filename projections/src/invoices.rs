//! `invoice_view`: every invoice and credit note as its organizer's ledger issued it.

use async_trait::async_trait;
use domain::ledger::LedgerEvent;
use plumbing::consumer::HandleError;
use plumbing::projection::Projection;
use schemas::read_models::INVOICES;
use schemas::{DecodedEvent, Envelope};
use sqlx::PgConnection;
use sqlx::types::Json;

use crate::ids;

pub struct Invoices;

#[async_trait]
impl Projection for Invoices {
    fn name(&self) -> &'static str {
        INVOICES.consumer
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        envelope: &Envelope,
        event: DecodedEvent,
    ) -> Result<(), HandleError> {
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
        }) = event
        else {
            return Ok(());
        };
        let organizer_id = ids::uuid_id("ledger", envelope)?;
        let kind = serde_json::to_value(kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        sqlx::query(
            "INSERT INTO invoice_view (invoice_id, organizer_id, number, kind, booking_id,
                 event_id, buyer_id, lines, total, issued_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(invoice_id)
        .bind(organizer_id)
        .bind(i64::try_from(number).unwrap_or(i64::MAX))
        .bind(kind)
        .bind(booking_id)
        .bind(event_id)
        .bind(buyer_id)
        .bind(Json(lines))
        .bind(Json(total))
        .bind(issued_at)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}
