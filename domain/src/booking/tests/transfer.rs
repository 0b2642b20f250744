//! Given / when / then tests of ticket transfer.

use super::*;

fn buyer() -> Uuid {
    Uuid::from_u128(2)
}

fn friend() -> Uuid {
    Uuid::from_u128(20)
}

fn transfer(ticket: Uuid, from: Uuid, to: Uuid) -> BookingCommand {
    BookingCommand::TransferTicket {
        ticket_id: ticket,
        from_user_id: from,
        to_user_id: to,
        max_transfers: 2,
        starts_at: t0() + Duration::days(1),
        now: t0(),
    }
}

/// The event of transferring ticket `index` (of a booking of two) to `to`, the `n`th time.
fn transferred(ticket: Uuid, new_index: u8, from: Uuid, to: Uuid, n: u8) -> BookingEvent {
    BookingEvent::TicketTransferred {
        ticket_id: ticket,
        new_ticket: IssuedTicket {
            ticket_id: ticket::ticket_id(booking_id(), new_index),
            index: new_index,
            seat_id: Some("stalls:A:1".into()),
            section_id: "stalls".into(),
            status: TicketStatus::Valid,
            checked_in_at: None,
            holder_id: Some(to),
            transfers: n,
        },
        from_user_id: from,
        to_user_id: to,
        transferred_at: t0(),
    }
}

#[tokio::test]
async fn transfer_reissues_the_ticket_to_the_recipient_with_a_new_index() {
    BookingTest::with(())
        .given(paid())
        .when_async(transfer(first_ticket(), buyer(), friend()))
        .await
        .then_expect_events(vec![transferred(first_ticket(), 2, buyer(), friend(), 1)]);
}

#[test]
fn a_transfer_voids_the_old_ticket_and_the_recipient_holds_the_new_one() {
    let mut booking = Booking::default();
    for event in paid() {
        booking.apply(event);
    }
    booking.apply(transferred(first_ticket(), 2, buyer(), friend(), 1));
    assert_eq!(booking.tickets[0].status, TicketStatus::Void);
    let new = &booking.tickets[2];
    assert_eq!(new.status, TicketStatus::Valid);
    assert_eq!(booking.holder_of(new), Some(friend()));
    assert_eq!(booking.holder_of(&booking.tickets[1]), Some(buyer()));
    assert_eq!(
        booking.user_id,
        Some(buyer()),
        "the booking stays the buyer's"
    );
}

#[tokio::test]
async fn the_old_ticket_is_void_at_check_in_and_the_new_one_checks_in() {
    let mut given = paid();
    given.push(transferred(first_ticket(), 2, buyer(), friend(), 1));
    BookingTest::with(())
        .given(given.clone())
        .when_async(BookingCommand::CheckIn {
            ticket_id: first_ticket(),
            now: t0(),
        })
        .await
        .then_expect_error(BookingError::TicketVoid);
    let new = ticket::ticket_id(booking_id(), 2);
    BookingTest::with(())
        .given(given)
        .when_async(BookingCommand::CheckIn {
            ticket_id: new,
            now: t0(),
        })
        .await
        .then_expect_events(vec![BookingEvent::TicketCheckedIn {
            ticket_id: new,
            checked_in_at: t0(),
        }]);
}

#[tokio::test]
async fn the_recipient_can_transfer_it_on_but_the_buyer_no_longer_can() {
    let mut given = paid();
    given.push(transferred(first_ticket(), 2, buyer(), friend(), 1));
    let new = ticket::ticket_id(booking_id(), 2);
    let third = Uuid::from_u128(30);
    BookingTest::with(())
        .given(given.clone())
        .when_async(transfer(new, friend(), third))
        .await
        .then_expect_events(vec![BookingEvent::TicketTransferred {
            ticket_id: new,
            new_ticket: IssuedTicket {
                ticket_id: ticket::ticket_id(booking_id(), 3),
                index: 3,
                seat_id: Some("stalls:A:1".into()),
                section_id: "stalls".into(),
                status: TicketStatus::Valid,
                checked_in_at: None,
                holder_id: Some(third),
                transfers: 2,
            },
            from_user_id: friend(),
            to_user_id: third,
            transferred_at: t0(),
        }]);
    BookingTest::with(())
        .given(given)
        .when_async(transfer(new, buyer(), third))
        .await
        .then_expect_error(BookingError::NotTheHolder);
}

#[tokio::test]
async fn transfers_are_capped_per_seat() {
    let mut given = paid();
    given.push(transferred(first_ticket(), 2, buyer(), friend(), 1));
    let second = ticket::ticket_id(booking_id(), 2);
    given.push(transferred(second, 3, friend(), buyer(), 2));
    let third = ticket::ticket_id(booking_id(), 3);
    BookingTest::with(())
        .given(given)
        .when_async(transfer(third, buyer(), friend()))
        .await
        .then_expect_error(BookingError::TransferLimit { max: 2 });
}

#[tokio::test]
async fn no_transfer_once_the_show_started() {
    BookingTest::with(())
        .given(paid())
        .when_async(BookingCommand::TransferTicket {
            ticket_id: first_ticket(),
            from_user_id: buyer(),
            to_user_id: friend(),
            max_transfers: 2,
            starts_at: t0(),
            now: t0(),
        })
        .await
        .then_expect_error(BookingError::TooLateToTransfer);
}

#[tokio::test]
async fn a_stranger_cannot_transfer_someone_elses_ticket() {
    BookingTest::with(())
        .given(paid())
        .when_async(transfer(first_ticket(), friend(), Uuid::from_u128(30)))
        .await
        .then_expect_error(BookingError::NotTheHolder);
}

#[tokio::test]
async fn a_ticket_is_not_transferred_to_its_own_holder() {
    BookingTest::with(())
        .given(paid())
        .when_async(transfer(first_ticket(), buyer(), buyer()))
        .await
        .then_expect_error(BookingError::TransferToSelf);
}

#[tokio::test]
async fn checked_in_and_void_tickets_are_not_transferred() {
    let mut given = paid();
    given.push(BookingEvent::TicketCheckedIn {
        ticket_id: first_ticket(),
        checked_in_at: t0(),
    });
    BookingTest::with(())
        .given(given)
        .when_async(transfer(first_ticket(), buyer(), friend()))
        .await
        .then_expect_error(BookingError::AlreadyCheckedIn { at: t0() });
    let mut given = paid();
    given.push(transferred(first_ticket(), 2, buyer(), friend(), 1));
    BookingTest::with(())
        .given(given)
        .when_async(transfer(first_ticket(), buyer(), friend()))
        .await
        .then_expect_error(BookingError::TicketVoid);
}

#[tokio::test]
async fn a_booking_with_a_transferred_ticket_is_not_refunded_unless_the_event_is_cancelled() {
    let mut given = paid();
    given.push(transferred(first_ticket(), 2, buyer(), friend(), 1));
    BookingTest::with(())
        .given(given.clone())
        .when_async(BookingCommand::RequestRefund {
            reason: CancelReason::UserRequested,
            starts_at: t0() + Duration::days(1),
            now: t0(),
        })
        .await
        .then_expect_error(BookingError::Transferred);
    BookingTest::with(())
        .given(given)
        .when_async(BookingCommand::RequestRefund {
            reason: CancelReason::EventCancelled,
            starts_at: t0() + Duration::days(1),
            now: t0(),
        })
        .await
        .then_expect_events(vec![BookingEvent::RefundRequested {
            reason: CancelReason::EventCancelled,
            requested_at: t0(),
        }]);
}
