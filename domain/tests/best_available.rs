//! Best-available seats: property tests against brute force over small layouts, and
//! examples of each rule (row order, centre, lone seats, sections, holds).

mod support;

use chrono::{Duration, TimeZone, Utc};
use cqrs_es::Aggregate;
use domain::inventory::{
    InventoryEvent, SectionInventory, best_available_in, choose_in_sections, choose_seats,
};
use domain::show::Section;
use uuid::Uuid;

use support::{section, taken_in};

#[test]
fn picks_the_centre_of_the_first_row_in_an_empty_section() {
    let stalls = section("s", &[10, 10]);
    let seats = choose_seats(&stalls, |_, _| true, 2, true).expect("an empty section fits two");
    assert_eq!(seats, ["s:R0:5", "s:R0:6"]);
}

#[test]
fn prefers_the_lower_seats_when_two_blocks_are_equally_central() {
    let stalls = section("s", &[10]);
    let seats = choose_seats(&stalls, |_, _| true, 3, true).expect("fits");
    assert_eq!(seats, ["s:R0:4", "s:R0:5", "s:R0:6"]);
}

#[test]
fn moves_back_a_row_rather_than_leave_a_lone_seat() {
    // Row 0 has three free seats: two of them side by side would strand the third. In row
    // 1 the central pairs would strand seat 1 or 5, so the pair goes to an end.
    let stalls = section("s", &[5, 5]);
    let free = taken_in(&[&[1, 5], &[]]);
    let seats = choose_seats(&stalls, free, 2, true).expect("fits");
    assert_eq!(seats, ["s:R1:1", "s:R1:2"]);
}

#[test]
fn leaves_a_lone_seat_only_when_every_choice_does() {
    let stalls = section("s", &[5]);
    let seats = choose_seats(&stalls, taken_in(&[&[1, 5]]), 2, true).expect("fits");
    assert_eq!(seats, ["s:R0:2", "s:R0:3"]);
}

#[test]
fn takes_a_block_off_centre_rather_than_split_a_run_into_lone_seats() {
    // Seats 1 to 5 free: 3-4 is central but strands seat 5; 4-5 is the nearest block
    // that strands nothing.
    let stalls = section("s", &[6]);
    let seats = choose_seats(&stalls, taken_in(&[&[6]]), 2, true).expect("fits");
    assert_eq!(seats, ["s:R0:4", "s:R0:5"]);
}

#[test]
fn apart_takes_the_best_seats_of_several_rows_when_no_row_has_them_side_by_side() {
    let stalls = section("s", &[3, 3]);
    let free = taken_in(&[&[1, 3], &[2]]);
    assert_eq!(choose_seats(&stalls, &free, 3, true), None);
    let seats = choose_seats(&stalls, &free, 3, false).expect("three seats are free");
    assert_eq!(seats, ["s:R0:2", "s:R1:1", "s:R1:3"]);
}

#[test]
fn apart_passes_over_the_best_seat_when_taking_it_would_strand_a_neighbour() {
    // Row 0's centre seat 2 would leave 1 or 3 alone whatever comes with it; seat 1 can go
    // with an end seat of row 1, whose centre seats would strand that row's end seat.
    let stalls = section("s", &[3, 4]);
    let seats = choose_seats(&stalls, taken_in(&[&[], &[]]), 2, false).expect("fits");
    assert_eq!(seats, ["s:R0:1", "s:R1:1"]);
}

#[test]
fn nothing_fits_when_too_few_seats_are_free() {
    let stalls = section("s", &[4]);
    let free = taken_in(&[&[2]]);
    assert_eq!(choose_seats(&stalls, &free, 4, false), None);
    assert_eq!(choose_seats(&stalls, &free, 3, true), None);
    assert_eq!(choose_seats(&stalls, &free, 0, true), None);
}

#[test]
fn the_first_section_where_the_seats_fit_wins_and_general_admission_is_skipped() {
    let floor = Section::GeneralAdmission {
        section_id: "floor".into(),
        name: "Floor".into(),
        capacity: 100,
    };
    let full = section("front", &[4]);
    let back = section("back", &[4]);
    let chosen = choose_in_sections(
        [
            (&floor, taken_in(&[])),
            (&full, taken_in(&[&[1, 2, 3, 4]])),
            (&back, taken_in(&[&[]])),
        ],
        2,
        true,
    )
    .expect("the back section fits");
    assert_eq!(chosen.section_id, "back");
    assert_eq!(chosen.seats, ["back:R0:1", "back:R0:2"]);
}

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 18, 0, 0)
        .single()
        .expect("a valid time")
}

fn inventory_with(stalls: &Section, events: Vec<InventoryEvent>) -> SectionInventory {
    let mut inventory = SectionInventory::default();
    inventory.apply(InventoryEvent::SectionOpened {
        show_id: Uuid::from_u128(1),
        section: stalls.clone(),
    });
    for event in events {
        inventory.apply(event);
    }
    inventory
}

#[test]
fn an_inventory_never_offers_sold_or_live_held_seats() {
    let stalls = section("s", &[4]);
    let inventory = inventory_with(
        &stalls,
        vec![
            InventoryEvent::SeatsHeld {
                booking_id: Uuid::from_u128(2),
                seats: vec!["s:R0:2".into()],
                quantity: 1,
                expires_at: t0() + Duration::minutes(5),
            },
            InventoryEvent::HoldSold {
                booking_id: Uuid::from_u128(3),
                seats: vec!["s:R0:3".into()],
                quantity: 1,
            },
        ],
    );
    assert_eq!(inventory.best_available(&stalls, 2, true, t0()), None);
    let seats = inventory
        .best_available(&stalls, 2, false, t0())
        .expect("seats 1 and 4 are free");
    assert_eq!(seats, ["s:R0:1", "s:R0:4"]);
}

#[test]
fn an_expired_hold_counts_as_free() {
    let stalls = section("s", &[4]);
    let inventory = inventory_with(
        &stalls,
        vec![
            InventoryEvent::SeatsHeld {
                booking_id: Uuid::from_u128(2),
                seats: vec!["s:R0:2".into(), "s:R0:3".into()],
                quantity: 2,
                expires_at: t0(),
            },
            InventoryEvent::HoldSold {
                booking_id: Uuid::from_u128(3),
                seats: vec!["s:R0:1".into(), "s:R0:4".into()],
                quantity: 2,
            },
        ],
    );
    let seats = inventory
        .best_available(&stalls, 2, true, t0())
        .expect("the hold lapsed at t0");
    assert_eq!(seats, ["s:R0:2", "s:R0:3"]);
}

#[test]
fn an_unopened_inventory_chooses_in_the_published_section() {
    let stalls = section("s", &[3]);
    let empty = SectionInventory::default();
    let full = inventory_with(
        &section("t", &[1]),
        vec![InventoryEvent::HoldSold {
            booking_id: Uuid::from_u128(3),
            seats: vec!["t:R0:1".into()],
            quantity: 1,
        }],
    );
    let t = section("t", &[1]);
    let chosen = best_available_in([(&t, &full), (&stalls, &empty)], 1, true, t0())
        .expect("the stalls are empty");
    assert_eq!(chosen.section_id, "s");
    // The centre seat would strand both ends; the ends are equally central.
    assert_eq!(chosen.seats, ["s:R0:1"]);
}
