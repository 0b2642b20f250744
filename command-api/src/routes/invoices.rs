//! The buyer's invoices and credit notes (`invoices` read model): the list, one document with
//! its lines, and its PDF. Someone else's document is a 404.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use plumbing::position::ReadModel;
use projections::models::invoices;
use schemas::api::invoices::InvoiceDocument;
use uuid::Uuid;

use crate::http::auth::Caller;
use crate::http::consistency::MinPosition;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path};
use crate::invoice_pdf;
use crate::state::AppState;

const INVOICES_MODEL: ReadModel = invoices::NAME;

/// `GET /api/invoices`: newest first (at most 1,000).
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    min: MinPosition,
) -> Result<impl IntoResponse, ApiError> {
    let freshness = min.wait(&state.pool, &[INVOICES_MODEL]).await?;
    let items = invoices::of_buyer(&state.pool, caller.user_id).await?;
    Ok((freshness, Json(items)))
}

async fn document(
    state: &AppState,
    caller: &Caller,
    invoice_id: Uuid,
) -> Result<InvoiceDocument, ApiError> {
    invoices::document(&state.pool, invoice_id, caller.user_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such invoice".into()))
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
