//! Every transition of the booking process, decided without I/O.

use chrono::{Duration, TimeZone};
use cqrs_es::Aggregate;
use domain::booking::{BookingEvent, GeneralAdmission, ticket};
use domain::payment::PaymentEvent;

use super::*;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 18, 0, 0).unwrap()
}

fn booking_id() -> Uuid {
    Uuid::from_u128(1)
}

fn payment_id() -> Uuid {
    Uuid::from_u128(9)
}

fn amount() -> Money {
    Money::new(4_500, "EUR")
}

fn booking(events: &[BookingEvent]) -> Booking {
    let mut b = Booking::default();
    for e in events {
        b.apply(e.clone());
    }
    b
}

fn payment(events: &[PaymentEvent]) -> Payment {
    let mut p = Payment::default();
    for e in events {
        p.apply(e.clone());
    }
    p
}

fn placed() -> BookingEvent {
    BookingEvent::BookingPlaced {
        booking_id: booking_id(),
        user_id: Uuid::from_u128(2),
        show_id: Uuid::from_u128(3),
        seats: vec!["stalls:A:1".into()],
        general_admission: vec![],
        total: amount(),
        terms: Default::default(),
        hold_expires_at: t0() + Duration::minutes(10),
        placed_at: t0(),
    }
}

fn pay_requested() -> BookingEvent {
    BookingEvent::PaymentRequested {
        payment_id: payment_id(),
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
            &[] as &[GeneralAdmission],
        ),
        confirmed_at: t0(),
    }
}

fn cancelled(reason: CancelReason) -> BookingEvent {
    BookingEvent::BookingCancelled {
        reason,
        detail: "x".into(),
        cancelled_at: t0(),
    }
}

fn p_requested() -> PaymentEvent {
    PaymentEvent::PaymentRequested {
        booking_id: booking_id(),
        amount: amount(),
        card: "Visa test card".into(),
        requested_at: t0(),
    }
}

fn p_succeeded() -> PaymentEvent {
    PaymentEvent::PaymentSucceeded { succeeded_at: t0() }
}

fn refund_actions() -> Vec<Action> {
    vec![
        Action::RequestPaymentRefund {
            payment_id: payment_id(),
        },
        Action::CallRefund {
            payment_id: payment_id(),
            amount: amount(),
        },
    ]
}

#[test]
fn charges_a_pending_payment_before_its_deadline() {
    let b = booking(&[placed(), pay_requested()]);
    let actions = decide(&Step::Charge, &b, None, t0() + Duration::minutes(5));
    assert_eq!(
        actions,
        vec![
            Action::RecordPaymentRequest {
                payment_id: payment_id(),
                amount: amount(),
                card: "Visa test card".into()
            },
            Action::Charge {
                payment_id: payment_id(),
                amount: amount(),
            },
        ]
    );
}

#[test]
fn stops_charging_after_the_deadline_or_an_answer() {
    let b = booking(&[placed(), pay_requested()]);
    assert!(decide(&Step::Charge, &b, None, t0() + Duration::minutes(7)).is_empty());
    let p = payment(&[p_requested(), p_succeeded()]);
    assert!(decide(&Step::Charge, &b, Some(&p), t0() + Duration::minutes(5)).is_empty());
}

#[test]
fn a_success_sells_the_seats_and_confirms() {
    let b = booking(&[placed(), pay_requested()]);
    let p = payment(&[p_requested(), p_succeeded()]);
    assert_eq!(
        decide(&Step::Settle, &b, Some(&p), t0()),
        vec![Action::ConfirmSales, Action::ConfirmBooking]
    );
}

#[test]
fn a_decline_cancels_with_the_reason() {
    let b = booking(&[placed(), pay_requested()]);
    let p = payment(&[
        p_requested(),
        PaymentEvent::PaymentFailed {
            reason: "card_declined".into(),
            failed_at: t0(),
        },
    ]);
    assert_eq!(
        decide(&Step::Settle, &b, Some(&p), t0()),
        vec![
            Action::CancelBooking {
                reason: CancelReason::PaymentDeclined,
                detail: "payment declined: card_declined".into()
            },
            Action::ReleaseHolds
        ]
    );
}

#[test]
fn a_late_success_for_a_timed_out_booking_is_refunded() {
    let b = booking(&[
        placed(),
        pay_requested(),
        cancelled(CancelReason::PaymentTimedOut),
    ]);
    let p = payment(&[p_requested(), p_succeeded()]);
    assert_eq!(decide(&Step::Settle, &b, Some(&p), t0()), refund_actions());
}

#[test]
fn a_late_success_for_an_expired_booking_is_refunded() {
    let b = booking(&[placed(), BookingEvent::BookingExpired { expired_at: t0() }]);
    let mut b = b;
    b.payment_id = Some(payment_id());
    let p = payment(&[p_requested(), p_succeeded()]);
    assert_eq!(decide(&Step::Settle, &b, Some(&p), t0()), refund_actions());
}

#[test]
fn settling_a_confirmed_booking_again_does_nothing() {
    let b = booking(&[placed(), pay_requested(), confirmed()]);
    let p = payment(&[p_requested(), p_succeeded()]);
    assert!(decide(&Step::Settle, &b, Some(&p), t0()).is_empty());
}

#[test]
fn an_unpaid_hold_expires_at_its_deadline_only() {
    let b = booking(&[placed()]);
    assert!(decide(&Step::HoldDeadline, &b, None, t0() + Duration::minutes(9)).is_empty());
    assert_eq!(
        decide(&Step::HoldDeadline, &b, None, t0() + Duration::minutes(10)),
        vec![Action::ExpireBooking]
    );
    let paying = booking(&[placed(), pay_requested()]);
    assert!(
        decide(
            &Step::HoldDeadline,
            &paying,
            None,
            t0() + Duration::minutes(11)
        )
        .is_empty()
    );
}

#[test]
fn an_unanswered_payment_is_cancelled_at_its_deadline() {
    let b = booking(&[placed(), pay_requested()]);
    let p = payment(&[p_requested()]);
    assert_eq!(
        decide(
            &Step::PaymentDeadline,
            &b,
            Some(&p),
            t0() + Duration::minutes(7)
        ),
        vec![
            Action::CancelBooking {
                reason: CancelReason::PaymentTimedOut,
                detail: "the payment provider did not answer in time".into()
            },
            Action::ReleaseHolds
        ]
    );
}

#[test]
fn the_deadline_does_not_cancel_a_success_waiting_to_settle() {
    let b = booking(&[placed(), pay_requested()]);
    let p = payment(&[p_requested(), p_succeeded()]);
    assert!(
        decide(
            &Step::PaymentDeadline,
            &b,
            Some(&p),
            t0() + Duration::minutes(8)
        )
        .is_empty()
    );
}

#[test]
fn an_ended_booking_releases_its_seats() {
    let b = booking(&[placed(), cancelled(CancelReason::UserRequested)]);
    assert_eq!(
        decide(&Step::Release, &b, None, t0()),
        vec![Action::ReleaseHolds]
    );
    let expired = booking(&[placed(), BookingEvent::BookingExpired { expired_at: t0() }]);
    assert_eq!(
        decide(&Step::Release, &expired, None, t0()),
        vec![Action::ReleaseHolds]
    );
    let live = booking(&[placed()]);
    assert!(decide(&Step::Release, &live, None, t0()).is_empty());
}

#[test]
fn releasing_a_booking_whose_payment_slipped_in_refunds_it() {
    let b = booking(&[
        placed(),
        pay_requested(),
        cancelled(CancelReason::UserRequested),
    ]);
    let p = payment(&[p_requested(), p_succeeded()]);
    let mut expected = vec![Action::ReleaseHolds];
    expected.extend(refund_actions());
    assert_eq!(decide(&Step::Release, &b, Some(&p), t0()), expected);
}

#[test]
fn a_refund_request_refunds_the_payment_then_completes() {
    let b = booking(&[
        placed(),
        pay_requested(),
        confirmed(),
        BookingEvent::RefundRequested {
            reason: CancelReason::UserRequested,
            requested_at: t0(),
        },
    ]);
    let captured = payment(&[p_requested(), p_succeeded()]);
    assert_eq!(
        decide(&Step::Refund, &b, Some(&captured), t0()),
        refund_actions()
    );
    assert!(decide(&Step::CompleteRefund, &b, Some(&captured), t0()).is_empty());
    let refunded = payment(&[
        p_requested(),
        p_succeeded(),
        PaymentEvent::PaymentRefundRequested { requested_at: t0() },
        PaymentEvent::PaymentRefunded { refunded_at: t0() },
    ]);
    assert_eq!(
        decide(&Step::CompleteRefund, &b, Some(&refunded), t0()),
        vec![Action::MarkBookingRefunded, Action::ReturnSales]
    );
}

#[test]
fn a_hold_without_a_booking_is_released() {
    let step = Step::OrphanHold {
        inventory_id: "show:stalls".into(),
    };
    assert_eq!(
        decide(&step, &Booking::default(), None, t0()),
        vec![Action::ReleaseHold {
            inventory_id: "show:stalls".into()
        }]
    );
    assert!(decide(&step, &booking(&[placed()]), None, t0()).is_empty());
}

#[test]
fn cancelling_the_show_cancels_open_bookings_and_refunds_confirmed_ones() {
    let open = booking(&[placed(), pay_requested()]);
    assert_eq!(
        decide(&Step::CancelForShow, &open, None, t0()),
        vec![
            Action::CancelBooking {
                reason: CancelReason::EventCancelled,
                detail: "the event was cancelled by its organizer".into()
            },
            Action::ReleaseHolds
        ]
    );
    let sold = booking(&[placed(), pay_requested(), confirmed()]);
    assert_eq!(
        decide(&Step::CancelForShow, &sold, None, t0()),
        vec![Action::RequestBookingRefund {
            reason: CancelReason::EventCancelled
        }]
    );
    let over = booking(&[placed(), BookingEvent::BookingExpired { expired_at: t0() }]);
    assert!(decide(&Step::CancelForShow, &over, None, t0()).is_empty());
}
