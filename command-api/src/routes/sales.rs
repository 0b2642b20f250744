//! Sales analytics (`sales` read model): the event's figures and a per-minute series, for
//! its organizer and admins.

use axum::extract::State;
use axum::response::IntoResponse;
use domain::waitlist::{EntryStatus, Waitlist};
use plumbing::position::ReadModel;
use projections::models::sales;
use schemas::api::sales::WaitlistCounts;
use uuid::Uuid;

use super::event_access::owned_show;
use crate::http::auth::Caller;
use crate::http::consistency::MinPosition;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path};
use crate::http::store_error::from_persistence;
use crate::state::AppState;

const SALES_MODEL: ReadModel = sales::NAME;

/// The event's currency (all its tiers share one); EUR before it is priced.
fn currency_of(show: &domain::show::Show) -> String {
    show.min_price()
        .map_or_else(|| "EUR".to_owned(), |p| p.currency.clone())
}

/// `GET /api/events/{event_id}/sales`.
pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    min: MinPosition,
    Path(event_id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let show = owned_show(&state, &caller, event_id).await?;
    let freshness = min.wait(&state.pool, &[SALES_MODEL]).await?;
    let mut report = sales::report(&state.pool, event_id, &show.tiers, &currency_of(&show)).await?;
    let (list, _) = state
        .waitlists
        .current(&event_id.to_string())
        .await
        .map_err(from_persistence)?;
    report.waitlist = waitlist_counts(&list);
    Ok((freshness, Json(report)))
}

fn waitlist_counts(list: &Waitlist) -> WaitlistCounts {
    let mut counts = WaitlistCounts::default();
    for entry in &list.entries {
        let count = match entry.status {
            EntryStatus::Waiting => &mut counts.waiting,
            EntryStatus::Offered { .. } => &mut counts.offered,
            EntryStatus::Accepted { .. } => &mut counts.accepted,
            EntryStatus::Lapsed { .. } => &mut counts.lapsed,
        };
        *count += 1;
    }
    counts
}

/// `GET /api/events/{event_id}/sales/timeseries`.
pub async fn timeseries(
    State(state): State<AppState>,
    caller: Caller,
    min: MinPosition,
    Path(event_id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let show = owned_show(&state, &caller, event_id).await?;
    let freshness = min.wait(&state.pool, &[SALES_MODEL]).await?;
    let series = sales::timeseries(&state.pool, event_id, &currency_of(&show)).await?;
    Ok((freshness, Json(series)))
}
