//! Given / when / then tests of the per-customer limit.

use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;

type CustomerTest = TestFramework<CustomerPlaces>;

fn booking(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn reserved(n: u128, places: u32) -> CustomerEvent {
    CustomerEvent::PlacesReserved {
        booking_id: booking(n),
        places,
    }
}

#[tokio::test]
async fn a_booking_within_the_limit_reserves_its_places() {
    CustomerTest::with(())
        .given(vec![reserved(1, 2)])
        .when_async(CustomerCommand::Reserve {
            booking_id: booking(2),
            places: 2,
            limit: 4,
        })
        .await
        .then_expect_events(vec![reserved(2, 2)]);
}

#[tokio::test]
async fn a_booking_past_the_limit_is_refused_with_the_current_count() {
    CustomerTest::with(())
        .given(vec![reserved(1, 3)])
        .when_async(CustomerCommand::Reserve {
            booking_id: booking(2),
            places: 2,
            limit: 4,
        })
        .await
        .then_expect_error(CustomerError::LimitReached {
            limit: 4,
            current: 3,
        });
}

#[tokio::test]
async fn released_places_count_no_more() {
    CustomerTest::with(())
        .given(vec![
            reserved(1, 4),
            CustomerEvent::PlacesReleased {
                booking_id: booking(1),
            },
        ])
        .when_async(CustomerCommand::Reserve {
            booking_id: booking(2),
            places: 4,
            limit: 4,
        })
        .await
        .then_expect_events(vec![reserved(2, 4)]);
}

#[tokio::test]
async fn releasing_twice_writes_nothing_the_second_time() {
    CustomerTest::with(())
        .given(vec![
            reserved(1, 1),
            CustomerEvent::PlacesReleased {
                booking_id: booking(1),
            },
        ])
        .when_async(CustomerCommand::Release {
            booking_id: booking(1),
        })
        .await
        .then_expect_events(vec![]);
}
