//! The `Show` aggregate: the thing people buy tickets for (API.md's "event"; the word is
//! taken by domain events). A show is created as a draft, gets a layout and pricing, is
//! published with a sales window and optional waiting room, and may be cancelled.

mod commands;
mod events;
pub mod layout;
pub mod templates;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use commands::{Actor, ShowCommand};
pub use events::ShowEvent;
pub use layout::{Row, Section};

use crate::FieldError;
use crate::money::Money;
use crate::rules::{Checks, MAX_LIST, MAX_STRING};

/// Why a show was cancelled, when its organizer cancels it.
pub const CANCELLED_BY_ORGANIZER: &str = "cancelled by the organizer";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShowStatus {
    #[default]
    Draft,
    Published,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub tier_id: String,
    pub name: String,
    pub price: Money,
    pub section_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueSettings {
    pub enabled: bool,
    pub admit_per_minute: u32,
    #[serde(default = "default_admission_minutes")]
    pub admission_minutes: u32,
}

fn default_admission_minutes() -> u32 {
    10
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShowError {
    #[error("an event with this id already exists")]
    AlreadyExists,
    #[error("no such event")]
    UnknownShow,
    /// A draft is private to its organizer: to anyone else it does not exist.
    #[error("no such event")]
    DraftOfAnotherOrganizer,
    #[error("only the event's organizer or an admin may change it")]
    NotOwner,
    #[error("the event is {0:?}; its layout and pricing can no longer change")]
    Frozen(ShowStatus),
    #[error("the event needs a layout first")]
    LayoutMissing,
    #[error("the event needs pricing first")]
    PricingMissing,
    #[error("the event is already published")]
    AlreadyPublished,
    #[error("the event is already cancelled")]
    AlreadyCancelled,
    #[error("only a published event takes announcements")]
    NotPublished,
    #[error("invalid request")]
    Invalid(Vec<FieldError>),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Show {
    pub show_id: Option<Uuid>,
    pub organizer_id: Option<Uuid>,
    pub name: String,
    pub venue: String,
    pub description: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub status: ShowStatus,
    pub sections: Vec<Section>,
    pub tiers: Vec<Tier>,
    pub sales_open_at: Option<DateTime<Utc>>,
    pub sales_close_at: Option<DateTime<Utc>>,
    pub queue: Option<QueueSettings>,
    pub max_tickets_per_customer: Option<u32>,
}

impl Show {
    pub fn exists(&self) -> bool {
        self.show_id.is_some()
    }

    pub fn section(&self, section_id: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.section_id() == section_id)
    }

    /// The tier a section is priced in.
    pub fn tier_of(&self, section_id: &str) -> Option<&Tier> {
        self.tiers
            .iter()
            .find(|t| t.section_ids.iter().any(|s| s == section_id))
    }

    pub fn min_price(&self) -> Option<&Money> {
        self.tiers
            .iter()
            .map(|t| &t.price)
            .min_by_key(|p| p.amount_minor)
    }

    /// Whether tickets can be bought at `now`.
    pub fn on_sale(&self, now: DateTime<Utc>) -> bool {
        self.status == ShowStatus::Published
            && self.sales_open_at.is_some_and(|open| now >= open)
            && self.sales_close_at.is_some_and(|close| now < close)
    }

    /// Who may see a draft or change the show.
    fn authorize(&self, actor: &Actor) -> Result<(), ShowError> {
        if !self.exists() {
            return Err(ShowError::UnknownShow);
        }
        if actor.admin || self.organizer_id == Some(actor.user_id) {
            return Ok(());
        }
        if self.status == ShowStatus::Draft {
            Err(ShowError::DraftOfAnotherOrganizer)
        } else {
            Err(ShowError::NotOwner)
        }
    }

    fn require_draft(&self) -> Result<(), ShowError> {
        match self.status {
            ShowStatus::Draft => Ok(()),
            other => Err(ShowError::Frozen(other)),
        }
    }
}

impl Aggregate for Show {
    const TYPE: &'static str = "show";
    type Command = ShowCommand;
    type Event = ShowEvent;
    type Error = ShowError;
    type Services = ();

    async fn handle(
        &mut self,
        command: ShowCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), ShowError> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: ShowEvent) {
        match event {
            ShowEvent::ShowCreated {
                show_id,
                organizer_id,
                name,
                venue,
                description,
                starts_at,
                ..
            } => {
                self.show_id = Some(show_id);
                self.organizer_id = Some(organizer_id);
                self.name = name;
                self.venue = venue;
                self.description = description;
                self.starts_at = Some(starts_at);
            }
            ShowEvent::LayoutSet { sections } => {
                self.sections = sections;
                // Tiers name sections; a new layout invalidates them.
                self.tiers.clear();
            }
            ShowEvent::PricingSet { tiers } => self.tiers = tiers,
            ShowEvent::ShowPublished {
                sales_open_at,
                sales_close_at,
                queue,
                max_tickets_per_customer,
                ..
            } => {
                self.status = ShowStatus::Published;
                self.max_tickets_per_customer = max_tickets_per_customer;
                self.sales_open_at = Some(sales_open_at);
                self.sales_close_at = Some(sales_close_at);
                self.queue = queue;
            }
            ShowEvent::ShowCancelled { .. } => self.status = ShowStatus::Cancelled,
            ShowEvent::AnnouncementPosted { .. } => {}
        }
    }
}

impl Show {
    fn decide(&self, command: ShowCommand) -> Result<Vec<ShowEvent>, ShowError> {
        match command {
            ShowCommand::Create {
                show_id,
                organizer_id,
                name,
                venue,
                description,
                starts_at,
                now,
            } => {
                if self.exists() {
                    return Err(ShowError::AlreadyExists);
                }
                let mut checks = Checks::new();
                checks
                    .text("name", &name, MAX_STRING)
                    .text("venue", &venue, MAX_STRING)
                    .optional_text(
                        "description",
                        description.as_deref(),
                        crate::rules::MAX_DESCRIPTION,
                    );
                if starts_at <= now {
                    checks.fail("starts_at", "must be in the future");
                }
                checks.finish().map_err(ShowError::Invalid)?;
                Ok(vec![ShowEvent::ShowCreated {
                    show_id,
                    organizer_id,
                    name,
                    venue,
                    description,
                    starts_at,
                    created_at: now,
                }])
            }
            ShowCommand::SetLayout { actor, sections } => {
                self.authorize(&actor)?;
                self.require_draft()?;
                layout::check_layout(&sections).map_err(ShowError::Invalid)?;
                Ok(vec![ShowEvent::LayoutSet { sections }])
            }
            ShowCommand::SetPricing { actor, tiers } => {
                self.authorize(&actor)?;
                self.require_draft()?;
                if self.sections.is_empty() {
                    return Err(ShowError::LayoutMissing);
                }
                self.check_tiers(&tiers).map_err(ShowError::Invalid)?;
                Ok(vec![ShowEvent::PricingSet { tiers }])
            }
            ShowCommand::Publish {
                actor,
                sales_open_at,
                sales_close_at,
                queue,
                max_tickets_per_customer,
                now,
            } => {
                self.authorize(&actor)?;
                match self.status {
                    ShowStatus::Draft => {}
                    ShowStatus::Published => return Err(ShowError::AlreadyPublished),
                    ShowStatus::Cancelled => return Err(ShowError::AlreadyCancelled),
                }
                if self.sections.is_empty() {
                    return Err(ShowError::LayoutMissing);
                }
                if self.tiers.is_empty() {
                    return Err(ShowError::PricingMissing);
                }
                let starts_at = self.starts_at.unwrap_or(now);
                let open = sales_open_at.unwrap_or(now);
                let close = sales_close_at.unwrap_or(starts_at);
                let mut checks = Checks::new();
                if close <= open {
                    checks.fail("sales_close_at", "must be after sales_open_at");
                }
                if close > starts_at {
                    checks.fail("sales_close_at", "must not be after the event starts");
                }
                if close <= now {
                    checks.fail("sales_close_at", "must be in the future");
                }
                if let Some(q) = &queue {
                    if !(1..=100_000).contains(&q.admit_per_minute) {
                        checks.fail("queue.admit_per_minute", "must be 1 to 100000");
                    }
                    if !(1..=1_440).contains(&q.admission_minutes) {
                        checks.fail("queue.admission_minutes", "must be 1 to 1440");
                    }
                }
                if max_tickets_per_customer.is_some_and(|m| !(1..=100).contains(&m)) {
                    checks.fail("max_tickets_per_customer", "must be 1 to 100");
                }
                checks.finish().map_err(ShowError::Invalid)?;
                Ok(vec![ShowEvent::ShowPublished {
                    sales_open_at: open,
                    sales_close_at: close,
                    queue: queue.filter(|q| q.enabled),
                    max_tickets_per_customer,
                    published_at: now,
                }])
            }
            ShowCommand::Announce {
                actor,
                message,
                now,
            } => {
                self.authorize(&actor)?;
                if self.status != ShowStatus::Published {
                    return Err(ShowError::NotPublished);
                }
                Checks::new()
                    .text("message", &message, 1_000)
                    .finish()
                    .map_err(ShowError::Invalid)?;
                Ok(vec![ShowEvent::AnnouncementPosted {
                    message,
                    posted_at: now,
                }])
            }
            ShowCommand::Cancel { actor, now } => {
                self.authorize(&actor)?;
                if self.status == ShowStatus::Cancelled {
                    return Err(ShowError::AlreadyCancelled);
                }
                Ok(vec![ShowEvent::ShowCancelled {
                    cancelled_at: now,
                    reason: CANCELLED_BY_ORGANIZER.into(),
                }])
            }
        }
    }

    /// Every section in exactly one tier; tier ids unique; one currency; sane prices.
    fn check_tiers(&self, tiers: &[Tier]) -> Result<(), Vec<FieldError>> {
        let mut checks = Checks::new();
        if tiers.is_empty() || tiers.len() > MAX_LIST {
            checks.fail("tiers", format!("1 to {MAX_LIST} tiers"));
        }
        let mut tier_ids = BTreeSet::new();
        let mut priced: BTreeMap<&str, usize> = BTreeMap::new();
        let currency = tiers.first().map(|t| t.price.currency.as_str());
        for (i, tier) in tiers.iter().enumerate() {
            let at = format!("tiers[{i}]");
            checks
                .chosen_id(&format!("{at}.tier_id"), &tier.tier_id)
                .text(&format!("{at}.name"), &tier.name, MAX_STRING);
            if !tier_ids.insert(tier.tier_id.as_str()) {
                checks.fail(&format!("{at}.tier_id"), "tier ids must be unique");
            }
            if !Money::is_valid_currency(&tier.price.currency) {
                checks.fail(
                    &format!("{at}.price.currency"),
                    "must be an ISO 4217 code like EUR",
                );
            } else if Some(tier.price.currency.as_str()) != currency {
                checks.fail(
                    &format!("{at}.price.currency"),
                    "all tiers must use one currency",
                );
            }
            if !(0..=100_000_000).contains(&tier.price.amount_minor) {
                checks.fail(
                    &format!("{at}.price.amount_minor"),
                    "must be 0 to 100000000",
                );
            }
            if tier.section_ids.is_empty() || tier.section_ids.len() > MAX_LIST {
                checks.fail(
                    &format!("{at}.section_ids"),
                    format!("1 to {MAX_LIST} sections"),
                );
            }
            for section_id in &tier.section_ids {
                if self.section(section_id).is_none() {
                    checks.fail(
                        &format!("{at}.section_ids"),
                        format!("unknown section {section_id:?}"),
                    );
                }
                *priced.entry(section_id.as_str()).or_default() += 1;
            }
        }
        for section in &self.sections {
            match priced.get(section.section_id()).copied().unwrap_or(0) {
                1 => {}
                0 => {
                    checks.fail(
                        "tiers",
                        format!("section {:?} is in no tier", section.section_id()),
                    );
                }
                _ => {
                    checks.fail(
                        "tiers",
                        format!(
                            "section {:?} is in more than one tier",
                            section.section_id()
                        ),
                    );
                }
            }
        }
        checks.finish()
    }
}
