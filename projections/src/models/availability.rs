//! `availability`: what is free, held and sold — `section_view` (layout, capacity,
//! general-admission sales), `seat_hold_view` (held and sold seats) and `ga_hold_view`
//! (general-admission holds) — from the `Show` and `SectionInventory` streams. Expiry is
//! judged when read (a hold past `expires_at` counts as available), as the inventory itself
//! does. Tables: `migrations/0006_catalog_and_availability.sql`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::inventory::InventoryEvent;
use domain::show::{Section, ShowEvent};
use plumbing::position::ReadModel;
use schemas::DecodedEvent;
use schemas::api::events::{SeatState, SeatStatus, SectionAvailability, SectionKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use super::ids::{inventory_id, uuid_id};
use crate::fold::{Fact, Model, NoGroup, Poison, Row, Ts, json};

pub const NAME: ReadModel = ReadModel {
    consumer: "availability",
    aggregate_types: &["show", "inventory"],
};

/// Events with at most this many seats list every seat's status without being asked.
pub const SEAT_LIST_LIMIT: u32 = 5_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SectionRow {
    pub event_id: Uuid,
    pub section_id: String,
    pub position: i32,
    pub kind: Option<String>,
    pub capacity: i32,
    pub layout: Option<Value>,
    pub sold_places: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SectionKey {
    pub event_id: Uuid,
    pub section_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EventGroup {
    pub event_id: Uuid,
}

impl Row for SectionRow {
    const TABLE: &'static str = "section_view";
    type Key = SectionKey;
    type Group = EventGroup;
    fn key(&self) -> SectionKey {
        SectionKey {
            event_id: self.event_id,
            section_id: self.section_id.clone(),
        }
    }
    fn group(&self) -> Option<EventGroup> {
        Some(EventGroup {
            event_id: self.event_id,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeatHoldRow {
    pub event_id: Uuid,
    pub section_id: String,
    pub seat_id: String,
    /// `held` or `sold`.
    pub status: String,
    pub booking_id: Uuid,
    pub expires_at: Option<Ts>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SeatKey {
    pub event_id: Uuid,
    pub seat_id: String,
}

/// A booking's seats in one section.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HolderGroup {
    pub event_id: Uuid,
    pub section_id: String,
    pub booking_id: Uuid,
}

impl Row for SeatHoldRow {
    const TABLE: &'static str = "seat_hold_view";
    type Key = SeatKey;
    type Group = HolderGroup;
    fn key(&self) -> SeatKey {
        SeatKey {
            event_id: self.event_id,
            seat_id: self.seat_id.clone(),
        }
    }
    fn group(&self) -> Option<HolderGroup> {
        Some(HolderGroup {
            event_id: self.event_id,
            section_id: self.section_id.clone(),
            booking_id: self.booking_id,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GaHoldRow {
    pub event_id: Uuid,
    pub section_id: String,
    pub booking_id: Uuid,
    pub quantity: i32,
    pub expires_at: Ts,
}

impl Row for GaHoldRow {
    const TABLE: &'static str = "ga_hold_view";
    type Key = HolderGroup;
    type Group = NoGroup;
    fn key(&self) -> HolderGroup {
        HolderGroup {
            event_id: self.event_id,
            section_id: self.section_id.clone(),
            booking_id: self.booking_id,
        }
    }
}

crate::rows! {
    pub struct Rows { sections: SectionRow, seats: SeatHoldRow, ga: GaHoldRow }
}

const HELD: &str = "held";
const SOLD: &str = "sold";

fn places(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

pub struct Availability;

impl Model for Availability {
    const NAME: ReadModel = NAME;
    type Rows = Rows;

    fn apply(rows: &mut Rows, fact: &Fact) -> Result<(), Poison> {
        match &fact.event {
            DecodedEvent::Show(ShowEvent::LayoutSet { sections }) => {
                set_layout(rows, uuid_id("show", fact)?, sections);
            }
            DecodedEvent::Inventory(event) => {
                let (event_id, section_id) = inventory_id(fact)?;
                let holder = |booking_id: &Uuid| HolderGroup {
                    event_id,
                    section_id: section_id.clone(),
                    booking_id: *booking_id,
                };
                apply_inventory(rows, event, event_id, &section_id, holder);
            }
            _ => {}
        }
        Ok(())
    }
}

/// Replaces the sections of a (draft) show, keeping the counters of sections that stay.
fn set_layout(rows: &mut Rows, event_id: Uuid, sections: &[Section]) {
    for key in rows.sections.group(&EventGroup { event_id }) {
        if sections.iter().any(|s| s.section_id() == key.section_id) {
            continue;
        }
        // Live, a section's sales can arrive before its show's layouts (they travel on
        // other topics): a section with sales loses only its layout, so the counter
        // survives an older layout that did not list it yet.
        let sold = rows.sections.get(&key).map_or(0, |s| s.sold_places);
        if sold == 0 {
            rows.sections.remove(&key);
        } else {
            rows.sections.update(&key, |s| {
                s.position = 0;
                s.kind = None;
                s.capacity = 0;
                s.layout = None;
            });
        }
    }
    for (position, section) in sections.iter().enumerate() {
        let key = SectionKey {
            event_id,
            section_id: section.section_id().to_owned(),
        };
        let sold_places = rows.sections.get(&key).map_or(0, |s| s.sold_places);
        rows.sections.put(SectionRow {
            event_id,
            section_id: key.section_id,
            position: i32::try_from(position).unwrap_or(i32::MAX),
            kind: Some(
                if section.is_seated() {
                    "seated"
                } else {
                    "general_admission"
                }
                .into(),
            ),
            capacity: places(section.capacity()),
            layout: Some(json(section)),
            sold_places,
        });
    }
}

fn apply_inventory(
    rows: &mut Rows,
    event: &InventoryEvent,
    event_id: Uuid,
    section_id: &str,
    holder: impl Fn(&Uuid) -> HolderGroup,
) {
    let seat_key = |seat: &String| SeatKey {
        event_id,
        seat_id: seat.clone(),
    };
    let section_key = SectionKey {
        event_id,
        section_id: section_id.to_owned(),
    };
    match event {
        InventoryEvent::SectionOpened { .. } => {}
        InventoryEvent::SeatsHeld {
            booking_id,
            seats,
            quantity,
            expires_at,
        } => {
            if seats.is_empty() {
                rows.ga.put(GaHoldRow {
                    event_id,
                    section_id: section_id.to_owned(),
                    booking_id: *booking_id,
                    quantity: places(*quantity),
                    expires_at: (*expires_at).into(),
                });
            }
            // The inventory only holds free (or expired) seats, so a row a held seat still
            // has is a superseded hold.
            for seat in seats {
                rows.seats.put(SeatHoldRow {
                    event_id,
                    section_id: section_id.to_owned(),
                    seat_id: seat.clone(),
                    status: HELD.into(),
                    booking_id: *booking_id,
                    expires_at: Some((*expires_at).into()),
                });
            }
        }
        InventoryEvent::HoldExpired {
            booking_id, seats, ..
        }
        | InventoryEvent::HoldReleased {
            booking_id, seats, ..
        } => {
            if seats.is_empty() {
                rows.ga.remove(&holder(booking_id));
            }
            // Only what this booking held: a seat may already be held by a newer booking.
            for seat in seats {
                remove_if(rows, &seat_key(seat), booking_id, HELD);
            }
        }
        InventoryEvent::HoldExtended {
            booking_id,
            expires_at,
        } => {
            let until = Some(Ts::from(*expires_at));
            for key in rows.seats.group(&holder(booking_id)) {
                rows.seats.update(&key, |s| {
                    if s.status == HELD {
                        s.expires_at = until;
                    }
                });
            }
            rows.ga
                .update(&holder(booking_id), |g| g.expires_at = (*expires_at).into());
        }
        InventoryEvent::SaleReturned {
            booking_id,
            seats,
            quantity,
        } => {
            if seats.is_empty() {
                rows.sections.update(&section_key, |s| {
                    s.sold_places = (s.sold_places - places(*quantity)).max(0);
                });
            }
            for seat in seats {
                remove_if(rows, &seat_key(seat), booking_id, SOLD);
            }
        }
        InventoryEvent::HoldSold {
            booking_id,
            seats,
            quantity,
        } => {
            if seats.is_empty() {
                rows.ga.remove(&holder(booking_id));
                // The section's row may not exist yet: the show's layout travels on another
                // topic, so live it can arrive after the first sale.
                let mut row = rows
                    .sections
                    .get(&section_key)
                    .cloned()
                    .unwrap_or(SectionRow {
                        event_id,
                        section_id: section_id.to_owned(),
                        position: 0,
                        kind: None,
                        capacity: 0,
                        layout: None,
                        sold_places: 0,
                    });
                row.sold_places += places(*quantity);
                rows.sections.put(row);
            }
            for seat in seats {
                rows.seats.put(SeatHoldRow {
                    event_id,
                    section_id: section_id.to_owned(),
                    seat_id: seat.clone(),
                    status: SOLD.into(),
                    booking_id: *booking_id,
                    expires_at: None,
                });
            }
        }
    }
}

/// Deletes the seat's row if `booking_id` has it in `status`.
fn remove_if(rows: &mut Rows, key: &SeatKey, booking_id: &Uuid, status: &str) {
    let matches = rows
        .seats
        .get(key)
        .is_some_and(|s| s.booking_id == *booking_id && s.status == status);
    if matches {
        rows.seats.remove(key);
    }
}

#[derive(sqlx::FromRow)]
struct HeldSeat {
    section_id: String,
    seat_id: String,
    status: String,
    expires_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct GaState {
    section_id: String,
    sold_places: i32,
    held_places: i64,
}

/// The availability of `event_id`'s sections as of `now`: every section of `layout`, or
/// only `only`. Seats are listed for one section, or for every section of an event with at
/// most `SEAT_LIST_LIMIT` seats.
pub async fn sections(
    conn: &mut PgConnection,
    event_id: Uuid,
    layout: &[Section],
    only: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<SectionAvailability>, sqlx::Error> {
    let seats: Vec<HeldSeat> = sqlx::query_as(
        "SELECT section_id, seat_id, status, expires_at FROM seat_hold_view WHERE event_id = $1",
    )
    .bind(event_id)
    .fetch_all(&mut *conn)
    .await?;
    let ga: Vec<GaState> = sqlx::query_as(
        "SELECT s.section_id, s.sold_places,
                coalesce((SELECT sum(quantity) FROM ga_hold_view g
                           WHERE g.event_id = s.event_id AND g.section_id = s.section_id
                             AND g.expires_at > $2), 0)::bigint AS held_places
           FROM section_view s WHERE s.event_id = $1",
    )
    .bind(event_id)
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    let ga: HashMap<&str, &GaState> = ga.iter().map(|r| (r.section_id.as_str(), r)).collect();

    // Seat id → state, counting a hold past its expiry as available.
    let mut taken: HashMap<&str, SeatState> = HashMap::new();
    for seat in &seats {
        let state = match seat.status.as_str() {
            SOLD => SeatState::Sold,
            _ if seat.expires_at.is_some_and(|e| e > now) => SeatState::Held,
            _ => continue,
        };
        taken.insert(seat.seat_id.as_str(), state);
    }
    let seated_total: u32 = layout
        .iter()
        .filter(|s| s.is_seated())
        .map(Section::capacity)
        .sum();
    let list_seats = only.is_some() || seated_total <= SEAT_LIST_LIMIT;

    let mut out = Vec::new();
    for section in layout
        .iter()
        .filter(|s| only.is_none_or(|id| s.section_id() == id))
    {
        let capacity = section.capacity();
        if section.is_seated() {
            let count = |wanted: SeatState| {
                seats
                    .iter()
                    .filter(|s| s.section_id == section.section_id())
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
    Ok(out)
}
