//! Sales analytics (`sales` read model): the event's figures and a per-minute series, for
//! its organizer and admins.

use axum::extract::State;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use domain::money::Money;
use plumbing::position::ReadModel;
use schemas::api::sales::{BookingCounts, SalesPoint, SalesReport, SalesTimeseries, TierSales};
use schemas::read_models::SALES;
use uuid::Uuid;

use super::event_access::owned_show;
use crate::http::auth::Caller;
use crate::http::consistency::MinPosition;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path};
use crate::state::AppState;

const SALES_MODEL: ReadModel = ReadModel::of(&SALES);

/// The event's currency (all its tiers share one); EUR before it is priced.
fn currency_of(show: &domain::show::Show) -> String {
    show.min_price()
        .map_or_else(|| "EUR".to_owned(), |p| p.currency.clone())
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
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
    let currency = currency_of(&show);
    let money = |amount_minor: i64| Money {
        amount_minor,
        currency: currency.clone(),
    };
    let (sold, revenue, active, confirmed, cancelled, expired, refunded): (
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
    ) = sqlx::query_as(
        "SELECT coalesce(sum(places) FILTER (WHERE status = 'confirmed'), 0)::bigint,
                coalesce(sum(total_minor) FILTER (WHERE status = 'confirmed'), 0)::bigint,
                count(*) FILTER (WHERE status = 'payment_pending'
                                    OR (status = 'held' AND hold_expires_at > now())),
                count(*) FILTER (WHERE status = 'confirmed'),
                count(*) FILTER (WHERE status = 'cancelled'),
                count(*) FILTER (WHERE status = 'expired'),
                count(*) FILTER (WHERE status = 'refunded')
           FROM sales_booking WHERE event_id = $1",
    )
    .bind(event_id)
    .fetch_one(&state.pool)
    .await?;
    let tiers: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT t.tier_id, sum((line->>'places')::bigint)::bigint,
                sum((line->>'places')::bigint * t.price_minor)::bigint
           FROM sales_booking b
          CROSS JOIN LATERAL jsonb_array_elements(b.lines) AS line
           JOIN sales_section_tier t
             ON t.event_id = b.event_id AND t.section_id = line->>'section_id'
          WHERE b.event_id = $1 AND b.status = 'confirmed'
          GROUP BY 1 ORDER BY 1",
    )
    .bind(event_id)
    .fetch_all(&state.pool)
    .await?;
    // Every tier of the event appears, sold or not.
    let by_tier = show
        .tiers
        .iter()
        .map(|tier| {
            let (sold, amount) = tiers
                .iter()
                .find(|(id, _, _)| *id == tier.tier_id)
                .map_or((0, 0), |(_, s, a)| (*s, *a));
            TierSales {
                tier_id: tier.tier_id.clone(),
                sold: count(sold),
                revenue: money(amount),
            }
        })
        .collect();
    Ok((
        freshness,
        Json(SalesReport {
            tickets_sold: count(sold),
            revenue: money(revenue),
            by_tier,
            active_holds: count(active),
            bookings: BookingCounts {
                confirmed: count(confirmed),
                cancelled: count(cancelled),
                expired: count(expired),
                refunded: count(refunded),
            },
        }),
    ))
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
    let currency = currency_of(&show);
    let rows: Vec<(DateTime<Utc>, i64, i64, i64, i64)> = sqlx::query_as(
        "WITH moves AS (
            SELECT date_trunc('minute', confirmed_at) AS minute, places AS sold,
                   total_minor AS revenue, 0 AS refunded_places, 0::bigint AS refunded
              FROM sales_booking WHERE event_id = $1 AND confirmed_at IS NOT NULL
            UNION ALL
            SELECT date_trunc('minute', refunded_at), 0, 0, places, total_minor
              FROM sales_booking WHERE event_id = $1 AND refunded_at IS NOT NULL)
         SELECT minute, sum(sold)::bigint, sum(revenue)::bigint,
                sum(refunded_places)::bigint, sum(refunded)::bigint
           FROM moves GROUP BY minute ORDER BY minute",
    )
    .bind(event_id)
    .fetch_all(&state.pool)
    .await?;
    let money = |amount_minor: i64| Money {
        amount_minor,
        currency: currency.clone(),
    };
    let points = rows
        .into_iter()
        .map(
            |(minute, sold, revenue, refunded_places, refunded)| SalesPoint {
                minute,
                tickets_sold: count(sold),
                revenue: money(revenue),
                tickets_refunded: count(refunded_places),
                refunded: money(refunded),
            },
        )
        .collect();
    Ok((freshness, Json(SalesTimeseries { event_id, points })))
}
