//! Given / when / then tests of every `Booking` and ticket rule.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;

mod transfer;

type BookingTest = TestFramework<Booking>;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 18, 0, 0).unwrap()
}

fn booking_id() -> Uuid {
    Uuid::from_u128(1)
}

fn place(seats: usize, ga: u32) -> BookingCommand {
    BookingCommand::Place {
        booking_id: booking_id(),
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
        terms: Default::default(),
        hold_expires_at: t0() + Duration::minutes(10),
        now: t0(),
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
        terms,
        hold_expires_at,
        now,
    } = place(seats, ga)
    else {
        unreachable!("place builds a Place")
    };
    BookingEvent::BookingPlaced {
        booking_id,
        user_id,
        show_id,
        seats,
        general_admission,
        total,
        terms,
        hold_expires_at,
        placed_at: now,
    }
}

fn payment_requested() -> BookingEvent {
    BookingEvent::PaymentRequested {
        payment_id: Uuid::from_u128(9),
        card: "Visa test card".into(),
        payment_deadline: t0() + Duration::minutes(7),
        requested_at: t0() + Duration::minutes(5),
    }
}

fn confirmed() -> BookingEvent {
    BookingEvent::BookingConfirmed {
        tickets: ticket::issue(
            booking_id(),
            &["stalls:A:1".into()],
            &[GeneralAdmission {
                section_id: "floor".into(),
                quantity: 1,
            }],
        ),
        confirmed_at: t0() + Duration::minutes(6),
    }
}

fn paid() -> Vec<BookingEvent> {
    vec![placed(1, 1), payment_requested(), confirmed()]
}

fn first_ticket() -> Uuid {
    ticket::ticket_id(booking_id(), 0)
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

#[tokio::test]
async fn paying_a_held_booking_makes_it_payment_pending() {
    BookingTest::with(())
        .given(vec![placed(1, 1)])
        .when_async(BookingCommand::RequestPayment {
            payment_id: Uuid::from_u128(9),
            card: "Visa test card".into(),
            payment_deadline: t0() + Duration::minutes(7),
            now: t0() + Duration::minutes(5),
        })
        .await
        .then_expect_events(vec![payment_requested()]);
}

#[tokio::test]
async fn rejects_paying_after_the_hold_expired() {
    BookingTest::with(())
        .given(vec![placed(1, 0)])
        .when_async(BookingCommand::RequestPayment {
            payment_id: Uuid::from_u128(9),
            card: "Visa test card".into(),
            payment_deadline: t0() + Duration::minutes(12),
            now: t0() + Duration::minutes(10),
        })
        .await
        .then_expect_error(BookingError::HoldExpired);
}

#[tokio::test]
async fn rejects_paying_twice() {
    BookingTest::with(())
        .given(vec![placed(1, 0), payment_requested()])
        .when_async(BookingCommand::RequestPayment {
            payment_id: Uuid::from_u128(10),
            card: "Visa test card".into(),
            payment_deadline: t0() + Duration::minutes(8),
            now: t0() + Duration::minutes(6),
        })
        .await
        .then_expect_error(BookingError::NotAllowed(BookingStatus::PaymentPending));
}

#[tokio::test]
async fn confirmation_issues_one_ticket_per_seat_and_place() {
    let result = BookingTest::with(())
        .given(vec![placed(2, 3), payment_requested()])
        .when_async(BookingCommand::Confirm { now: t0() })
        .await
        .inspect_result()
        .expect("confirmed");
    let BookingEvent::BookingConfirmed { tickets, .. } = &result[0] else {
        panic!("expected BookingConfirmed, got {result:?}");
    };
    assert_eq!(tickets.len(), 5);
    assert_eq!(tickets[0].seat_id.as_deref(), Some("stalls:A:1"));
    assert_eq!(tickets[4].seat_id, None);
    assert_eq!(tickets[4].section_id, "floor");
    let ids: std::collections::BTreeSet<_> = tickets.iter().map(|t| t.ticket_id).collect();
    assert_eq!(ids.len(), 5, "ticket ids are distinct");
}

#[tokio::test]
async fn confirming_twice_writes_nothing() {
    BookingTest::with(())
        .given(paid())
        .when_async(BookingCommand::Confirm { now: t0() })
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn rejects_confirming_an_unpaid_or_cancelled_booking() {
    BookingTest::with(())
        .given(vec![placed(1, 0)])
        .when_async(BookingCommand::Confirm { now: t0() })
        .await
        .then_expect_error(BookingError::NotAllowed(BookingStatus::Held));
    BookingTest::with(())
        .given(vec![
            placed(1, 0),
            BookingEvent::BookingExpired { expired_at: t0() },
        ])
        .when_async(BookingCommand::Confirm { now: t0() })
        .await
        .then_expect_error(BookingError::NotAllowed(BookingStatus::Expired));
}

#[tokio::test]
async fn cancels_a_held_or_pending_booking_with_its_reason() {
    let cancel = BookingCommand::Cancel {
        reason: CancelReason::PaymentDeclined,
        detail: "card declined".into(),
        now: t0(),
    };
    BookingTest::with(())
        .given(vec![placed(1, 0), payment_requested()])
        .when_async(cancel)
        .await
        .then_expect_events(vec![BookingEvent::BookingCancelled {
            reason: CancelReason::PaymentDeclined,
            detail: "card declined".into(),
            cancelled_at: t0(),
        }]);
}

#[tokio::test]
async fn cancelling_a_finished_booking_again_writes_nothing() {
    BookingTest::with(())
        .given(vec![
            placed(1, 0),
            BookingEvent::BookingExpired { expired_at: t0() },
        ])
        .when_async(BookingCommand::Cancel {
            reason: CancelReason::UserRequested,
            detail: "changed my mind".into(),
            now: t0(),
        })
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn a_confirmed_booking_is_not_cancelled_but_refunded() {
    BookingTest::with(())
        .given(paid())
        .when_async(BookingCommand::Cancel {
            reason: CancelReason::UserRequested,
            detail: "x".into(),
            now: t0(),
        })
        .await
        .then_expect_error(BookingError::NotAllowed(BookingStatus::Confirmed));
}

#[tokio::test]
async fn expires_a_held_booking_at_its_deadline() {
    BookingTest::with(())
        .given(vec![placed(1, 0)])
        .when_async(BookingCommand::Expire {
            now: t0() + Duration::minutes(10),
        })
        .await
        .then_expect_events(vec![BookingEvent::BookingExpired {
            expired_at: t0() + Duration::minutes(10),
        }]);
}

#[tokio::test]
async fn does_not_expire_early_or_once_payment_started() {
    BookingTest::with(())
        .given(vec![placed(1, 0)])
        .when_async(BookingCommand::Expire {
            now: t0() + Duration::minutes(9),
        })
        .await
        .then_expect_error(BookingError::HoldNotExpired);
    BookingTest::with(())
        .given(vec![placed(1, 0), payment_requested()])
        .when_async(BookingCommand::Expire {
            now: t0() + Duration::minutes(11),
        })
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn a_confirmed_booking_asks_for_a_refund_before_the_show() {
    BookingTest::with(())
        .given(paid())
        .when_async(BookingCommand::RequestRefund {
            reason: CancelReason::UserRequested,
            starts_at: t0() + Duration::days(1),
            now: t0(),
        })
        .await
        .then_expect_events(vec![BookingEvent::RefundRequested {
            reason: CancelReason::UserRequested,
            requested_at: t0(),
        }]);
}

#[tokio::test]
async fn no_refund_after_the_show_started_unless_the_organizer_cancelled() {
    BookingTest::with(())
        .given(paid())
        .when_async(BookingCommand::RequestRefund {
            reason: CancelReason::UserRequested,
            starts_at: t0(),
            now: t0(),
        })
        .await
        .then_expect_error(BookingError::EventStarted);
    BookingTest::with(())
        .given(paid())
        .when_async(BookingCommand::RequestRefund {
            reason: CancelReason::EventCancelled,
            starts_at: t0(),
            now: t0(),
        })
        .await
        .then_expect_events(vec![BookingEvent::RefundRequested {
            reason: CancelReason::EventCancelled,
            requested_at: t0(),
        }]);
}

#[tokio::test]
async fn no_refund_after_a_check_in() {
    let mut given = paid();
    given.push(BookingEvent::TicketCheckedIn {
        ticket_id: first_ticket(),
        checked_in_at: t0(),
    });
    BookingTest::with(())
        .given(given)
        .when_async(BookingCommand::RequestRefund {
            reason: CancelReason::UserRequested,
            starts_at: t0() + Duration::days(1),
            now: t0(),
        })
        .await
        .then_expect_error(BookingError::CheckedIn);
}

#[tokio::test]
async fn refund_completes_and_voids_every_ticket() {
    let mut booking = Booking::default();
    for event in paid() {
        booking.apply(event);
    }
    booking.apply(BookingEvent::RefundRequested {
        reason: CancelReason::UserRequested,
        requested_at: t0(),
    });
    assert_eq!(booking.status, BookingStatus::RefundPending);
    booking.apply(BookingEvent::BookingRefunded { refunded_at: t0() });
    assert_eq!(booking.status, BookingStatus::Refunded);
    assert!(
        booking
            .tickets
            .iter()
            .all(|t| t.status == TicketStatus::Void)
    );
}

#[tokio::test]
async fn marks_a_pending_refund_done() {
    let mut given = paid();
    given.push(BookingEvent::RefundRequested {
        reason: CancelReason::UserRequested,
        requested_at: t0(),
    });
    BookingTest::with(())
        .given(given)
        .when_async(BookingCommand::MarkRefunded { now: t0() })
        .await
        .then_expect_events(vec![BookingEvent::BookingRefunded { refunded_at: t0() }]);
}

#[tokio::test]
async fn checks_a_ticket_in_once() {
    BookingTest::with(())
        .given(paid())
        .when_async(BookingCommand::CheckIn {
            ticket_id: first_ticket(),
            now: t0(),
        })
        .await
        .then_expect_events(vec![BookingEvent::TicketCheckedIn {
            ticket_id: first_ticket(),
            checked_in_at: t0(),
        }]);
}

#[tokio::test]
async fn a_second_scan_is_refused_with_the_time_of_the_first() {
    let mut given = paid();
    given.push(BookingEvent::TicketCheckedIn {
        ticket_id: first_ticket(),
        checked_in_at: t0(),
    });
    BookingTest::with(())
        .given(given)
        .when_async(BookingCommand::CheckIn {
            ticket_id: first_ticket(),
            now: t0() + Duration::minutes(1),
        })
        .await
        .then_expect_error(BookingError::AlreadyCheckedIn { at: t0() });
}

#[tokio::test]
async fn a_void_ticket_is_refused() {
    let mut given = paid();
    given.push(BookingEvent::RefundRequested {
        reason: CancelReason::UserRequested,
        requested_at: t0(),
    });
    given.push(BookingEvent::BookingRefunded { refunded_at: t0() });
    BookingTest::with(())
        .given(given)
        .when_async(BookingCommand::CheckIn {
            ticket_id: first_ticket(),
            now: t0(),
        })
        .await
        .then_expect_error(BookingError::TicketVoid);
}

#[tokio::test]
async fn an_unknown_ticket_is_refused() {
    BookingTest::with(())
        .given(paid())
        .when_async(BookingCommand::CheckIn {
            ticket_id: Uuid::from_u128(77),
            now: t0(),
        })
        .await
        .then_expect_error(BookingError::UnknownTicket);
}

#[test]
fn ticket_ids_are_stable_per_booking_and_position() {
    assert_eq!(
        ticket::ticket_id(booking_id(), 3),
        ticket::ticket_id(booking_id(), 3)
    );
    assert_ne!(
        ticket::ticket_id(booking_id(), 3),
        ticket::ticket_id(booking_id(), 4)
    );
    assert_ne!(
        ticket::ticket_id(booking_id(), 0),
        ticket::ticket_id(Uuid::from_u128(2), 0)
    );
}

#[test]
fn a_booking_knows_its_sections() {
    let mut booking = Booking::default();
    booking.apply(placed(2, 1));
    assert_eq!(
        booking.section_ids(),
        vec!["floor".to_owned(), "stalls".to_owned()]
    );
    assert_eq!(booking.places(), 3);
}
