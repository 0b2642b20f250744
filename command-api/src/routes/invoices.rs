//! The buyer's invoices and credit notes (`invoices` read model): the list, one document with
//! its lines, and its PDF. Someone else's document is a 404.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use domain::ledger::{DocumentKind, InvoiceLine};
use domain::money::Money;
use plumbing::position::ReadModel;
use schemas::api::invoices::{InvoiceDocument, InvoiceSummary};
use schemas::read_models::INVOICES;
use sqlx::types::Json as DbJson;
use uuid::Uuid;

use crate::http::auth::Caller;
use crate::http::consistency::MinPosition;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path};
use crate::invoice_pdf;
use crate::state::AppState;

const INVOICES_MODEL: ReadModel = ReadModel::of(&INVOICES);

#[derive(sqlx::FromRow)]
struct Row {
    invoice_id: Uuid,
    organizer_id: Uuid,
    number: i64,
    kind: String,
    booking_id: Uuid,
    event_id: Uuid,
    lines: DbJson<Vec<InvoiceLine>>,
    total: DbJson<Money>,
    issued_at: DateTime<Utc>,
}

impl Row {
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

/// `GET /api/invoices`: newest first (at most 1,000).
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    min: MinPosition,
) -> Result<impl IntoResponse, ApiError> {
    let freshness = min.wait(&state.pool, &[INVOICES_MODEL]).await?;
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM invoice_view WHERE buyer_id = $1
         ORDER BY issued_at DESC, number DESC LIMIT 1000"
    ))
    .bind(caller.user_id)
    .fetch_all(&state.pool)
    .await?;
    let items: Vec<InvoiceSummary> = rows
        .into_iter()
        .map(|r| InvoiceSummary {
            kind: r.kind(),
            number: r.number(),
            invoice_id: r.invoice_id,
            booking_id: r.booking_id,
            issued_at: r.issued_at,
            total: r.total.0,
        })
        .collect();
    Ok((freshness, Json(items)))
}

async fn document(
    state: &AppState,
    caller: &Caller,
    invoice_id: Uuid,
) -> Result<InvoiceDocument, ApiError> {
    let row: Row = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM invoice_view WHERE invoice_id = $1 AND buyer_id = $2"
    ))
    .bind(invoice_id)
    .bind(caller.user_id)
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(|| ApiError::NotFound("no such invoice".into()))?;
    Ok(InvoiceDocument {
        kind: row.kind(),
        number: row.number(),
        invoice_id: row.invoice_id,
        booking_id: row.booking_id,
        event_id: row.event_id,
        organizer_id: row.organizer_id,
        issued_at: row.issued_at,
        lines: row.lines.0,
        total: row.total.0,
    })
}

/// `GET /api/invoices/{invoice_id}`.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    min: MinPosition,
    Path(invoice_id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let freshness = min.wait(&state.pool, &[INVOICES_MODEL]).await?;
    Ok((
        freshness,
        Json(document(&state, &caller, invoice_id).await?),
    ))
}

/// `GET /api/invoices/{invoice_id}/pdf`.
pub async fn pdf(
    State(state): State<AppState>,
    caller: Caller,
    min: MinPosition,
    Path(invoice_id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let freshness = min.wait(&state.pool, &[INVOICES_MODEL]).await?;
    let document = document(&state, &caller, invoice_id).await?;
    let disposition = format!("inline; filename=\"document-{}.pdf\"", document.number);
    Ok((
        freshness,
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        invoice_pdf::render(&document),
    ))
}
