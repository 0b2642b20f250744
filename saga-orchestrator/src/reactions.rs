//! What the saga schedules when an event arrives. Each event is claimed (deduplicated) and
//! its steps scheduled in one transaction, so a redelivered event schedules nothing twice and
//! a crash loses nothing; the steps themselves run in `worker`.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use domain::booking::BookingEvent;
use domain::inventory::InventoryEvent;
use domain::payment::{Payment, PaymentEvent};
use domain::show::ShowEvent;
use plumbing::consumer::{HandleError, Handler};
use plumbing::projection::Claims;
use plumbing::store::AggregateStore;
use schemas::{DecodedEvent, Envelope};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::decide::Step;
use crate::tasks::schedule;

pub const CONSUMER: &str = "saga";
/// After a hold's expiry, how long a booking may still take to appear before the hold counts
/// as orphaned (a crash between the hold and the booking).
const ORPHAN_GRACE_SECONDS: i64 = 5;

pub struct Reactions {
    pub pool: PgPool,
    pub payments: Arc<AggregateStore<Payment>>,
}

fn poison(what: &str, envelope: &Envelope) -> HandleError {
    HandleError::Poison(anyhow::anyhow!(
        "{what} id {:?} is malformed",
        envelope.aggregate_id
    ))
}

#[async_trait]
impl Handler for Reactions {
    async fn handle(&self, envelope: &Envelope) -> Result<(), HandleError> {
        self.handle_batch(std::slice::from_ref(envelope)).await
    }

    /// Claims and schedules a batch of events in one transaction.
    async fn handle_batch(&self, envelopes: &[Envelope]) -> Result<(), HandleError> {
        let now = Utc::now();
        let mut decoded = Vec::with_capacity(envelopes.len());
        for envelope in envelopes {
            let event = schemas::decode(envelope).map_err(|e| HandleError::Poison(e.into()))?;
            let payment_booking = self.payment_booking(envelope, &event).await?;
            decoded.push((envelope, event, payment_booking));
        }
        let mut tx = self.pool.begin().await?;
        let mut claims = Claims::lock(&mut tx, CONSUMER, envelopes).await?;
        for (envelope, event, payment_booking) in decoded {
            if claims.claim(&mut tx, envelope).await? {
                react(&mut tx, envelope, event, payment_booking, now).await?;
            }
        }
        claims.save(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

impl Reactions {
    /// Payment events name the payment; the booking is in the payment's stream. Read before
    /// the transaction (the stream only grows; a redelivery reads it again).
    async fn payment_booking(
        &self,
        envelope: &Envelope,
        event: &DecodedEvent,
    ) -> Result<Option<Uuid>, HandleError> {
        if !matches!(event, DecodedEvent::Payment(_)) {
            return Ok(None);
        }
        let (payment, _) = self
            .payments
            .load(&envelope.aggregate_id)
            .await
            .map_err(|e| HandleError::Unavailable(anyhow::Error::new(e)))?;
        Ok(payment.booking_id)
    }
}

/// Schedules what one claimed event calls for.
async fn react(
    tx: &mut PgConnection,
    envelope: &Envelope,
    event: DecodedEvent,
    payment_booking: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<(), HandleError> {
    match event {
        DecodedEvent::Booking(event) => {
            let booking_id: Uuid = envelope
                .aggregate_id
                .parse()
                .map_err(|_| poison("booking", envelope))?;
            match event {
                BookingEvent::BookingPlaced {
                    show_id,
                    hold_expires_at,
                    ..
                } => {
                    schedule(&mut *tx, booking_id, &Step::HoldDeadline, hold_expires_at).await?;
                    sqlx::query(
                        "INSERT INTO saga_show_bookings (show_id, booking_id) VALUES ($1, $2)
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(show_id)
                    .bind(booking_id)
                    .execute(&mut *tx)
                    .await?;
                    // Placed while (or just before) its show was cancelled.
                    let cancelled: bool = sqlx::query_scalar(
                        "SELECT EXISTS (SELECT 1 FROM saga_cancelled_shows WHERE show_id = $1)",
                    )
                    .bind(show_id)
                    .fetch_one(&mut *tx)
                    .await?;
                    if cancelled {
                        schedule(&mut *tx, booking_id, &Step::CancelForShow, now).await?;
                    }
                }
                BookingEvent::PaymentRequested {
                    payment_deadline, ..
                } => {
                    schedule(&mut *tx, booking_id, &Step::Charge, now).await?;
                    schedule(
                        &mut *tx,
                        booking_id,
                        &Step::PaymentDeadline,
                        payment_deadline,
                    )
                    .await?;
                }
                BookingEvent::BookingCancelled { .. } | BookingEvent::BookingExpired { .. } => {
                    schedule(&mut *tx, booking_id, &Step::Release, now).await?;
                }
                BookingEvent::RefundRequested { .. } => {
                    schedule(&mut *tx, booking_id, &Step::Refund, now).await?;
                }
                BookingEvent::BookingConfirmed { .. }
                | BookingEvent::BookingRefunded { .. }
                | BookingEvent::TicketCheckedIn { .. } => {}
            }
        }
        DecodedEvent::Payment(event) => {
            let booking_id = payment_booking.ok_or_else(|| {
                HandleError::Poison(anyhow::anyhow!(
                    "payment {} names no booking",
                    envelope.aggregate_id
                ))
            })?;
            match event {
                PaymentEvent::PaymentSucceeded { .. } | PaymentEvent::PaymentFailed { .. } => {
                    schedule(&mut *tx, booking_id, &Step::Settle, now).await?;
                }
                PaymentEvent::PaymentRefunded { .. } => {
                    schedule(&mut *tx, booking_id, &Step::CompleteRefund, now).await?;
                }
                PaymentEvent::PaymentRequested { .. }
                | PaymentEvent::PaymentRefundRequested { .. } => {}
            }
        }
        DecodedEvent::Inventory(InventoryEvent::SeatsHeld {
            booking_id,
            expires_at,
            ..
        }) => {
            let step = Step::OrphanHold {
                inventory_id: envelope.aggregate_id.clone(),
            };
            schedule(
                &mut *tx,
                booking_id,
                &step,
                expires_at + Duration::seconds(ORPHAN_GRACE_SECONDS),
            )
            .await?;
        }
        DecodedEvent::Show(ShowEvent::ShowCancelled { .. }) => {
            let show_id: Uuid = envelope
                .aggregate_id
                .parse()
                .map_err(|_| poison("show", envelope))?;
            sqlx::query(
                "INSERT INTO saga_cancelled_shows (show_id) VALUES ($1) ON CONFLICT DO NOTHING",
            )
            .bind(show_id)
            .execute(&mut *tx)
            .await?;
            let bookings: Vec<Uuid> =
                sqlx::query_scalar("SELECT booking_id FROM saga_show_bookings WHERE show_id = $1")
                    .bind(show_id)
                    .fetch_all(&mut *tx)
                    .await?;
            for booking_id in bookings {
                schedule(&mut *tx, booking_id, &Step::CancelForShow, now).await?;
            }
        }
        _ => {}
    }
    Ok(())
}
