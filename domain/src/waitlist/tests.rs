//! Given / when / then tests of the waiting list.

use chrono::TimeZone;
use cqrs_es::test::TestFramework;

use super::*;

type WaitlistTest = TestFramework<Waitlist>;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 3, 19, 0, 0).unwrap()
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn show() -> Uuid {
    id(100)
}

fn joined(user: u128, quantity: u32) -> WaitlistEvent {
    WaitlistEvent::WaitlistJoined {
        show_id: show(),
        user_id: id(user),
        quantity,
        joined_at: now(),
    }
}

fn join(user: u128, quantity: u32, sold_out: bool) -> WaitlistCommand {
    WaitlistCommand::Join {
        show_id: show(),
        user_id: id(user),
        quantity,
        sold_out,
        now: now(),
    }
}

fn offered(user: u128, booking: u128) -> WaitlistEvent {
    WaitlistEvent::WaitlistOffered {
        user_id: id(user),
        booking_id: id(booking),
        expires_at: now(),
        offered_at: now(),
    }
}

fn state(events: Vec<WaitlistEvent>) -> Waitlist {
    let mut list = Waitlist::default();
    for event in events {
        list.apply(event);
    }
    list
}

#[tokio::test]
async fn a_sold_out_event_takes_people_on_its_list() {
    WaitlistTest::with(())
        .given(vec![joined(1, 2)])
        .when_async(join(2, 4, true))
        .await
        .then_expect_events(vec![joined(2, 4)]);
}

#[tokio::test]
async fn an_event_with_places_left_refuses_to_list_anyone() {
    WaitlistTest::with(())
        .given_no_previous_events()
        .when_async(join(1, 2, false))
        .await
        .then_expect_error(WaitlistError::PlacesAvailable);
}

#[tokio::test]
async fn joining_again_keeps_the_place_even_once_places_are_back() {
    WaitlistTest::with(())
        .given(vec![joined(1, 2)])
        .when_async(join(1, 5, false))
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn a_quantity_outside_one_to_ten_is_refused() {
    for quantity in [0, 11] {
        WaitlistTest::with(())
            .given_no_previous_events()
            .when_async(join(1, quantity, true))
            .await
            .then_expect_error(WaitlistError::WrongQuantity);
    }
}

#[tokio::test]
async fn someone_whose_offer_lapsed_joins_again_at_the_end() {
    let lapsed = WaitlistEvent::WaitlistOfferLapsed {
        user_id: id(1),
        booking_id: id(50),
        lapsed_at: now(),
    };
    let list = state(vec![
        joined(1, 2),
        joined(2, 1),
        offered(1, 50),
        lapsed.clone(),
    ]);
    assert_eq!(list.position(id(1)), 0);
    assert_eq!(list.position(id(2)), 1);
    WaitlistTest::with(())
        .given(vec![joined(1, 2), joined(2, 1), offered(1, 50), lapsed])
        .when_async(join(1, 2, true))
        .await
        .then_expect_events(vec![joined(1, 2)]);
    let again = state(vec![
        joined(1, 2),
        joined(2, 1),
        offered(1, 50),
        WaitlistEvent::WaitlistOfferLapsed {
            user_id: id(1),
            booking_id: id(50),
            lapsed_at: now(),
        },
        joined(1, 2),
    ]);
    assert_eq!(again.position(id(2)), 1);
    assert_eq!(again.position(id(1)), 2);
}

#[tokio::test]
async fn an_offer_goes_only_to_someone_waiting() {
    WaitlistTest::with(())
        .given(vec![joined(1, 2)])
        .when_async(WaitlistCommand::Offer {
            user_id: id(1),
            booking_id: id(50),
            expires_at: now(),
            now: now(),
        })
        .await
        .then_expect_events(vec![offered(1, 50)]);
    WaitlistTest::with(())
        .given(vec![joined(1, 2), offered(1, 50)])
        .when_async(WaitlistCommand::Offer {
            user_id: id(1),
            booking_id: id(51),
            expires_at: now(),
            now: now(),
        })
        .await
        .then_expect_error(WaitlistError::NotWaiting);
    WaitlistTest::with(())
        .given_no_previous_events()
        .when_async(WaitlistCommand::Offer {
            user_id: id(1),
            booking_id: id(51),
            expires_at: now(),
            now: now(),
        })
        .await
        .then_expect_error(WaitlistError::NotOnList);
}

#[tokio::test]
async fn an_offer_settles_once_and_waiting_ranks_skip_it() {
    let settle = |accepted| WaitlistCommand::Settle {
        booking_id: id(50),
        accepted,
        now: now(),
    };
    WaitlistTest::with(())
        .given(vec![joined(1, 2), offered(1, 50)])
        .when_async(settle(true))
        .await
        .then_expect_events(vec![WaitlistEvent::WaitlistOfferAccepted {
            user_id: id(1),
            booking_id: id(50),
            accepted_at: now(),
        }]);
    WaitlistTest::with(())
        .given(vec![
            joined(1, 2),
            offered(1, 50),
            WaitlistEvent::WaitlistOfferAccepted {
                user_id: id(1),
                booking_id: id(50),
                accepted_at: now(),
            },
        ])
        .when_async(settle(false))
        .await
        .then_expect_events(vec![]);
    let list = state(vec![joined(1, 2), joined(2, 3), offered(1, 50)]);
    assert_eq!(list.position(id(2)), 1);
    assert_eq!(list.open_offers().collect::<Vec<_>>(), vec![id(50)]);
    assert_eq!(
        list.waiting().map(|e| e.user_id).collect::<Vec<_>>(),
        vec![id(2)]
    );
}

#[tokio::test]
async fn leaving_takes_the_entry_off_and_a_stranger_cannot_leave() {
    WaitlistTest::with(())
        .given(vec![joined(1, 2)])
        .when_async(WaitlistCommand::Leave {
            user_id: id(1),
            now: now(),
        })
        .await
        .then_expect_events(vec![WaitlistEvent::WaitlistLeft {
            user_id: id(1),
            left_at: now(),
        }]);
    WaitlistTest::with(())
        .given(vec![joined(1, 2)])
        .when_async(WaitlistCommand::Leave {
            user_id: id(2),
            now: now(),
        })
        .await
        .then_expect_error(WaitlistError::NotOnList);
}
