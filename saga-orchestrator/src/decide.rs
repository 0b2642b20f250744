//! The saga's decisions as a pure function: given a step that is due, the booking's state and
//! its payment's state, which actions to take. No I/O and no clock (`now` arrives): every
//! transition of the booking process is tested here without a database or broker.
//!
//! Decisions are made from the aggregates' current state, not from a copy the saga keeps, so
//! a step run twice (redelivery, retry, a second saga instance) decides nothing new the
//! second time: actions on finished bookings come out empty.

use chrono::{DateTime, Utc};
use domain::booking::{Booking, BookingStatus, CancelReason};
use domain::money::Money;
use domain::payment::{Payment, PaymentStatus};
use uuid::Uuid;

/// A step of the process, due now. Stored durably in `saga_tasks` until it succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Payment was requested: record it and charge the provider (retried until the deadline).
    Charge,
    /// The provider answered (success or failure).
    Settle,
    /// The hold's deadline passed.
    HoldDeadline,
    /// The payment's deadline passed.
    PaymentDeadline,
    /// The booking ended without a sale: free its seats (and refund a payment that slipped in).
    /// No longer scheduled — a booking's end and its release are one append now — but steps
    /// stored by earlier versions still run.
    Release,
    /// A refund was requested (buyer cancelled a confirmed booking, or the show was cancelled).
    Refund,
    /// The provider refunded: finish the booking and give its seats back.
    CompleteRefund,
    /// A hold was made for this booking in one section; if the booking never appeared (a crash
    /// between hold and booking), free that section. No longer scheduled — holds and their
    /// booking are one append now — but steps stored by earlier versions still run.
    OrphanHold { inventory_id: String },
    /// The show was cancelled by its organizer.
    CancelForShow,
    /// Places may have freed up in a show with a waiting list (the task's id is the show's):
    /// settle its ended offers and make new ones (`crate::waitlist`). Not a booking step.
    WaitlistOffers,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    RecordPaymentRequest {
        payment_id: Uuid,
        amount: Money,
        /// The card's label; the token itself is read from the vault when charging.
        card: String,
    },
    Charge {
        payment_id: Uuid,
        amount: Money,
    },
    ConfirmSales,
    ConfirmBooking,
    /// Always followed by `ReleaseHolds`: both land in one append.
    CancelBooking {
        reason: CancelReason,
        detail: String,
    },
    /// The hold lapsed: the inventory already counts it as free, its sections are untouched.
    ExpireBooking,
    ReleaseHolds,
    ReleaseHold {
        inventory_id: String,
    },
    RequestPaymentRefund {
        payment_id: Uuid,
    },
    CallRefund {
        payment_id: Uuid,
        amount: Money,
    },
    MarkBookingRefunded,
    ReturnSales,
    RequestBookingRefund {
        reason: CancelReason,
    },
}

/// Refunds a payment that succeeded (or whose refund was asked for), if there is one.
pub(crate) fn refund(booking: &Booking, payment: Option<&Payment>) -> Vec<Action> {
    match (booking.payment_id, payment) {
        (Some(payment_id), Some(p))
            if matches!(
                p.status,
                PaymentStatus::Succeeded | PaymentStatus::RefundRequested
            ) =>
        {
            let amount = p.amount.clone().unwrap_or_else(|| Money::new(0, "EUR"));
            vec![
                Action::RequestPaymentRefund { payment_id },
                Action::CallRefund { payment_id, amount },
            ]
        }
        _ => vec![],
    }
}

pub fn decide(
    step: &Step,
    booking: &Booking,
    payment: Option<&Payment>,
    now: DateTime<Utc>,
) -> Vec<Action> {
    use BookingStatus as B;
    match step {
        Step::Charge => {
            let due = booking.status == B::PaymentPending
                && booking.payment_deadline.is_some_and(|d| now < d);
            let answered = payment.is_some_and(|p| p.status != PaymentStatus::Requested);
            match (due && !answered, booking.payment_id, booking.total.clone()) {
                (true, Some(payment_id), Some(amount)) => vec![
                    Action::RecordPaymentRequest {
                        payment_id,
                        amount: amount.clone(),
                        card: booking.card.clone().unwrap_or_default(),
                    },
                    Action::Charge { payment_id, amount },
                ],
                _ => vec![],
            }
        }
        Step::Settle => match (payment.map(|p| p.status), booking.status) {
            (Some(PaymentStatus::Succeeded), B::PaymentPending) => {
                vec![Action::ConfirmSales, Action::ConfirmBooking]
            }
            // A success for a booking that already ended (timed out, cancelled): give the
            // money back.
            (Some(PaymentStatus::Succeeded), B::Cancelled | B::Expired) => refund(booking, payment),
            (Some(PaymentStatus::Failed), B::PaymentPending) => vec![
                Action::CancelBooking {
                    reason: CancelReason::PaymentDeclined,
                    detail: payment.and_then(|p| p.failure_reason.clone()).map_or_else(
                        || "the payment was declined".into(),
                        |r| format!("payment declined: {r}"),
                    ),
                },
                Action::ReleaseHolds,
            ],
            _ => vec![],
        },
        Step::HoldDeadline => match booking.status {
            // The hold has lapsed, so the inventory already counts its places as free (the
            // next hold on them records `HoldExpired`): only the booking changes. Writing a
            // release to the section too would race every buyer holding there.
            B::Held if booking.hold_expires_at.is_some_and(|at| now >= at) => {
                vec![Action::ExpireBooking]
            }
            _ => vec![],
        },
        Step::PaymentDeadline => {
            let succeeded = payment.is_some_and(|p| p.status == PaymentStatus::Succeeded);
            match booking.status {
                // A success already recorded settles on its own step; do not cancel under it.
                B::PaymentPending if succeeded => vec![],
                B::PaymentPending if booking.payment_deadline.is_some_and(|d| now >= d) => {
                    vec![
                        Action::CancelBooking {
                            reason: CancelReason::PaymentTimedOut,
                            detail: "the payment provider did not answer in time".into(),
                        },
                        Action::ReleaseHolds,
                    ]
                }
                _ => vec![],
            }
        }
        Step::Release => match booking.status {
            B::Cancelled | B::Expired => {
                let mut actions = vec![Action::ReleaseHolds];
                actions.extend(refund(booking, payment));
                actions
            }
            _ => vec![],
        },
        Step::Refund => match booking.status {
            B::RefundPending => refund(booking, payment),
            _ => vec![],
        },
        Step::CompleteRefund => match booking.status {
            B::RefundPending if payment.is_some_and(|p| p.status == PaymentStatus::Refunded) => {
                vec![Action::MarkBookingRefunded, Action::ReturnSales]
            }
            _ => vec![],
        },
        Step::OrphanHold { inventory_id } => {
            if booking.exists() {
                vec![]
            } else {
                vec![Action::ReleaseHold {
                    inventory_id: inventory_id.clone(),
                }]
            }
        }
        Step::CancelForShow => match booking.status {
            B::Held | B::PaymentPending => vec![
                Action::CancelBooking {
                    reason: CancelReason::EventCancelled,
                    detail: "the event was cancelled by its organizer".into(),
                },
                Action::ReleaseHolds,
            ],
            B::Confirmed => vec![Action::RequestBookingRefund {
                reason: CancelReason::EventCancelled,
            }],
            _ => vec![],
        },
        Step::WaitlistOffers => vec![],
    }
}

#[cfg(test)]
mod tests;
