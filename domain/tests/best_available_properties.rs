//! Property tests of best-available seats over random layouts and random taken seats,
//! checked against brute force: every candidate block, or every set of seats on small
//! layouts.

mod support;

use domain::inventory::{InventoryEvent, SectionInventory, choose_in_sections, choose_seats};
use domain::show::layout::parse_seat_id;
use proptest::collection::vec;
use proptest::prelude::*;
use uuid::Uuid;

use cqrs_es::Aggregate;
use support::{grid_view, row_index, section};

/// `free[r][i]`: seat `i + 1` of row `r` is free.
type Grid = Vec<Vec<bool>>;
type Seat = (usize, usize);
/// Lone seats created, row, distance from the centre in half-seats, first seat.
type BlockKey = (usize, usize, usize, usize);

/// Rows of random length with a random share of their seats taken.
fn grids(rows: usize, seats: usize) -> impl Strategy<Value = Grid> {
    (0u32..=100).prop_flat_map(move |taken| {
        let seat = prop::bool::weighted(f64::from(taken) / 100.0).prop_map(|t| !t);
        vec(vec(seat, 1..=seats), 1..=rows)
    })
}

fn layout(free: &Grid) -> domain::show::Section {
    let lens: Vec<u32> = free.iter().map(|row| row.len() as u32).collect();
    section("s", &lens)
}

fn choose(free: &Grid, quantity: u32, adjacent: bool) -> Option<Vec<Seat>> {
    let seats = choose_seats(&layout(free), grid_view(free), quantity, adjacent)?;
    Some(seats.iter().map(|id| seat(id)).collect())
}

fn seat(id: &str) -> Seat {
    let (_, row, number) = parse_seat_id(id).expect("a canonical seat id");
    (row_index(row), number as usize - 1)
}

/// Lone seats after taking `chosen`, by the definition: free, both neighbours taken or a
/// row end, and not so before.
fn lone_created(free: &Grid, chosen: &[Seat]) -> usize {
    let after: Grid = free
        .iter()
        .enumerate()
        .map(|(r, row)| {
            (0..row.len())
                .map(|i| row[i] && !chosen.contains(&(r, i)))
                .collect()
        })
        .collect();
    let lone = |grid: &Grid, r: usize, i: usize| {
        let row = &grid[r];
        row[i] && (i == 0 || !row[i - 1]) && (i + 1 == row.len() || !row[i + 1])
    };
    (0..free.len())
        .flat_map(|r| (0..free[r].len()).map(move |i| (r, i)))
        .filter(|&(r, i)| lone(&after, r, i) && !lone(free, r, i))
        .count()
}

/// Every block of `quantity` free seats side by side, with the key the module documents.
fn blocks(free: &Grid, quantity: usize) -> Vec<(Vec<Seat>, BlockKey)> {
    let mut all = Vec::new();
    for (r, row) in free.iter().enumerate() {
        for s in 0..=row.len().saturating_sub(quantity) {
            if s + quantity <= row.len() && row[s..s + quantity].iter().all(|f| *f) {
                let block: Vec<Seat> = (s..s + quantity).map(|i| (r, i)).collect();
                let distance = (2 * s + quantity).abs_diff(row.len());
                all.push((block.clone(), (lone_created(free, &block), r, distance, s)));
            }
        }
    }
    all
}

/// Every set of `quantity` free seats.
fn subsets(free: &Grid, quantity: usize) -> Vec<Vec<Seat>> {
    fn extend(from: &[Seat], quantity: usize, current: &mut Vec<Seat>, out: &mut Vec<Vec<Seat>>) {
        if current.len() == quantity {
            out.push(current.clone());
            return;
        }
        for (k, seat) in from.iter().enumerate() {
            current.push(*seat);
            extend(&from[k + 1..], quantity, current, out);
            current.pop();
        }
    }
    let seats: Vec<Seat> = (0..free.len())
        .flat_map(|r| (0..free[r].len()).map(move |i| (r, i)))
        .filter(|&(r, i)| free[r][i])
        .collect();
    let mut out = Vec::new();
    extend(&seats, quantity, &mut Vec::new(), &mut out);
    out
}

/// A set's seat ranks, best first: row, distance from the centre, seat.
fn ranks(free: &Grid, seats: &[Seat]) -> Vec<(usize, usize, usize)> {
    let mut ranks: Vec<_> = seats
        .iter()
        .map(|&(r, i)| (r, (2 * i + 1).abs_diff(free[r].len()), i))
        .collect();
    ranks.sort_unstable();
    ranks
}

proptest! {
    #[test]
    fn never_chooses_a_taken_seat_nor_the_same_seat_twice(
        free in grids(8, 60), quantity in 1u32..=10, adjacent in any::<bool>(),
    ) {
        if let Some(chosen) = choose(&free, quantity, adjacent) {
            prop_assert!(chosen.iter().all(|&(r, i)| free[r][i]));
            let mut unique = chosen.clone();
            unique.sort_unstable();
            unique.dedup();
            prop_assert_eq!(unique.len(), chosen.len());
        }
    }

    #[test]
    fn chooses_exactly_the_quantity_and_declines_only_when_nothing_fits(
        free in grids(8, 60), quantity in 1u32..=10, adjacent in any::<bool>(),
    ) {
        let fits = if adjacent {
            !blocks(&free, quantity as usize).is_empty()
        } else {
            free.iter().flatten().filter(|f| **f).count() >= quantity as usize
        };
        match choose(&free, quantity, adjacent) {
            Some(chosen) => prop_assert_eq!(chosen.len(), quantity as usize),
            None => prop_assert!(!fits, "declined although the seats fit"),
        }
    }

    #[test]
    fn adjacent_seats_sit_side_by_side_in_one_row(
        free in grids(8, 60), quantity in 1u32..=10,
    ) {
        if let Some(chosen) = choose(&free, quantity, true) {
            let (row, first) = chosen[0];
            let expected: Vec<Seat> = (first..first + quantity as usize).map(|i| (row, i)).collect();
            prop_assert_eq!(chosen, expected);
        }
    }

    #[test]
    fn adjacent_takes_the_best_block_and_leaves_no_avoidable_lone_seat(
        free in grids(8, 60), quantity in 1u32..=10,
    ) {
        let all = blocks(&free, quantity as usize);
        let best = all.iter().min_by_key(|(_, key)| *key);
        let chosen = choose(&free, quantity, true);
        prop_assert_eq!(chosen.as_ref(), best.map(|(block, _)| block));
        if let Some(chosen) = chosen {
            let fewest = all.iter().map(|(_, key)| key.0).min();
            prop_assert_eq!(Some(lone_created(&free, &chosen)), fewest);
        }
    }

    #[test]
    fn apart_takes_the_best_seats_and_leaves_no_avoidable_lone_seat(
        free in grids(3, 6), quantity in 1u32..=4,
    ) {
        let all = subsets(&free, quantity as usize);
        let fewest = all.iter().map(|set| lone_created(&free, set)).min();
        let best = all
            .iter()
            .filter(|set| Some(lone_created(&free, set)) == fewest)
            .map(|set| ranks(&free, set))
            .min();
        let chosen = choose(&free, quantity, false);
        prop_assert_eq!(chosen.as_ref().map(|set| lone_created(&free, set)), fewest);
        prop_assert_eq!(chosen.map(|set| ranks(&free, &set)), best);
    }

    #[test]
    fn one_seat_is_the_same_choice_adjacent_or_apart(free in grids(8, 60)) {
        prop_assert_eq!(choose(&free, 1, true), choose(&free, 1, false));
    }

    #[test]
    fn an_inventory_chooses_as_its_seats_are_free_and_always_alike(
        free in grids(8, 60), quantity in 1u32..=10, adjacent in any::<bool>(),
    ) {
        let stalls = layout(&free);
        let sold: Vec<String> = free
            .iter()
            .enumerate()
            .flat_map(|(r, row)| {
                (0..row.len()).filter(|&i| !row[i]).map(move |i| format!("s:R{r}:{}", i + 1))
            })
            .collect();
        let mut inventory = SectionInventory::default();
        inventory.apply(InventoryEvent::HoldSold {
            booking_id: Uuid::from_u128(7),
            quantity: sold.len() as u32,
            seats: sold,
        });
        let now = chrono::DateTime::UNIX_EPOCH;
        let from_inventory = inventory.best_available(&stalls, quantity, adjacent, now);
        let from_view = choose_seats(&stalls, grid_view(&free), quantity, adjacent);
        prop_assert_eq!(&from_inventory, &from_view);
        prop_assert_eq!(from_inventory, inventory.best_available(&stalls, quantity, adjacent, now));
    }

    #[test]
    fn several_sections_choose_in_the_first_where_the_seats_fit(
        sections in vec(grids(3, 12), 1..=4), quantity in 1u32..=6, adjacent in any::<bool>(),
    ) {
        let layouts: Vec<_> = sections
            .iter()
            .enumerate()
            .map(|(k, free)| {
                let lens: Vec<u32> = free.iter().map(|row| row.len() as u32).collect();
                section(&format!("s{k}"), &lens)
            })
            .collect();
        let chosen = choose_in_sections(
            layouts.iter().zip(&sections).map(|(l, free)| (l, grid_view(free))),
            quantity,
            adjacent,
        );
        let first = sections
            .iter()
            .enumerate()
            .find_map(|(k, free)| Some((k, choose(free, quantity, adjacent)?)));
        match (chosen, first) {
            (Some(chosen), Some((k, seats))) => {
                prop_assert_eq!(chosen.section_id, format!("s{k}"));
                let ids: Vec<Seat> = chosen.seats.iter().map(|id| seat(id)).collect();
                prop_assert_eq!(ids, seats);
            }
            (chosen, first) => prop_assert!(chosen.is_none() && first.is_none()),
        }
    }
}
