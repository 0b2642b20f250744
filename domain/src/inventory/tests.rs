//! Given / when / then tests of every `SectionInventory` rule.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::show::{Row, Section};

type InventoryTest = TestFramework<SectionInventory>;

fn show() -> Uuid {
    Uuid::from_u128(42)
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 18, 0, 0).unwrap()
}

fn stalls() -> Section {
    Section::Seated {
        section_id: "stalls".into(),
        name: "Stalls".into(),
        rows: vec![Row {
            row: "A".into(),
            seats: 4,
        }],
    }
}

fn floor() -> Section {
    Section::GeneralAdmission {
        section_id: "floor".into(),
        name: "Floor".into(),
        capacity: 10,
    }
}

fn booking(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn seats(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

fn hold_seats(b: u128, ids: &[&str], now: DateTime<Utc>) -> InventoryCommand {
    InventoryCommand::Hold {
        show_id: show(),
        section: stalls(),
        booking_id: booking(b),
        request: HoldRequest::Seats(seats(ids)),
        expires_at: now + Duration::minutes(10),
        now,
    }
}

fn hold_places(b: u128, quantity: u32, now: DateTime<Utc>) -> InventoryCommand {
    InventoryCommand::Hold {
        show_id: show(),
        section: floor(),
        booking_id: booking(b),
        request: HoldRequest::Quantity(quantity),
        expires_at: now + Duration::minutes(10),
        now,
    }
}

fn opened(section: Section) -> InventoryEvent {
    InventoryEvent::SectionOpened {
        show_id: show(),
        section,
    }
}

fn held(b: u128, ids: &[&str], quantity: u32, now: DateTime<Utc>) -> InventoryEvent {
    InventoryEvent::SeatsHeld {
        booking_id: booking(b),
        seats: seats(ids),
        quantity,
        expires_at: now + Duration::minutes(10),
    }
}

#[tokio::test]
async fn first_hold_opens_the_section_and_holds_all_seats() {
    InventoryTest::with(())
        .given_no_previous_events()
        .when_async(hold_seats(1, &["stalls:A:1", "stalls:A:2"], t0()))
        .await
        .then_expect_events(vec![
            opened(stalls()),
            held(1, &["stalls:A:1", "stalls:A:2"], 2, t0()),
        ]);
}

#[tokio::test]
async fn rejects_hold_when_a_seat_is_already_held_and_holds_nothing() {
    InventoryTest::with(())
        .given(vec![opened(stalls()), held(1, &["stalls:A:2"], 1, t0())])
        .when_async(hold_seats(2, &["stalls:A:1", "stalls:A:2"], t0()))
        .await
        .then_expect_error(InventoryError::SeatsUnavailable(seats(&["stalls:A:2"])));
}

#[tokio::test]
async fn rejects_hold_when_seat_already_sold() {
    InventoryTest::with(())
        .given(vec![
            opened(stalls()),
            held(1, &["stalls:A:3"], 1, t0()),
            InventoryEvent::HoldSold {
                booking_id: booking(1),
                seats: seats(&["stalls:A:3"]),
                quantity: 1,
            },
        ])
        // Even long after: a sale never expires.
        .when_async(hold_seats(2, &["stalls:A:3"], t0() + Duration::days(1)))
        .await
        .then_expect_error(InventoryError::SeatsUnavailable(seats(&["stalls:A:3"])));
}

#[tokio::test]
async fn an_expired_hold_is_taken_over() {
    let later = t0() + Duration::minutes(11);
    InventoryTest::with(())
        .given(vec![
            opened(stalls()),
            held(1, &["stalls:A:1", "stalls:A:2"], 2, t0()),
        ])
        .when_async(hold_seats(2, &["stalls:A:2"], later))
        .await
        .then_expect_events(vec![
            InventoryEvent::HoldExpired {
                booking_id: booking(1),
                seats: seats(&["stalls:A:1", "stalls:A:2"]),
                quantity: 2,
            },
            held(2, &["stalls:A:2"], 1, later),
        ]);
}

#[tokio::test]
async fn a_hold_at_its_expiry_instant_no_longer_blocks() {
    let at_expiry = t0() + Duration::minutes(10);
    let result = InventoryTest::with(())
        .given(vec![opened(stalls()), held(1, &["stalls:A:1"], 1, t0())])
        .when_async(hold_seats(2, &["stalls:A:1"], at_expiry))
        .await
        .inspect_result();
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn rejects_unknown_seats() {
    InventoryTest::with(())
        .given_no_previous_events()
        .when_async(hold_seats(
            1,
            &["stalls:A:1", "stalls:A:5", "stalls:Z:1", "balcony:A:1"],
            t0(),
        ))
        .await
        .then_expect_error(InventoryError::UnknownSeats(seats(&[
            "stalls:A:5",
            "stalls:Z:1",
            "balcony:A:1",
        ])));
}

#[tokio::test]
async fn rejects_the_same_seat_twice_in_one_hold() {
    InventoryTest::with(())
        .given_no_previous_events()
        .when_async(hold_seats(1, &["stalls:A:1", "stalls:A:1"], t0()))
        .await
        .then_expect_error(InventoryError::DuplicateSeats);
}

#[tokio::test]
async fn rejects_an_empty_hold() {
    InventoryTest::with(())
        .given_no_previous_events()
        .when_async(hold_seats(1, &[], t0()))
        .await
        .then_expect_error(InventoryError::EmptyRequest);
}

#[tokio::test]
async fn rejects_quantity_for_a_seated_section_and_seats_for_general_admission() {
    InventoryTest::with(())
        .given_no_previous_events()
        .when_async(InventoryCommand::Hold {
            show_id: show(),
            section: stalls(),
            booking_id: booking(1),
            request: HoldRequest::Quantity(2),
            expires_at: t0(),
            now: t0(),
        })
        .await
        .then_expect_error(InventoryError::WrongKind);
    InventoryTest::with(())
        .given_no_previous_events()
        .when_async(InventoryCommand::Hold {
            show_id: show(),
            section: floor(),
            booking_id: booking(1),
            request: HoldRequest::Seats(seats(&["floor:A:1"])),
            expires_at: t0(),
            now: t0(),
        })
        .await
        .then_expect_error(InventoryError::WrongKind);
}

#[tokio::test]
async fn a_retried_hold_of_the_same_booking_writes_nothing() {
    InventoryTest::with(())
        .given(vec![opened(stalls()), held(1, &["stalls:A:1"], 1, t0())])
        .when_async(hold_seats(1, &["stalls:A:1"], t0()))
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn a_booking_cannot_hold_different_seats_twice_in_a_section() {
    InventoryTest::with(())
        .given(vec![opened(stalls()), held(1, &["stalls:A:1"], 1, t0())])
        .when_async(hold_seats(1, &["stalls:A:2"], t0()))
        .await
        .then_expect_error(InventoryError::BookingAlreadyHolds);
}

#[tokio::test]
async fn holds_general_admission_places_within_capacity() {
    InventoryTest::with(())
        .given(vec![opened(floor()), held(1, &[], 7, t0())])
        .when_async(hold_places(2, 3, t0()))
        .await
        .then_expect_events(vec![held(2, &[], 3, t0())]);
}

#[tokio::test]
async fn the_first_general_admission_hold_opens_the_section() {
    InventoryTest::with(())
        .given_no_previous_events()
        .when_async(hold_places(1, 10, t0()))
        .await
        .then_expect_events(vec![opened(floor()), held(1, &[], 10, t0())]);
}

#[tokio::test]
async fn rejects_general_admission_beyond_capacity_with_what_is_left() {
    InventoryTest::with(())
        .given(vec![opened(floor()), held(1, &[], 8, t0())])
        .when_async(hold_places(2, 3, t0()))
        .await
        .then_expect_error(InventoryError::InsufficientCapacity { available: 2 });
}

#[tokio::test]
async fn expired_general_admission_holds_free_their_places() {
    let later = t0() + Duration::minutes(10);
    InventoryTest::with(())
        .given(vec![opened(floor()), held(1, &[], 8, t0())])
        .when_async(hold_places(2, 10, later))
        .await
        .then_expect_events(vec![
            InventoryEvent::HoldExpired {
                booking_id: booking(1),
                seats: vec![],
                quantity: 8,
            },
            held(2, &[], 10, later),
        ]);
}

#[tokio::test]
async fn sold_places_count_against_capacity() {
    InventoryTest::with(())
        .given(vec![
            opened(floor()),
            held(1, &[], 9, t0()),
            InventoryEvent::HoldSold {
                booking_id: booking(1),
                seats: vec![],
                quantity: 9,
            },
        ])
        .when_async(hold_places(2, 2, t0() + Duration::days(1)))
        .await
        .then_expect_error(InventoryError::InsufficientCapacity { available: 1 });
}

#[tokio::test]
async fn releases_a_hold() {
    InventoryTest::with(())
        .given(vec![opened(stalls()), held(1, &["stalls:A:1"], 1, t0())])
        .when_async(InventoryCommand::Release {
            booking_id: booking(1),
        })
        .await
        .then_expect_events(vec![InventoryEvent::HoldReleased {
            booking_id: booking(1),
            seats: seats(&["stalls:A:1"]),
            quantity: 1,
        }]);
}

#[tokio::test]
async fn released_seats_can_be_held_again() {
    let result = InventoryTest::with(())
        .given(vec![
            opened(stalls()),
            held(1, &["stalls:A:1"], 1, t0()),
            InventoryEvent::HoldReleased {
                booking_id: booking(1),
                seats: seats(&["stalls:A:1"]),
                quantity: 1,
            },
        ])
        .when_async(hold_seats(2, &["stalls:A:1"], t0()))
        .await
        .inspect_result();
    assert_eq!(result, Ok(vec![held(2, &["stalls:A:1"], 1, t0())]));
}

#[tokio::test]
async fn releasing_nothing_is_not_an_error() {
    InventoryTest::with(())
        .given(vec![opened(stalls())])
        .when_async(InventoryCommand::Release {
            booking_id: booking(9),
        })
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn confirms_a_hold_as_sold() {
    InventoryTest::with(())
        .given(vec![opened(stalls()), held(1, &["stalls:A:1"], 1, t0())])
        .when_async(InventoryCommand::ConfirmSale {
            booking_id: booking(1),
        })
        .await
        .then_expect_events(vec![InventoryEvent::HoldSold {
            booking_id: booking(1),
            seats: seats(&["stalls:A:1"]),
            quantity: 1,
        }]);
}

#[tokio::test]
async fn confirming_twice_writes_nothing_the_second_time() {
    InventoryTest::with(())
        .given(vec![
            opened(floor()),
            held(1, &[], 2, t0()),
            InventoryEvent::HoldSold {
                booking_id: booking(1),
                seats: vec![],
                quantity: 2,
            },
        ])
        .when_async(InventoryCommand::ConfirmSale {
            booking_id: booking(1),
        })
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn rejects_confirming_a_booking_without_hold() {
    InventoryTest::with(())
        .given(vec![opened(stalls())])
        .when_async(InventoryCommand::ConfirmSale {
            booking_id: booking(3),
        })
        .await
        .then_expect_error(InventoryError::NoHold);
}

#[test]
fn counts_capacity_held_sold_and_available() {
    let mut inventory = SectionInventory::default();
    inventory.apply(opened(floor()));
    inventory.apply(held(1, &[], 3, t0()));
    inventory.apply(held(2, &[], 2, t0()));
    inventory.apply(InventoryEvent::HoldSold {
        booking_id: booking(2),
        seats: vec![],
        quantity: 2,
    });
    assert_eq!(inventory.capacity(), 10);
    assert_eq!(inventory.held(t0()), 3);
    assert_eq!(inventory.sold(), 2);
    assert_eq!(inventory.available(t0()), 5);
    assert_eq!(inventory.available(t0() + Duration::hours(1)), 8);
}

#[tokio::test]
async fn extends_a_live_hold_for_payment() {
    InventoryTest::with(())
        .given(vec![opened(stalls()), held(1, &["stalls:A:1"], 1, t0())])
        .when_async(InventoryCommand::ExtendHold {
            booking_id: booking(1),
            expires_at: t0() + Duration::minutes(12),
            now: t0() + Duration::minutes(5),
        })
        .await
        .then_expect_events(vec![InventoryEvent::HoldExtended {
            booking_id: booking(1),
            expires_at: t0() + Duration::minutes(12),
        }]);
}

#[tokio::test]
async fn rejects_extending_a_lapsed_or_missing_hold() {
    InventoryTest::with(())
        .given(vec![opened(stalls()), held(1, &["stalls:A:1"], 1, t0())])
        .when_async(InventoryCommand::ExtendHold {
            booking_id: booking(1),
            expires_at: t0() + Duration::minutes(20),
            now: t0() + Duration::minutes(10),
        })
        .await
        .then_expect_error(InventoryError::HoldLapsed);
    InventoryTest::with(())
        .given(vec![opened(stalls())])
        .when_async(InventoryCommand::ExtendHold {
            booking_id: booking(1),
            expires_at: t0(),
            now: t0(),
        })
        .await
        .then_expect_error(InventoryError::NoHold);
}

#[tokio::test]
async fn an_extended_hold_keeps_blocking_past_its_first_expiry() {
    let later = t0() + Duration::minutes(11);
    InventoryTest::with(())
        .given(vec![
            opened(stalls()),
            held(1, &["stalls:A:1"], 1, t0()),
            InventoryEvent::HoldExtended {
                booking_id: booking(1),
                expires_at: t0() + Duration::minutes(12),
            },
        ])
        .when_async(hold_seats(2, &["stalls:A:1"], later))
        .await
        .then_expect_error(InventoryError::SeatsUnavailable(seats(&["stalls:A:1"])));
}

#[tokio::test]
async fn a_returned_sale_frees_its_seats() {
    let sold = vec![
        opened(stalls()),
        held(1, &["stalls:A:1"], 1, t0()),
        InventoryEvent::HoldSold {
            booking_id: booking(1),
            seats: seats(&["stalls:A:1"]),
            quantity: 1,
        },
    ];
    InventoryTest::with(())
        .given(sold.clone())
        .when_async(InventoryCommand::ReturnSale {
            booking_id: booking(1),
        })
        .await
        .then_expect_events(vec![InventoryEvent::SaleReturned {
            booking_id: booking(1),
            seats: seats(&["stalls:A:1"]),
            quantity: 1,
        }]);
    let mut returned = sold;
    returned.push(InventoryEvent::SaleReturned {
        booking_id: booking(1),
        seats: seats(&["stalls:A:1"]),
        quantity: 1,
    });
    InventoryTest::with(())
        .given(returned.clone())
        .when_async(InventoryCommand::ReturnSale {
            booking_id: booking(1),
        })
        .await
        .then_expect_events(vec![]);
    let result = InventoryTest::with(())
        .given(returned)
        .when_async(hold_seats(2, &["stalls:A:1"], t0()))
        .await
        .inspect_result();
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn a_booking_holds_or_has_bought_until_its_hold_is_released() {
    let mut inventory = SectionInventory::default();
    let held = InventoryEvent::SeatsHeld {
        booking_id: booking(1),
        seats: seats(&["stalls:A:1"]),
        quantity: 1,
        expires_at: t0(),
    };
    inventory.apply(held);
    assert!(inventory.holds_or_sold(booking(1)));
    assert!(!inventory.holds_or_sold(booking(2)));
    inventory.apply(InventoryEvent::HoldSold {
        booking_id: booking(1),
        seats: seats(&["stalls:A:1"]),
        quantity: 1,
    });
    assert!(inventory.holds_or_sold(booking(1)), "bought");
    inventory.apply(InventoryEvent::SaleReturned {
        booking_id: booking(1),
        seats: seats(&["stalls:A:1"]),
        quantity: 1,
    });
    assert!(!inventory.holds_or_sold(booking(1)), "returned");
}

#[test]
fn a_seat_shows_held_until_its_hold_lapses_and_sold_once_bought() {
    let mut inventory = SectionInventory::default();
    inventory.apply(InventoryEvent::SeatsHeld {
        booking_id: booking(1),
        seats: seats(&["stalls:A:1"]),
        quantity: 1,
        expires_at: t0() + Duration::minutes(10),
    });
    assert_eq!(inventory.seat_status("stalls:A:1", t0()), "held");
    assert_eq!(inventory.seat_status("stalls:A:2", t0()), "available");
    assert_eq!(
        inventory.seat_status("stalls:A:1", t0() + Duration::minutes(10)),
        "available",
        "a lapsed hold frees its seat"
    );
    inventory.apply(InventoryEvent::HoldSold {
        booking_id: booking(1),
        seats: seats(&["stalls:A:1"]),
        quantity: 1,
    });
    assert_eq!(inventory.seat_status("stalls:A:1", t0()), "sold");
}
