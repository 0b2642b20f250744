//! The purchase planner's rules: grouping, validation, the sales window, pricing and the
//! all-or-nothing shortfall.

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::show::{Row, ShowStatus, Tier};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()
}

fn show() -> Show {
    Show {
        show_id: Some(Uuid::from_u128(7)),
        organizer_id: Some(Uuid::from_u128(1)),
        name: "Hamlet".into(),
        venue: "Globe".into(),
        starts_at: Some(now() + Duration::days(30)),
        status: ShowStatus::Published,
        sections: vec![
            Section::Seated {
                section_id: "stalls".into(),
                name: "Stalls".into(),
                rows: vec![Row {
                    row: "A".into(),
                    seats: 10,
                }],
            },
            Section::Seated {
                section_id: "balcony".into(),
                name: "Balcony".into(),
                rows: vec![Row {
                    row: "B".into(),
                    seats: 5,
                }],
            },
            Section::GeneralAdmission {
                section_id: "floor".into(),
                name: "Floor".into(),
                capacity: 100,
            },
        ],
        tiers: vec![
            Tier {
                tier_id: "premium".into(),
                name: "Premium".into(),
                price: Money::new(9_000, "EUR"),
                section_ids: vec!["stalls".into()],
            },
            Tier {
                tier_id: "standard".into(),
                name: "Standard".into(),
                price: Money::new(4_500, "EUR"),
                section_ids: vec!["balcony".into(), "floor".into()],
            },
        ],
        sales_open_at: Some(now() - Duration::hours(1)),
        sales_close_at: Some(now() + Duration::days(29)),
        ..Show::default()
    }
}

fn seats(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

fn ga(section_id: &str, quantity: u32) -> GeneralAdmission {
    GeneralAdmission {
        section_id: section_id.into(),
        quantity,
    }
}

fn planned(seat_ids: &[&str], general: &[GeneralAdmission]) -> Result<PurchasePlan, PlanError> {
    let seats = seats(seat_ids);
    plan(
        &show(),
        PurchaseRequest {
            seats: &seats,
            general_admission: general,
        },
        now(),
    )
}

#[test]
fn groups_seats_and_places_by_section_and_prices_each_from_its_tier() {
    let plan = planned(
        &["stalls:A:1", "balcony:B:2", "stalls:A:2"],
        &[ga("floor", 3)],
    )
    .expect("a valid request plans");
    let sections: Vec<&str> = plan.sections.keys().map(String::as_str).collect();
    assert_eq!(sections, ["balcony", "floor", "stalls"]);
    assert_eq!(
        plan.sections["stalls"].request,
        HoldRequest::Seats(seats(&["stalls:A:1", "stalls:A:2"]))
    );
    assert_eq!(plan.sections["floor"].request, HoldRequest::Quantity(3));
    assert_eq!(plan.sections["stalls"].amount, Money::new(18_000, "EUR"));
    assert_eq!(plan.sections["floor"].tier_id, "standard");
    // 2 × 90 + 1 × 45 + 3 × 45
    assert_eq!(plan.total, Money::new(36_000, "EUR"));
}

#[test]
fn refuses_an_empty_or_oversized_booking() {
    assert_eq!(planned(&[], &[]), Err(PlanError::WrongSize));
    assert_eq!(
        planned(&["stalls:A:1"], &[ga("floor", 10)]),
        Err(PlanError::WrongSize)
    );
}

#[test]
fn refuses_outside_the_sales_window() {
    let seats = seats(&["stalls:A:1"]);
    let request = PurchaseRequest {
        seats: &seats,
        general_admission: &[],
    };
    assert_eq!(
        plan(&show(), request, now() - Duration::hours(2)),
        Err(PlanError::NotOnSale)
    );
    let draft = Show {
        status: ShowStatus::Draft,
        ..show()
    };
    assert_eq!(plan(&draft, request, now()), Err(PlanError::NotOnSale));
}

#[test]
fn names_every_unknown_seat_and_misused_section() {
    let Err(PlanError::Invalid(errors)) = planned(
        &["stalls:A:11", "nowhere:A:1", "stalls:A:1"],
        &[ga("stalls", 1), ga("nowhere", 1), ga("floor", 0)],
    ) else {
        panic!("an invalid request is refused with its errors");
    };
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "seats[0]",
            "seats[1]",
            "general_admission[0]",
            "general_admission[1]",
            "general_admission[2]"
        ]
    );
}

#[test]
fn refuses_a_seat_listed_twice_and_a_section_asked_twice() {
    let Err(PlanError::Invalid(errors)) = planned(
        &["stalls:A:1", "stalls:A:1"],
        &[ga("floor", 1), ga("floor", 2)],
    ) else {
        panic!("duplicates are refused");
    };
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["general_admission[1]", "seats"]);
}

#[test]
fn refuses_a_section_without_a_price() {
    let mut unpriced = show();
    unpriced.tiers.retain(|t| t.tier_id == "premium");
    let seats = seats(&["balcony:B:1"]);
    let request = PurchaseRequest {
        seats: &seats,
        general_admission: &[],
    };
    assert_eq!(
        plan(&unpriced, request, now()),
        Err(PlanError::Unpriced("balcony".into()))
    );
}

#[test]
fn every_section_gets_its_hold_for_the_booking() {
    let plan = planned(&["stalls:A:3"], &[ga("floor", 2)]).expect("plans");
    let booking = Uuid::from_u128(9);
    let expires = now() + Duration::minutes(10);
    let holds = plan.holds(Uuid::from_u128(7), booking, expires, now());
    assert_eq!(holds.len(), 2);
    assert!(holds.iter().all(|(_, command)| matches!(
        command,
        InventoryCommand::Hold { booking_id, expires_at, .. } if *booking_id == booking && *expires_at == expires
    )));
}

#[test]
fn a_shortfall_gathers_taken_seats_and_short_sections_and_passes_other_refusals_on() {
    let mut shortfall = Shortfall::default();
    assert!(shortfall.is_empty());
    shortfall
        .record(
            "stalls",
            InventoryError::SeatsUnavailable(seats(&["stalls:A:1"])),
        )
        .expect("taken seats are a shortfall");
    shortfall
        .record(
            "floor",
            InventoryError::InsufficientCapacity { available: 1 },
        )
        .expect("a short section is a shortfall");
    assert_eq!(shortfall.seats, seats(&["stalls:A:1"]));
    assert_eq!(shortfall.sections, vec![("floor".to_owned(), 1)]);
    assert_eq!(
        shortfall.record("stalls", InventoryError::WrongKind),
        Err(InventoryError::WrongKind)
    );
}
