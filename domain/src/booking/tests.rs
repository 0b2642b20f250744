//! Given / when / then tests of every `Booking` rule.

use chrono::{Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;

type BookingTest = TestFramework<Booking>;

fn place(seats: usize, ga: u32) -> BookingCommand {
    let now = Utc.with_ymd_and_hms(2026, 12, 1, 18, 0, 0).unwrap();
    BookingCommand::Place {
        booking_id: Uuid::from_u128(1),
        user_id: Uuid::from_u128(2),
        show_id: Uuid::from_u128(3),
        seats: (1..=seats).map(|n| format!("stalls:A:{n}")).collect(),
        general_admission: if ga > 0 {
            vec![GeneralAdmission {
                section_id: "floor".into(),
                quantity: ga,
            }]
        } else {
            vec![]
        },
        total: Money::new(1_000, "EUR"),
        hold_expires_at: now + Duration::minutes(10),
        now,
    }
}

fn placed(seats: usize, ga: u32) -> BookingEvent {
    let BookingCommand::Place {
        booking_id,
        user_id,
        show_id,
        seats,
        general_admission,
        total,
        hold_expires_at,
        now,
    } = place(seats, ga);
    BookingEvent::BookingPlaced {
        booking_id,
        user_id,
        show_id,
        seats,
        general_admission,
        total,
        hold_expires_at,
        placed_at: now,
    }
}

#[tokio::test]
async fn places_a_held_booking() {
    BookingTest::with(())
        .given_no_previous_events()
        .when_async(place(2, 3))
        .await
        .then_expect_events(vec![placed(2, 3)]);
}

#[tokio::test]
async fn rejects_placing_the_same_booking_twice() {
    BookingTest::with(())
        .given(vec![placed(1, 0)])
        .when_async(place(1, 0))
        .await
        .then_expect_error(BookingError::AlreadyPlaced);
}

#[tokio::test]
async fn rejects_empty_and_oversized_bookings() {
    BookingTest::with(())
        .given_no_previous_events()
        .when_async(place(0, 0))
        .await
        .then_expect_error(BookingError::WrongSize);
    BookingTest::with(())
        .given_no_previous_events()
        .when_async(place(6, 5))
        .await
        .then_expect_error(BookingError::WrongSize);
}

#[test]
fn a_placed_booking_is_held() {
    let mut booking = Booking::default();
    booking.apply(placed(2, 1));
    assert_eq!(booking.status, BookingStatus::Held);
    assert_eq!(booking.places(), 3);
}
