//! Given / when / then tests of every `Payment` rule.

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;

type PaymentTest = TestFramework<Payment>;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 18, 0, 0).unwrap()
}

fn request() -> PaymentCommand {
    PaymentCommand::Request {
        booking_id: Uuid::from_u128(1),
        amount: Money::new(4_500, "EUR"),
        card: "Visa test card".into(),
        now: t0(),
    }
}

fn requested() -> PaymentEvent {
    PaymentEvent::PaymentRequested {
        booking_id: Uuid::from_u128(1),
        amount: Money::new(4_500, "EUR"),
        card: "Visa test card".into(),
        requested_at: t0(),
    }
}

fn succeeded() -> PaymentEvent {
    PaymentEvent::PaymentSucceeded { succeeded_at: t0() }
}

#[tokio::test]
async fn records_a_request() {
    PaymentTest::with(())
        .given_no_previous_events()
        .when_async(request())
        .await
        .then_expect_events(vec![requested()]);
}

#[tokio::test]
async fn the_same_request_again_writes_nothing() {
    PaymentTest::with(())
        .given(vec![requested()])
        .when_async(request())
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn rejects_reusing_a_payment_id_for_another_amount() {
    PaymentTest::with(())
        .given(vec![requested()])
        .when_async(PaymentCommand::Request {
            booking_id: Uuid::from_u128(1),
            amount: Money::new(1, "EUR"),
            card: "Visa test card".into(),
            now: t0(),
        })
        .await
        .then_expect_error(PaymentError::Mismatch);
}

#[tokio::test]
async fn records_success_once() {
    PaymentTest::with(())
        .given(vec![requested()])
        .when_async(PaymentCommand::RecordSuccess { now: t0() })
        .await
        .then_expect_events(vec![succeeded()]);
    PaymentTest::with(())
        .given(vec![requested(), succeeded()])
        .when_async(PaymentCommand::RecordSuccess { now: t0() })
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn records_a_decline_with_its_reason() {
    PaymentTest::with(())
        .given(vec![requested()])
        .when_async(PaymentCommand::RecordFailure {
            reason: "card_declined".into(),
            now: t0(),
        })
        .await
        .then_expect_events(vec![PaymentEvent::PaymentFailed {
            reason: "card_declined".into(),
            failed_at: t0(),
        }]);
}

#[tokio::test]
async fn a_late_failure_after_success_writes_nothing() {
    PaymentTest::with(())
        .given(vec![requested(), succeeded()])
        .when_async(PaymentCommand::RecordFailure {
            reason: "late".into(),
            now: t0(),
        })
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn refunds_a_captured_payment() {
    PaymentTest::with(())
        .given(vec![requested(), succeeded()])
        .when_async(PaymentCommand::RequestRefund { now: t0() })
        .await
        .then_expect_events(vec![PaymentEvent::PaymentRefundRequested {
            requested_at: t0(),
        }]);
    PaymentTest::with(())
        .given(vec![
            requested(),
            succeeded(),
            PaymentEvent::PaymentRefundRequested { requested_at: t0() },
        ])
        .when_async(PaymentCommand::RecordRefund { now: t0() })
        .await
        .then_expect_events(vec![PaymentEvent::PaymentRefunded { refunded_at: t0() }]);
}

#[tokio::test]
async fn rejects_refunding_what_was_never_captured() {
    PaymentTest::with(())
        .given(vec![requested()])
        .when_async(PaymentCommand::RequestRefund { now: t0() })
        .await
        .then_expect_error(PaymentError::NotCaptured);
}

#[tokio::test]
async fn rejects_answers_for_an_unknown_payment() {
    PaymentTest::with(())
        .given_no_previous_events()
        .when_async(PaymentCommand::RecordSuccess { now: t0() })
        .await
        .then_expect_error(PaymentError::UnknownPayment);
}

#[test]
fn a_card_label_names_the_test_card_and_never_repeats_a_token() {
    assert_eq!(card_label("tok_visa"), "Visa test card");
    assert_eq!(card_label(" tok_decline "), "Declining test card");
    for token in ["tok_1NXa9b2eZvKYlo2C", "", "tok_timeout"] {
        assert!(!card_label(token).contains("tok_"), "{token}");
    }
}
