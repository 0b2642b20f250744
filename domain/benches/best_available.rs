//! How long choosing the best available seats takes in a nearly full 10,000-seat section
//! (100 rows of 100): through an inventory (the booking endpoint's path, parsing every
//! taken seat's id) and through a free-seat view, for 2, 4 and 10 seats, adjacent or not.

use std::hint::black_box;

use chrono::DateTime;
use cqrs_es::Aggregate;
use criterion::{Criterion, criterion_group, criterion_main};
use domain::inventory::{InventoryEvent, SectionInventory, choose_seats};
use domain::show::{Row, Section};
use uuid::Uuid;

const ROWS: usize = 100;
const SEATS: usize = 100;

/// A small deterministic generator, so every run measures the same section.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Seats sold in bookings of 1 to 6 side by side, front rows first: the first 60 rows are
/// 99% sold, the back rows 90% to 80%, leaving the scattered singles and short gaps that
/// bookings leave behind.
fn nearly_full() -> Vec<Vec<bool>> {
    let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
    (0..ROWS)
        .map(|r| {
            let sold_per_mille = if r < 60 {
                990
            } else {
                900 - 2 * (r as u64 - 60)
            };
            let mut row = Vec::with_capacity(SEATS);
            while row.len() < SEATS {
                let sold = random.below(1000) < sold_per_mille;
                let group = if sold {
                    1 + random.below(6)
                } else {
                    1 + random.below(3)
                };
                for _ in 0..group {
                    if row.len() < SEATS {
                        row.push(!sold);
                    }
                }
            }
            row
        })
        .collect()
}

fn stalls() -> Section {
    Section::Seated {
        section_id: "stalls".into(),
        name: "Stalls".into(),
        rows: (0..ROWS)
            .map(|r| Row {
                row: format!("R{r}"),
                seats: SEATS as u32,
            })
            .collect(),
    }
}

fn inventory(free: &[Vec<bool>]) -> SectionInventory {
    let sold: Vec<String> = free
        .iter()
        .enumerate()
        .flat_map(|(r, row)| {
            (0..row.len())
                .filter(|&i| !row[i])
                .map(move |i| format!("stalls:R{r}:{}", i + 1))
        })
        .collect();
    let mut inventory = SectionInventory::default();
    inventory.apply(InventoryEvent::HoldSold {
        booking_id: Uuid::from_u128(1),
        quantity: sold.len() as u32,
        seats: sold,
    });
    inventory
}

fn best_available(c: &mut Criterion) {
    let free = nearly_full();
    let stalls = stalls();
    let inventory = inventory(&free);
    let is_free = |row: &str, number: u32| {
        let r: usize = row[1..].parse().unwrap_or(usize::MAX);
        free.get(r)
            .and_then(|row| row.get(number as usize - 1))
            .is_some_and(|f| *f)
    };
    let now = DateTime::UNIX_EPOCH;
    for adjacent in [true, false] {
        for quantity in [2, 4, 10] {
            let mode = if adjacent { "adjacent" } else { "apart" };
            c.bench_function(&format!("inventory/{mode}/{quantity}"), |b| {
                b.iter(|| inventory.best_available(&stalls, black_box(quantity), adjacent, now))
            });
            c.bench_function(&format!("view/{mode}/{quantity}"), |b| {
                b.iter(|| choose_seats(&stalls, is_free, black_box(quantity), adjacent))
            });
        }
    }
}

/// The apart choice's worst layout: one empty row of 10,000 seats, where every seat it
/// weighs sits in one long run of free seats.
fn one_long_row(c: &mut Criterion) {
    let hall = Section::Seated {
        section_id: "hall".into(),
        name: "Hall".into(),
        rows: vec![Row {
            row: "A".into(),
            seats: 10_000,
        }],
    };
    for quantity in [2, 10] {
        c.bench_function(&format!("one-row/apart/{quantity}"), |b| {
            b.iter(|| choose_seats(&hall, |_, _| true, black_box(quantity), false))
        });
    }
}

criterion_group!(benches, best_available, one_long_row);
criterion_main!(benches);
