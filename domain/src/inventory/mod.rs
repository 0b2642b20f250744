//! `SectionInventory`: the seats (or general-admission places) of one section of one show —
//! the consistency boundary of inventory. A hold is one command on one section: all seats or
//! none. A hold past its expiry counts as free for the next hold (the time arrives in the
//! command), so an expired hold never blocks a buyer, even before anything cleaned it up.
//!
//! The section's layout arrives with the first hold (`Hold::section`, from the published
//! show), so the inventory is usable the moment the show is published without a separate
//! opening step that could be lost between two writes.

pub mod best_available;
mod events;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
// Persistent maps: a copy shares its nodes, so the store's working copy of a big section
// (one per decision batch) costs nothing until it changes. Serialised like `BTreeMap`.
use imbl::OrdMap;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use best_available::{BestSeats, best_available_in, choose_in_sections, choose_seats};
pub use events::InventoryEvent;

use crate::show::Section;

/// The aggregate id of a section's inventory.
pub fn inventory_id(show_id: Uuid, section_id: &str) -> String {
    format!("{show_id}:{section_id}")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldRequest {
    Seats(Vec<String>),
    Quantity(u32),
}

#[derive(Debug, Clone, PartialEq)]
pub enum InventoryCommand {
    Hold {
        show_id: Uuid,
        section: Section,
        booking_id: Uuid,
        request: HoldRequest,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    /// Frees whatever `booking_id` holds here; nothing to free is not an error.
    Release { booking_id: Uuid },
    /// Turns `booking_id`'s hold into a sale.
    ConfirmSale { booking_id: Uuid },
    /// Keeps `booking_id`'s hold until `expires_at` (payment started); fails if it lapsed.
    ExtendHold {
        booking_id: Uuid,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    /// A refunded sale: its seats or places become available again.
    ReturnSale { booking_id: Uuid },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    #[error("seats not in this section: {0:?}")]
    UnknownSeats(Vec<String>),
    #[error("seats already taken: {0:?}")]
    SeatsUnavailable(Vec<String>),
    #[error("only {available} places left")]
    InsufficientCapacity { available: u32 },
    #[error("seats are chosen in seated sections and counted in general admission")]
    WrongKind,
    #[error("a hold needs at least one seat or place")]
    EmptyRequest,
    #[error("the same seat is requested twice")]
    DuplicateSeats,
    #[error("this booking already holds other seats here")]
    BookingAlreadyHolds,
    #[error("this booking holds nothing here")]
    NoHold,
    #[error("the hold has expired")]
    HoldLapsed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub seats: Vec<String>,
    pub quantity: u32,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SectionInventory {
    pub show_id: Option<Uuid>,
    pub section: Option<Section>,
    /// Active (possibly expired) holds by booking.
    pub holds: OrdMap<Uuid, Hold>,
    /// Seat id → holding booking, for held seats.
    pub held_seats: OrdMap<String, Uuid>,
    /// Seat id → booking that bought it.
    pub sold_seats: OrdMap<String, Uuid>,
    /// General admission: places sold, by booking.
    pub sold_places: OrdMap<Uuid, u32>,
}

impl SectionInventory {
    pub fn capacity(&self) -> u32 {
        self.section.as_ref().map_or(0, Section::capacity)
    }

    pub fn sold(&self) -> u32 {
        self.sold_seats.len() as u32 + self.sold_places.values().sum::<u32>()
    }

    /// Places held by holds still valid at `now`.
    pub fn held(&self, now: DateTime<Utc>) -> u32 {
        self.holds
            .values()
            .filter(|h| h.expires_at > now)
            .map(|h| h.quantity)
            .sum()
    }

    /// Whether `booking_id` still holds places here, or has bought them: a payment that
    /// settles can then sell them.
    pub fn holds_or_sold(&self, booking_id: Uuid) -> bool {
        self.holds.contains_key(&booking_id)
            || self.sold_places.contains_key(&booking_id)
            || self.sold_seats.values().any(|b| *b == booking_id)
    }

    /// A seat's status as a seat map shows it at `now`: `sold`, `held` (by a hold that has
    /// not lapsed) or `available`.
    pub fn seat_status(&self, seat_id: &str, now: DateTime<Utc>) -> &'static str {
        if self.sold_seats.contains_key(seat_id) {
            return "sold";
        }
        let held = self
            .held_seats
            .get(seat_id)
            .and_then(|booking| self.holds.get(booking))
            .is_some_and(|hold| hold.expires_at > now);
        if held { "held" } else { "available" }
    }

    pub fn available(&self, now: DateTime<Utc>) -> u32 {
        self.capacity().saturating_sub(self.sold() + self.held(now))
    }

    /// Available places of `section` (the stored one once opened) at `now`; for a section
    /// nobody has held in yet (no stream), its capacity.
    pub fn available_in(&self, section: &Section, now: DateTime<Utc>) -> u32 {
        section
            .capacity()
            .saturating_sub(self.sold() + self.held(now))
    }

    fn expired_holds(&self, now: DateTime<Utc>) -> Vec<(Uuid, &Hold)> {
        self.holds
            .iter()
            .filter(|(_, h)| h.expires_at <= now)
            .map(|(b, h)| (*b, h))
            .collect()
    }
}

impl Aggregate for SectionInventory {
    const TYPE: &'static str = "inventory";
    type Command = InventoryCommand;
    type Event = InventoryEvent;
    type Error = InventoryError;
    type Services = ();

    async fn handle(
        &mut self,
        command: InventoryCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), InventoryError> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: InventoryEvent) {
        match event {
            InventoryEvent::SectionOpened { show_id, section } => {
                self.show_id = Some(show_id);
                self.section = Some(section);
            }
            InventoryEvent::SeatsHeld {
                booking_id,
                seats,
                quantity,
                expires_at,
            } => {
                for seat in &seats {
                    self.held_seats.insert(seat.clone(), booking_id);
                }
                self.holds.insert(
                    booking_id,
                    Hold {
                        seats,
                        quantity,
                        expires_at,
                    },
                );
            }
            InventoryEvent::HoldExpired { booking_id, .. }
            | InventoryEvent::HoldReleased { booking_id, .. } => {
                self.drop_hold(booking_id);
            }
            InventoryEvent::HoldExtended {
                booking_id,
                expires_at,
            } => {
                if let Some(hold) = self.holds.get_mut(&booking_id) {
                    hold.expires_at = expires_at;
                }
            }
            InventoryEvent::SaleReturned { booking_id, .. } => {
                self.sold_places.remove(&booking_id);
                let returned: Vec<String> = self
                    .sold_seats
                    .iter()
                    .filter(|(_, b)| **b == booking_id)
                    .map(|(seat, _)| seat.clone())
                    .collect();
                for seat in returned {
                    self.sold_seats.remove(&seat);
                }
            }
            InventoryEvent::HoldSold {
                booking_id,
                seats,
                quantity,
            } => {
                self.drop_hold(booking_id);
                if seats.is_empty() {
                    *self.sold_places.entry(booking_id).or_default() += quantity;
                }
                for seat in seats {
                    self.sold_seats.insert(seat, booking_id);
                }
            }
        }
    }
}

impl SectionInventory {
    fn drop_hold(&mut self, booking_id: Uuid) {
        if let Some(hold) = self.holds.remove(&booking_id) {
            for seat in hold.seats {
                if self.held_seats.get(&seat) == Some(&booking_id) {
                    self.held_seats.remove(&seat);
                }
            }
        }
    }

    fn decide(&self, command: InventoryCommand) -> Result<Vec<InventoryEvent>, InventoryError> {
        match command {
            InventoryCommand::Hold {
                show_id,
                section,
                booking_id,
                request,
                expires_at,
                now,
            } => self.decide_hold(show_id, section, booking_id, request, expires_at, now),
            InventoryCommand::Release { booking_id } => Ok(match self.holds.get(&booking_id) {
                Some(hold) => vec![InventoryEvent::HoldReleased {
                    booking_id,
                    seats: hold.seats.clone(),
                    quantity: hold.quantity,
                }],
                None => vec![],
            }),
            InventoryCommand::ExtendHold {
                booking_id,
                expires_at,
                now,
            } => match self.holds.get(&booking_id) {
                Some(hold) if hold.expires_at > now => {
                    if hold.expires_at >= expires_at {
                        Ok(vec![])
                    } else {
                        Ok(vec![InventoryEvent::HoldExtended {
                            booking_id,
                            expires_at,
                        }])
                    }
                }
                Some(_) => Err(InventoryError::HoldLapsed),
                None => Err(InventoryError::NoHold),
            },
            InventoryCommand::ReturnSale { booking_id } => {
                let seats: Vec<String> = self
                    .sold_seats
                    .iter()
                    .filter(|(_, b)| **b == booking_id)
                    .map(|(s, _)| s.clone())
                    .collect();
                let places = self.sold_places.get(&booking_id).copied().unwrap_or(0);
                if seats.is_empty() && places == 0 {
                    return Ok(vec![]); // nothing sold (or already returned)
                }
                let quantity = if seats.is_empty() {
                    places
                } else {
                    seats.len() as u32
                };
                Ok(vec![InventoryEvent::SaleReturned {
                    booking_id,
                    seats,
                    quantity,
                }])
            }
            InventoryCommand::ConfirmSale { booking_id } => {
                if let Some(hold) = self.holds.get(&booking_id) {
                    return Ok(vec![InventoryEvent::HoldSold {
                        booking_id,
                        seats: hold.seats.clone(),
                        quantity: hold.quantity,
                    }]);
                }
                let already_sold = self.sold_places.contains_key(&booking_id)
                    || self.sold_seats.values().any(|b| *b == booking_id);
                if already_sold {
                    Ok(vec![]) // a retried confirmation
                } else {
                    Err(InventoryError::NoHold)
                }
            }
        }
    }

    fn decide_hold(
        &self,
        show_id: Uuid,
        section: Section,
        booking_id: Uuid,
        request: HoldRequest,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<InventoryEvent>, InventoryError> {
        let section = self.section.clone().unwrap_or(section);
        let (seats, quantity) = match (&request, section.is_seated()) {
            (HoldRequest::Seats(seats), true) => {
                let mut sorted = seats.clone();
                sorted.sort();
                sorted.dedup();
                if sorted.len() != seats.len() {
                    return Err(InventoryError::DuplicateSeats);
                }
                (seats.clone(), seats.len() as u32)
            }
            (HoldRequest::Quantity(q), false) => (Vec::new(), *q),
            _ => return Err(InventoryError::WrongKind),
        };
        if quantity == 0 {
            return Err(InventoryError::EmptyRequest);
        }
        let unknown: Vec<String> = seats
            .iter()
            .filter(|s| !section.has_seat(s))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(InventoryError::UnknownSeats(unknown));
        }
        if let Some(existing) = self.holds.get(&booking_id) {
            // The same booking asking again (a retry) gets its hold back unchanged.
            return if existing.seats == seats && existing.quantity == quantity {
                Ok(vec![])
            } else {
                Err(InventoryError::BookingAlreadyHolds)
            };
        }

        let expired = self.expired_holds(now);
        let is_expired = |booking: &Uuid| expired.iter().any(|(b, _)| b == booking);
        let taken: Vec<String> = seats
            .iter()
            .filter(|s| {
                self.sold_seats.contains_key(*s)
                    || self.held_seats.get(*s).is_some_and(|b| !is_expired(b))
            })
            .cloned()
            .collect();
        if !taken.is_empty() {
            return Err(InventoryError::SeatsUnavailable(taken));
        }
        if !section.is_seated() {
            let available = self.available_in(&section, now);
            if quantity > available {
                return Err(InventoryError::InsufficientCapacity { available });
            }
        }

        let mut events = Vec::new();
        if self.section.is_none() {
            events.push(InventoryEvent::SectionOpened { show_id, section });
        }
        // Expired holds are cleaned up when a hold needs their places (seated: only those
        // holding requested seats; general admission: all, as places are fungible).
        for (booking, hold) in expired {
            let in_the_way = hold.seats.is_empty() || hold.seats.iter().any(|s| seats.contains(s));
            if in_the_way {
                events.push(InventoryEvent::HoldExpired {
                    booking_id: booking,
                    seats: hold.seats.clone(),
                    quantity: hold.quantity,
                });
            }
        }
        events.push(InventoryEvent::SeatsHeld {
            booking_id,
            seats,
            quantity,
            expires_at,
        });
        Ok(events)
    }
}
