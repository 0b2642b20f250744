//! Events (catalogue and inventory) bodies. "Event" here is API.md's word for a show.

use chrono::{DateTime, Utc};
use domain::money::Money;
use domain::show::{QueueSettings, Section, ShowStatus, Tier};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEventRequest {
    pub name: String,
    pub venue: String,
    pub starts_at: DateTime<Utc>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct EventStatusResponse {
    pub event_id: Uuid,
    pub status: ShowStatus,
}

/// Either a template or explicit sections.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum LayoutRequest {
    Template(TemplateLayout),
    Sections(SectionsLayout),
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateLayout {
    pub template_id: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SectionsLayout {
    pub sections: Vec<Section>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct LayoutResponse {
    pub event_id: Uuid,
    pub sections: Vec<Section>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PricingRequest {
    pub tiers: Vec<Tier>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct PricingResponse {
    pub event_id: Uuid,
    pub tiers: Vec<Tier>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    #[serde(default)]
    pub sales_open_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub sales_close_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub queue: Option<QueueSettings>,
    /// Most places (held and paid) one user may have for the event, 1..=100.
    #[serde(default)]
    pub max_tickets_per_customer: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct EventSummary {
    pub event_id: Uuid,
    pub name: String,
    pub venue: String,
    pub starts_at: DateTime<Utc>,
    pub status: ShowStatus,
    /// Lowest tier price; null before pricing.
    pub min_price: Option<Money>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct EventPage {
    pub items: Vec<EventSummary>,
    pub page: u32,
    pub next_page: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventListQuery {
    #[serde(default = "first_page")]
    pub page: u32,
    #[serde(default = "default_per_page")]
    pub per_page: u32,
    #[serde(default)]
    pub mine: bool,
}

fn first_page() -> u32 {
    1
}

fn default_per_page() -> u32 {
    20
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct EventDetail {
    pub event_id: Uuid,
    pub name: String,
    pub venue: String,
    pub description: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub status: ShowStatus,
    pub sales_open_at: Option<DateTime<Utc>>,
    pub sales_close_at: Option<DateTime<Utc>>,
    pub queue: Option<QueueSettings>,
    /// Most places (held and paid) one user may have for the event; absent: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tickets_per_customer: Option<u32>,
    pub sections: Vec<Section>,
    pub tiers: Vec<Tier>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityQuery {
    #[serde(default)]
    pub section_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SectionKind {
    Seated,
    GeneralAdmission,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SeatState {
    Available,
    Held,
    Sold,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct SeatStatus {
    pub seat_id: String,
    pub status: SeatState,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct SectionAvailability {
    pub section_id: String,
    pub kind: SectionKind,
    pub capacity: u32,
    pub available: u32,
    pub held: u32,
    pub sold: u32,
    /// Per-seat status of a seated section: listed when the request names the section, or
    /// when the whole event has at most 5,000 seats.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seats: Option<Vec<SeatStatus>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct Availability {
    pub event_id: Uuid,
    pub sections: Vec<SectionAvailability>,
}

/// `POST /api/events/{event_id}/announcements`: pushed to everyone watching the event.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnnouncementRequest {
    pub message: String,
}
