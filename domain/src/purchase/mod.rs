//! Planning a purchase: what a buyer asks for on a show, turned into one hold per section and
//! a price, before any stream is touched; and the all-or-nothing verdict over the sections'
//! answers. Pure, so every rule of a booking's shape is tested here. Later rules (vouchers,
//! customer limits) extend the plan with their own lines and streams.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::FieldError;
use crate::booking::{GeneralAdmission, MAX_PLACES_PER_BOOKING};
use crate::inventory::{HoldRequest, InventoryCommand, InventoryError, SectionInventory};
use crate::money::Money;
use crate::show::layout::parse_seat_id;
use crate::show::{Section, Show};
use crate::voucher::TierLine;

/// What a buyer asks for.
#[derive(Debug, Clone, Copy)]
pub struct PurchaseRequest<'a> {
    pub seats: &'a [String],
    pub general_admission: &'a [GeneralAdmission],
}

impl PurchaseRequest<'_> {
    pub fn places(&self) -> u64 {
        self.seats.len() as u64
            + self
                .general_admission
                .iter()
                .map(|g| u64::from(g.quantity))
                .sum::<u64>()
    }
}

/// One section's part of a purchase.
#[derive(Debug, Clone, PartialEq)]
pub struct SectionPlan {
    pub section: Section,
    pub request: HoldRequest,
    pub places: u32,
    pub tier_id: String,
    /// The tier's price times the places.
    pub amount: Money,
}

/// Every section a purchase holds places in (in section id order, the order their streams
/// are locked in) and what it costs.
#[derive(Debug, Clone, PartialEq)]
pub struct PurchasePlan {
    pub sections: BTreeMap<String, SectionPlan>,
    pub total: Money,
}

impl PurchasePlan {
    /// The plan's amounts by tier, as a voucher discounts them.
    pub fn tier_lines(&self) -> Vec<TierLine> {
        let mut by_tier: BTreeMap<&str, Vec<&Money>> = BTreeMap::new();
        for plan in self.sections.values() {
            by_tier.entry(&plan.tier_id).or_default().push(&plan.amount);
        }
        by_tier
            .into_iter()
            .filter_map(|(tier_id, amounts)| {
                let currency = amounts.first()?.currency.clone();
                Some(TierLine {
                    tier_id: tier_id.to_owned(),
                    amount: Money::sum(amounts.into_iter(), &currency)?,
                })
            })
            .collect()
    }

    /// The places the plan holds, all sections together.
    pub fn places(&self) -> u32 {
        self.sections.values().map(|s| s.places).sum()
    }

    /// The hold each section is asked for, by section id.
    pub fn holds(
        &self,
        show_id: Uuid,
        booking_id: Uuid,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<(String, InventoryCommand)> {
        self.sections
            .iter()
            .map(|(section_id, plan)| {
                (
                    section_id.clone(),
                    InventoryCommand::Hold {
                        show_id,
                        section: plan.section.clone(),
                        booking_id,
                        request: plan.request.clone(),
                        expires_at,
                        now,
                    },
                )
            })
            .collect()
    }
}

/// The best `quantity` seats of `hold`'s section as `inventory` stands at `now`, and `hold`
/// asking for exactly them; `None` when they do not fit there. Called inside the decision that
/// holds them, so the choice is made on the state the hold is decided on.
pub fn best_hold(
    inventory: &SectionInventory,
    hold: &InventoryCommand,
    quantity: u32,
    adjacent: bool,
    now: DateTime<Utc>,
) -> Option<(Vec<String>, InventoryCommand)> {
    let InventoryCommand::Hold { section, .. } = hold else {
        return None;
    };
    let seats = inventory.best_available(section, quantity, adjacent, now)?;
    let mut hold = hold.clone();
    if let InventoryCommand::Hold { request, .. } = &mut hold {
        *request = HoldRequest::Seats(seats.clone());
    }
    Some((seats, hold))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("a booking holds 1 to {MAX_PLACES_PER_BOOKING} seats and places in total")]
    WrongSize,
    #[error("the event is not on sale")]
    NotOnSale,
    #[error("invalid request")]
    Invalid(Vec<FieldError>),
    #[error("the event has no pricing")]
    NoPricing,
    #[error("section {0:?} has no price")]
    Unpriced(String),
    #[error("price overflow")]
    Overflow,
}

/// Plans `request` on `show` at `now`: the size rule, the sales window, every seat and
/// section known and of the right kind, each section once, and the price from its tier.
pub fn plan(
    show: &Show,
    request: PurchaseRequest<'_>,
    now: DateTime<Utc>,
) -> Result<PurchasePlan, PlanError> {
    if !(1..=u64::from(MAX_PLACES_PER_BOOKING)).contains(&request.places()) {
        return Err(PlanError::WrongSize);
    }
    if !show.exists() || !show.on_sale(now) {
        return Err(PlanError::NotOnSale);
    }
    let grouped = group_by_section(show, request)?;
    price(show, grouped)
}

/// A buyer who lets the platform choose: `quantity` seats in `section_id`, else in the
/// sections of `tier_id`, else in every seated section; side by side when `adjacent`.
#[derive(Debug, Clone, Copy)]
pub struct BestRequest<'a> {
    pub quantity: u32,
    pub section_id: Option<&'a str>,
    pub tier_id: Option<&'a str>,
    pub adjacent: bool,
}

/// The plans a best-available request may end up as, one per candidate section in layout
/// order (its seats are chosen when its hold is decided: `HoldRequest::Seats` is empty here).
/// The first section where the seats fit wins.
pub fn plan_best(
    show: &Show,
    request: BestRequest<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<PurchasePlan>, PlanError> {
    if !(1..=MAX_PLACES_PER_BOOKING).contains(&request.quantity) {
        return Err(PlanError::WrongSize);
    }
    if !show.exists() || !show.on_sale(now) {
        return Err(PlanError::NotOnSale);
    }
    let invalid = |field: &str, message: String| {
        PlanError::Invalid(vec![FieldError::new(
            format!("best_available.{field}"),
            message,
        )])
    };
    let tier = match request.tier_id {
        Some(tier_id) => Some(
            show.tiers
                .iter()
                .find(|t| t.tier_id == tier_id)
                .ok_or_else(|| invalid("tier_id", format!("no tier {tier_id:?} in this event")))?,
        ),
        None => None,
    };
    let candidates: Vec<&Section> = match request.section_id {
        Some(section_id) => {
            let section = show.section(section_id).ok_or_else(|| {
                invalid(
                    "section_id",
                    format!("no section {section_id:?} in this event"),
                )
            })?;
            if !section.is_seated() {
                return Err(invalid(
                    "section_id",
                    format!("{section_id:?} is general admission: ask for general_admission"),
                ));
            }
            if tier.is_some_and(|t| !t.section_ids.iter().any(|s| s == section_id)) {
                return Err(invalid("section_id", "not a section of tier_id".into()));
            }
            vec![section]
        }
        None => show
            .sections
            .iter()
            .filter(|s| s.is_seated())
            .filter(|s| tier.is_none_or(|t| t.section_ids.iter().any(|id| id == s.section_id())))
            .collect(),
    };
    if candidates.is_empty() {
        return Err(invalid(
            "tier_id",
            "no seated section to choose from".into(),
        ));
    }
    candidates
        .into_iter()
        .map(|section| {
            let grouped = BTreeMap::from([(
                section.section_id().to_owned(),
                (
                    section.clone(),
                    HoldRequest::Seats(Vec::new()),
                    request.quantity,
                ),
            )]);
            price(show, grouped)
        })
        .collect()
}

/// Seats and places by section, each checked against the layout.
fn group_by_section(
    show: &Show,
    request: PurchaseRequest<'_>,
) -> Result<BTreeMap<String, (Section, HoldRequest, u32)>, PlanError> {
    let mut errors = Vec::new();
    let mut seats_by_section: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, seat) in request.seats.iter().enumerate() {
        let known = parse_seat_id(seat)
            .and_then(|(section_id, _, _)| show.section(section_id))
            .filter(|section| section.has_seat(seat));
        match known {
            Some(section) => seats_by_section
                .entry(section.section_id().to_owned())
                .or_default()
                .push(seat.clone()),
            None => errors.push(FieldError::new(
                format!("seats[{i}]"),
                format!("no seat {seat:?} in this event"),
            )),
        }
    }
    let mut grouped = BTreeMap::new();
    for (section_id, seats) in seats_by_section {
        if let Some(section) = show.section(&section_id) {
            let places = seats.len() as u32;
            grouped.insert(
                section_id,
                (section.clone(), HoldRequest::Seats(seats), places),
            );
        }
    }
    for (
        i,
        GeneralAdmission {
            section_id,
            quantity,
        },
    ) in request.general_admission.iter().enumerate()
    {
        let at = format!("general_admission[{i}]");
        match show.section(section_id) {
            Some(section) if !section.is_seated() && *quantity > 0 => {
                if grouped.contains_key(section_id) {
                    errors.push(FieldError::new(at, "each section at most once"));
                } else {
                    grouped.insert(
                        section_id.clone(),
                        (section.clone(), HoldRequest::Quantity(*quantity), *quantity),
                    );
                }
            }
            Some(section) if section.is_seated() => {
                errors.push(FieldError::new(
                    at,
                    format!("{section_id:?} is seated: choose seats"),
                ));
            }
            Some(_) => errors.push(FieldError::new(at, "quantity must be at least 1")),
            None => errors.push(FieldError::new(
                at,
                format!("no section {section_id:?} in this event"),
            )),
        }
    }
    let mut sorted = request.seats.to_vec();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != request.seats.len() {
        errors.push(FieldError::new("seats", "a seat is listed twice"));
    }
    if errors.is_empty() {
        Ok(grouped)
    } else {
        Err(PlanError::Invalid(errors))
    }
}

/// Each section's amount from the tier it is priced in, and the total.
fn price(
    show: &Show,
    grouped: BTreeMap<String, (Section, HoldRequest, u32)>,
) -> Result<PurchasePlan, PlanError> {
    let currency = show
        .tiers
        .first()
        .map(|t| t.price.currency.clone())
        .ok_or(PlanError::NoPricing)?;
    let mut sections = BTreeMap::new();
    for (section_id, (section, request, places)) in grouped {
        let tier = show
            .tier_of(&section_id)
            .ok_or_else(|| PlanError::Unpriced(section_id.clone()))?;
        let amount = tier.price.times(places).ok_or(PlanError::Overflow)?;
        sections.insert(
            section_id,
            SectionPlan {
                section,
                request,
                places,
                tier_id: tier.tier_id.clone(),
                amount,
            },
        );
    }
    let total =
        Money::sum(sections.values().map(|s| &s.amount), &currency).ok_or(PlanError::Overflow)?;
    Ok(PurchasePlan { sections, total })
}

/// What the sections could not give a purchase: taken seats, and general-admission sections
/// with fewer places than asked. A purchase holds everything or nothing, so every section is
/// asked and the buyer hears about all of them at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shortfall {
    pub seats: Vec<String>,
    /// (section id, places still available).
    pub sections: Vec<(String, u32)>,
}

impl Shortfall {
    /// Records a section's refusal of its hold if it is a shortfall; any other refusal is
    /// returned (the request itself is wrong for that section).
    pub fn record(
        &mut self,
        section_id: &str,
        refusal: InventoryError,
    ) -> Result<(), InventoryError> {
        match refusal {
            InventoryError::SeatsUnavailable(seats) => {
                self.seats.extend(seats);
                Ok(())
            }
            InventoryError::InsufficientCapacity { available } => {
                self.sections.push((section_id.to_owned(), available));
                Ok(())
            }
            other => Err(other),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.seats.is_empty() && self.sections.is_empty()
    }
}
