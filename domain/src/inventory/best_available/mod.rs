//! Best-available seats: which free seats of a seated section (or of the first of several
//! sections where they fit) a buyer who asked for "the best N seats" gets. Pure decisions
//! over a view of which seats are free; holding them stays the inventory's job.
//!
//! # Semantics
//!
//! Rows are ranked in layout order; within a row a seat `n` of a row of `len` seats sits
//! `|2n - (len + 1)|` half-seats from the row's centre, and a block of `q` seats starting at
//! `s` sits `|2s + q - 1 - (len + 1)|` half-seats from it (its centre against the row's).
//!
//! A **lone seat** is a free seat whose neighbours on both sides (a row end counts as
//! taken) are taken after the choice, although it was not lone before. A free seat that was
//! already lone is not counted, whether it is taken or left. Every choice minimises the lone
//! seats it creates first: one that creates none wins over any that creates some, and
//! only when every choice creates some is the best of those with the fewest taken.
//!
//! - **Adjacent** (`adjacent: true`): `q` free seats side by side in one row. Among the blocks
//!   with the fewest lone seats created: the first row in layout order, then the block whose
//!   centre is nearest the row's centre, then the lower seat numbers.
//! - **Apart** (`adjacent: false`): any `q` free seats of the section. Among the sets with the
//!   fewest lone seats created: the best seats, comparing sets by their seats' ranks (row in
//!   layout order, then distance from the row's centre, then seat number), best seat first,
//!   then second best, and so on (the lexicographically smallest sorted list of ranks).
//! - **Several sections** (in the caller's order, e.g. layout order): the first seated
//!   section where the seats fit wins; lone seats are weighed within that section only, as
//!   "the first section where they fit" comes first. General-admission sections are skipped.
//!
//! `None` means the seats do not fit: fewer than `q` free seats (apart), no `q` free seats
//! side by side in any row (adjacent), a general-admission section, or `q = 0`. Seats come
//! back in layout order: row by row, ascending seat numbers.

mod apart;
mod together;

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::SectionInventory;
use crate::show::Row;
use crate::show::Section;
use crate::show::layout::{parse_seat_id, seat_id};

/// The seats chosen and the section they are in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BestSeats {
    pub section_id: String,
    pub seats: Vec<String>,
}

/// Chooses `quantity` seats of `section`, where `is_free(row, number)` says which seats
/// may be chosen. See the module documentation for the order of preference.
pub fn choose_seats(
    section: &Section,
    is_free: impl Fn(&str, u32) -> bool,
    quantity: u32,
    adjacent: bool,
) -> Option<Vec<String>> {
    let Section::Seated { rows, .. } = section else {
        return None;
    };
    let free = rows
        .iter()
        .map(|r| (1..=r.seats).map(|n| is_free(&r.row, n)).collect())
        .collect();
    choose_in_grid(section, &free, quantity, adjacent)
}

/// Chooses in the first of `candidates` (each section with its `is_free`) where the seats
/// fit.
pub fn choose_in_sections<'s, F>(
    candidates: impl IntoIterator<Item = (&'s Section, F)>,
    quantity: u32,
    adjacent: bool,
) -> Option<BestSeats>
where
    F: Fn(&str, u32) -> bool,
{
    candidates.into_iter().find_map(|(section, is_free)| {
        let seats = choose_seats(section, is_free, quantity, adjacent)?;
        Some(BestSeats {
            section_id: section.section_id().to_owned(),
            seats,
        })
    })
}

/// Chooses in the first of `candidates` (each section with its inventory) where the seats
/// fit, as each inventory sees its seats at `now`.
pub fn best_available_in<'s>(
    candidates: impl IntoIterator<Item = (&'s Section, &'s SectionInventory)>,
    quantity: u32,
    adjacent: bool,
    now: DateTime<Utc>,
) -> Option<BestSeats> {
    candidates.into_iter().find_map(|(section, inventory)| {
        let seats = inventory.best_available(section, quantity, adjacent, now)?;
        Some(BestSeats {
            section_id: section.section_id().to_owned(),
            seats,
        })
    })
}

impl SectionInventory {
    /// The best `quantity` seats free at `now`: neither sold nor held by a hold that is
    /// still valid (an expired hold's seats are free, as they are for a hold). `section` is
    /// the published one, used until the inventory has its own (as for a hold).
    pub fn best_available(
        &self,
        section: &Section,
        quantity: u32,
        adjacent: bool,
        now: DateTime<Utc>,
    ) -> Option<Vec<String>> {
        let section = self.section.as_ref().unwrap_or(section);
        let Section::Seated {
            section_id, rows, ..
        } = section
        else {
            return None;
        };
        // Marking the taken seats from their ids beats asking the maps about every seat:
        // a section holds up to 10,000 seats and a decision should take well under 1 ms.
        let mut free: Vec<Vec<bool>> = rows.iter().map(|r| vec![true; r.seats as usize]).collect();
        let index: HashMap<&str, usize> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r.row.as_str(), i))
            .collect();
        let live_holds = self.held_seats.iter().filter(|(_, booking)| {
            self.holds
                .get(*booking)
                .is_some_and(|hold| hold.expires_at > now)
        });
        let taken = self
            .sold_seats
            .keys()
            .chain(live_holds.map(|(seat, _)| seat));
        // Ids come sorted, so a row's seats arrive together: the last row found is reused.
        let mut last: Option<(&str, usize)> = None;
        for seat in taken {
            let Some((section, row, number)) = parse_seat_id(seat) else {
                continue;
            };
            let r = match last {
                Some((name, r)) if name == row => r,
                _ => match index.get(row) {
                    Some(&r) => {
                        last = Some((row, r));
                        r
                    }
                    None => continue,
                },
            };
            let cell = free[r].get_mut((number as usize).wrapping_sub(1));
            if let Some(cell) = cell.filter(|_| section == section_id) {
                *cell = false;
            }
        }
        choose_in_grid(section, &free, quantity, adjacent)
    }
}

/// `free[r][i]`: whether seat `i + 1` of row `r` (layout order) is free.
type Grid = Vec<Vec<bool>>;

fn choose_in_grid(
    section: &Section,
    free: &Grid,
    quantity: u32,
    adjacent: bool,
) -> Option<Vec<String>> {
    let Section::Seated {
        section_id, rows, ..
    } = section
    else {
        return None;
    };
    let quantity = quantity as usize;
    if quantity == 0 {
        return None;
    }
    let chosen = if adjacent {
        together::choose(free, quantity)?
    } else {
        apart::choose(free, quantity)?
    };
    Some(ids(section_id, rows, chosen))
}

/// Seat ids of `(row index, seat index)` pairs, in layout order.
fn ids(section_id: &str, rows: &[Row], mut chosen: Vec<(usize, usize)>) -> Vec<String> {
    chosen.sort_unstable();
    chosen
        .into_iter()
        .map(|(r, i)| seat_id(section_id, &rows[r].row, i as u32 + 1))
        .collect()
}

/// Maximal stretches of free seats of a row: `(first seat index, length)`.
fn runs(row: &[bool]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < row.len() {
        if row[i] {
            let start = i;
            while i < row.len() && row[i] {
                i += 1;
            }
            runs.push((start, i - start));
        } else {
            i += 1;
        }
    }
    runs
}

/// Lone seats created by taking a run's seats so that `left` free seats stay before and
/// `right` after: a run of one seat was lone already.
fn lone_left_by(run_len: usize, left: usize, right: usize) -> usize {
    if run_len < 2 {
        return 0;
    }
    usize::from(left == 1) + usize::from(right == 1)
}
