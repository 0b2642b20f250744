//! `catalog`: the events on sale and their details (`show_view`), from the `Show` stream.
//! Tables: `migrations/0006_catalog_and_availability.sql`.

use chrono::{DateTime, Utc};
use domain::money::Money;
use domain::show::{QueueSettings, Section, ShowEvent, ShowStatus, Tier};
use plumbing::position::ReadModel;
use schemas::DecodedEvent;
use schemas::api::events::{EventDetail, EventSummary};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;

use super::ids::uuid_id;
use crate::fold::{Fact, Model, NoGroup, Poison, Row, Ts, json};

pub const NAME: ReadModel = ReadModel {
    consumer: "catalog",
    aggregate_types: &["show"],
};

fn status(s: ShowStatus) -> String {
    match s {
        ShowStatus::Draft => "draft",
        ShowStatus::Published => "published",
        ShowStatus::Cancelled => "cancelled",
    }
    .to_owned()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShowViewRow {
    pub event_id: Uuid,
    pub organizer_id: Uuid,
    pub name: String,
    pub venue: String,
    pub description: Option<String>,
    pub starts_at: Ts,
    pub status: String,
    pub sales_open_at: Option<Ts>,
    pub sales_close_at: Option<Ts>,
    pub queue: Option<Value>,
    pub max_tickets_per_customer: Option<i32>,
    pub sections: Value,
    pub tiers: Value,
    pub min_price_minor: Option<i64>,
    pub currency: Option<String>,
    pub created_at: Ts,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EventKey {
    pub event_id: Uuid,
}

impl Row for ShowViewRow {
    const TABLE: &'static str = "show_view";
    type Key = EventKey;
    type Group = NoGroup;
    fn key(&self) -> EventKey {
        EventKey {
            event_id: self.event_id,
        }
    }
}

crate::rows! {
    pub struct Rows { shows: ShowViewRow }
}

pub struct Catalog;

impl Model for Catalog {
    const NAME: ReadModel = NAME;
    type Rows = Rows;

    fn apply(rows: &mut Rows, fact: &Fact) -> Result<(), Poison> {
        let DecodedEvent::Show(event) = &fact.event else {
            return Ok(());
        };
        let key = EventKey {
            event_id: uuid_id("show", fact)?,
        };
        match event {
            ShowEvent::ShowCreated {
                organizer_id,
                name,
                venue,
                description,
                starts_at,
                created_at,
                ..
            } => {
                rows.shows.put_if_absent(ShowViewRow {
                    event_id: key.event_id,
                    organizer_id: *organizer_id,
                    name: name.clone(),
                    venue: venue.clone(),
                    description: description.clone(),
                    starts_at: (*starts_at).into(),
                    status: status(ShowStatus::Draft),
                    sales_open_at: None,
                    sales_close_at: None,
                    queue: None,
                    max_tickets_per_customer: None,
                    sections: Value::Array(Vec::new()),
                    tiers: Value::Array(Vec::new()),
                    min_price_minor: None,
                    currency: None,
                    created_at: (*created_at).into(),
                });
            }
            ShowEvent::LayoutSet { sections } => {
                rows.shows.update(&key, |s| {
                    s.sections = json(sections);
                    s.tiers = Value::Array(Vec::new());
                    s.min_price_minor = None;
                    s.currency = None;
                });
            }
            ShowEvent::PricingSet { tiers } => {
                let min = tiers.iter().min_by_key(|t| t.price.amount_minor);
                rows.shows.update(&key, |s| {
                    s.tiers = json(tiers);
                    s.min_price_minor = min.map(|t| t.price.amount_minor);
                    s.currency = min.map(|t| t.price.currency.clone());
                });
            }
            ShowEvent::ShowPublished {
                sales_open_at,
                sales_close_at,
                queue,
                max_tickets_per_customer,
                ..
            } => {
                rows.shows.update(&key, |s| {
                    s.status = status(ShowStatus::Published);
                    s.sales_open_at = Some((*sales_open_at).into());
                    s.sales_close_at = Some((*sales_close_at).into());
                    s.queue = queue.as_ref().map(json);
                    s.max_tickets_per_customer =
                        max_tickets_per_customer.and_then(|m| i32::try_from(m).ok());
                });
            }
            // Announcements are pushed live by the notifier; the catalogue keeps none.
            ShowEvent::AnnouncementPosted { .. } => {}
            ShowEvent::ShowCancelled { .. } => {
                rows.shows
                    .update(&key, |s| s.status = status(ShowStatus::Cancelled));
            }
        }
        Ok(())
    }
}

/// An event as the catalogue answers it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Show {
    pub event_id: Uuid,
    pub organizer_id: Uuid,
    pub name: String,
    pub venue: String,
    pub description: Option<String>,
    pub starts_at: DateTime<Utc>,
    status: String,
    pub sales_open_at: Option<DateTime<Utc>>,
    pub sales_close_at: Option<DateTime<Utc>>,
    queue: Option<Json<QueueSettings>>,
    max_tickets_per_customer: Option<i32>,
    sections: Json<Vec<Section>>,
    tiers: Json<Vec<Tier>>,
    min_price_minor: Option<i64>,
    currency: Option<String>,
}

impl Show {
    pub fn status(&self) -> ShowStatus {
        match self.status.as_str() {
            "published" => ShowStatus::Published,
            "cancelled" => ShowStatus::Cancelled,
            _ => ShowStatus::Draft,
        }
    }

    pub fn sections(&self) -> &[Section] {
        &self.sections.0
    }

    pub fn summary(self) -> EventSummary {
        EventSummary {
            event_id: self.event_id,
            status: self.status(),
            min_price: self
                .min_price_minor
                .zip(self.currency)
                .map(|(amount, currency)| Money::new(amount, &currency)),
            name: self.name,
            venue: self.venue,
            starts_at: self.starts_at,
        }
    }

    pub fn detail(self) -> EventDetail {
        EventDetail {
            event_id: self.event_id,
            status: self.status(),
            name: self.name,
            venue: self.venue,
            description: self.description,
            starts_at: self.starts_at,
            sales_open_at: self.sales_open_at,
            sales_close_at: self.sales_close_at,
            queue: self.queue.map(|q| q.0),
            max_tickets_per_customer: self
                .max_tickets_per_customer
                .and_then(|m| u32::try_from(m).ok()),
            sections: self.sections.0,
            tiers: self.tiers.0,
        }
    }
}

const COLUMNS: &str = "event_id, organizer_id, name, venue, description, starts_at, status,
    sales_open_at, sales_close_at, queue, max_tickets_per_customer, sections, tiers,
    min_price_minor, currency";

/// One event, whatever its status.
pub async fn show(pool: &PgPool, event_id: Uuid) -> Result<Option<Show>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM show_view WHERE event_id = $1"
    ))
    .bind(event_id)
    .fetch_optional(pool)
    .await
}

/// Published events by start, a page of `limit` from `offset`.
pub async fn published(pool: &PgPool, limit: i64, offset: i64) -> Result<Vec<Show>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM show_view WHERE status = 'published'
          ORDER BY starts_at, event_id LIMIT $1 OFFSET $2"
    ))
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
}

/// An organizer's events (drafts too) by start.
pub async fn of_organizer(
    pool: &PgPool,
    organizer_id: Uuid,
    limit: i64,
    offset: i64,
) -> Result<Vec<Show>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM show_view WHERE organizer_id = $1
          ORDER BY starts_at, event_id LIMIT $2 OFFSET $3"
    ))
    .bind(organizer_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
}
