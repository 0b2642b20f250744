//! Catalogue queries, from the read models: the event list, event details and availability.
//! Drafts are private to their organizer (and admins): to anyone else they do not exist.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::money::Money;
use domain::show::{QueueSettings, Section, ShowStatus, Tier};
use domain::user::Role;
use plumbing::position::ReadModel;
use schemas::api::events::{
    Availability, AvailabilityQuery, EventDetail, EventListQuery, EventPage, EventSummary,
    SeatState, SeatStatus, SectionAvailability, SectionKind,
};
use schemas::read_models::{AVAILABILITY, CATALOG};
use sha2::{Digest, Sha256};
use sqlx::types::Json as DbJson;
use uuid::Uuid;

use crate::http::auth::{Caller, bearer};
use crate::http::consistency::MinPosition;
use crate::http::error::ApiError;
use crate::http::extract::page_window;
use crate::http::extract::{Json, Path, Query};
use crate::state::AppState;

const CATALOG_MODEL: ReadModel = ReadModel {
    consumer: CATALOG.consumer,
    aggregate_types: CATALOG.aggregate_types,
};
const AVAILABILITY_MODEL: ReadModel = ReadModel {
    consumer: AVAILABILITY.consumer,
    aggregate_types: AVAILABILITY.aggregate_types,
};
/// Events with at most this many seats list every seat's status without being asked.
const SEAT_LIST_LIMIT: u32 = 5_000;

#[derive(sqlx::FromRow)]
struct ShowRow {
    event_id: Uuid,
    organizer_id: Uuid,
    name: String,
    venue: String,
    description: Option<String>,
    starts_at: DateTime<Utc>,
    status: String,
    sales_open_at: Option<DateTime<Utc>>,
    sales_close_at: Option<DateTime<Utc>>,
    queue: Option<DbJson<QueueSettings>>,
    sections: DbJson<Vec<Section>>,
    tiers: DbJson<Vec<Tier>>,
    min_price_minor: Option<i64>,
    currency: Option<String>,
}

fn status_of(s: &str) -> ShowStatus {
    match s {
        "published" => ShowStatus::Published,
        "cancelled" => ShowStatus::Cancelled,
        _ => ShowStatus::Draft,
    }
}

impl ShowRow {
    fn summary(self) -> EventSummary {
        EventSummary {
            event_id: self.event_id,
            status: status_of(&self.status),
            min_price: self
                .min_price_minor
                .zip(self.currency)
                .map(|(amount, currency)| Money::new(amount, &currency)),
            name: self.name,
            venue: self.venue,
            starts_at: self.starts_at,
        }
    }

    fn visible_to(&self, caller: Option<&Caller>) -> bool {
        status_of(&self.status) != ShowStatus::Draft
            || caller.is_some_and(|c| c.user_id == self.organizer_id || c.has(Role::Admin))
    }
}

/// The caller if a valid token was sent; anonymous otherwise. A token that is present but
/// invalid is still a 401, so clients learn their token expired.
fn optional_caller(state: &AppState, headers: &HeaderMap) -> Result<Option<Caller>, ApiError> {
    let Some(token) = bearer(headers) else {
        if headers.contains_key(header::AUTHORIZATION) {
            return Err(ApiError::Unauthorized(
                "a bearer access token is required".into(),
            ));
        }
        return Ok(None);
    };
    let claims = state.jwt.verify(token)?;
    Ok(Some(Caller {
        user_id: claims.sub,
        roles: claims.roles.into_iter().collect(),
    }))
}

const SHOW_COLUMNS: &str = "event_id, organizer_id, name, venue, description, starts_at, status,
    sales_open_at, sales_close_at, queue, sections, tiers, min_price_minor, currency";

pub async fn list_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    min: MinPosition,
    Query(query): Query<EventListQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let (limit, offset) = page_window(query.page, query.per_page)?;
    let caller = optional_caller(&state, &headers)?;
    let freshness = min.wait(&state.pool, &[CATALOG_MODEL]).await?;
    let rows: Vec<ShowRow> = if query.mine {
        let caller = caller
            .ok_or_else(|| ApiError::Unauthorized("mine=true needs a bearer token".into()))?;
        caller.require_organizer()?;
        sqlx::query_as(&format!(
            "SELECT {SHOW_COLUMNS} FROM show_view WHERE organizer_id = $1
              ORDER BY starts_at, event_id LIMIT $2 OFFSET $3"
        ))
        .bind(caller.user_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(&state.pool)
        .await?
    } else {
        sqlx::query_as(&format!(
            "SELECT {SHOW_COLUMNS} FROM show_view WHERE status = 'published'
              ORDER BY starts_at, event_id LIMIT $1 OFFSET $2"
        ))
        .bind(limit)
        .bind(offset)
        .fetch_all(&state.pool)
        .await?
    };
    let more = rows.len() as i64 == limit;
    let items: Vec<EventSummary> = rows
        .into_iter()
        .take(query.per_page as usize)
        .map(ShowRow::summary)
        .collect();
    Ok((
        freshness,
        Json(EventPage {
            items,
            page: query.page,
            next_page: more.then_some(query.page + 1),
        }),
    ))
}

async fn visible_show(
    state: &AppState,
    headers: &HeaderMap,
    event_id: Uuid,
) -> Result<ShowRow, ApiError> {
    let caller = optional_caller(state, headers)?;
    let row: Option<ShowRow> = sqlx::query_as(&format!(
        "SELECT {SHOW_COLUMNS} FROM show_view WHERE event_id = $1"
    ))
    .bind(event_id)
    .fetch_optional(&state.pool)
    .await?;
    row.filter(|r| r.visible_to(caller.as_ref()))
        .ok_or_else(|| ApiError::NotFound("no such event".into()))
}

pub async fn get_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    min: MinPosition,
    Path(event_id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let freshness = min.wait(&state.pool, &[CATALOG_MODEL]).await?;
    let row = visible_show(&state, &headers, event_id).await?;
    Ok((
        freshness,
        Json(EventDetail {
            event_id: row.event_id,
            status: status_of(&row.status),
            name: row.name,
            venue: row.venue,
            description: row.description,
            starts_at: row.starts_at,
            sales_open_at: row.sales_open_at,
            sales_close_at: row.sales_close_at,
            queue: row.queue.map(|q| q.0),
            sections: row.sections.0,
            tiers: row.tiers.0,
        }),
    ))
}

#[derive(sqlx::FromRow)]
struct SeatRow {
    section_id: String,
    seat_id: String,
    status: String,
    expires_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct SectionRow {
    section_id: String,
    sold_places: i32,
    held_places: i64,
}

pub async fn availability(
    State(state): State<AppState>,
    headers: HeaderMap,
    min: MinPosition,
    Path(event_id): Path<Uuid>,
    Query(query): Query<AvailabilityQuery>,
) -> Result<Response, ApiError> {
    let freshness = min
        .wait(&state.pool, &[CATALOG_MODEL, AVAILABILITY_MODEL])
        .await?;
    let show = visible_show(&state, &headers, event_id).await?;
    let sections: Vec<&Section> = match &query.section_id {
        Some(id) => {
            let section = show.sections.0.iter().find(|s| s.section_id() == id);
            vec![section.ok_or_else(|| ApiError::NotFound("no such section".into()))?]
        }
        None => show.sections.0.iter().collect(),
    };
    let now = Utc::now();
    let seats: Vec<SeatRow> = sqlx::query_as(
        "SELECT section_id, seat_id, status, expires_at FROM seat_hold_view WHERE event_id = $1",
    )
    .bind(event_id)
    .fetch_all(&state.pool)
    .await?;
    let ga: Vec<SectionRow> = sqlx::query_as(
        "SELECT s.section_id, s.sold_places,
                coalesce((SELECT sum(quantity) FROM ga_hold_view g
                           WHERE g.event_id = s.event_id AND g.section_id = s.section_id
                             AND g.expires_at > $2), 0)::bigint AS held_places
           FROM section_view s WHERE s.event_id = $1",
    )
    .bind(event_id)
    .bind(now)
    .fetch_all(&state.pool)
    .await?;
    let ga: HashMap<&str, &SectionRow> = ga.iter().map(|r| (r.section_id.as_str(), r)).collect();

    // Seat id → state, counting a hold past its expiry as available.
    let mut taken: HashMap<&str, SeatState> = HashMap::new();
    for seat in &seats {
        let state = match seat.status.as_str() {
            "sold" => SeatState::Sold,
            _ if seat.expires_at.is_some_and(|e| e > now) => SeatState::Held,
            _ => continue,
        };
        taken.insert(seat.seat_id.as_str(), state);
    }
    let seated_total: u32 = show
        .sections
        .0
        .iter()
        .filter(|s| s.is_seated())
        .map(Section::capacity)
        .sum();
    let list_seats = query.section_id.is_some() || seated_total <= SEAT_LIST_LIMIT;

    let mut out = Vec::with_capacity(sections.len());
    for section in sections {
        let capacity = section.capacity();
        if section.is_seated() {
            let in_section = |s: &&SeatRow| s.section_id == section.section_id();
            let count = |wanted: SeatState| {
                seats
                    .iter()
                    .filter(in_section)
                    .filter(|s| taken.get(s.seat_id.as_str()) == Some(&wanted))
                    .count() as u32
            };
            let (held, sold) = (count(SeatState::Held), count(SeatState::Sold));
            out.push(SectionAvailability {
                section_id: section.section_id().to_owned(),
                kind: SectionKind::Seated,
                capacity,
                available: capacity.saturating_sub(held + sold),
                held,
                sold,
                seats: list_seats.then(|| {
                    section
                        .seat_ids()
                        .into_iter()
                        .map(|seat_id| SeatStatus {
                            status: taken
                                .get(seat_id.as_str())
                                .copied()
                                .unwrap_or(SeatState::Available),
                            seat_id,
                        })
                        .collect()
                }),
            });
        } else {
            let row = ga.get(section.section_id());
            let sold = row.map_or(0, |r| r.sold_places.max(0) as u32);
            let held = row.map_or(0, |r| r.held_places.max(0) as u32);
            out.push(SectionAvailability {
                section_id: section.section_id().to_owned(),
                kind: SectionKind::GeneralAdmission,
                capacity,
                available: capacity.saturating_sub(held + sold),
                held,
                sold,
                seats: None,
            });
        }
    }
    let body = serde_json::to_vec(&Availability {
        event_id,
        sections: out,
    })
    .map_err(ApiError::internal)?;
    let etag = format!(
        "\"{}\"",
        Sha256::digest(&body)
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let etag_value = HeaderValue::from_str(&etag).map_err(ApiError::internal)?;
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response()
    };
    response.headers_mut().insert(header::ETAG, etag_value);
    Ok((freshness, response).into_response())
}
