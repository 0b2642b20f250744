//! What the saga schedules when events arrive. A batch is claimed (deduplicated) and its
//! steps scheduled in one transaction with one statement per table, so a redelivered event
//! schedules nothing twice and a crash loses nothing; the steps themselves run in `worker`.
//!
//! Every event also keeps the saga's cached aggregates up to date (`observe`), so the steps
//! decide from what the saga received instead of reading the streams again.

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::booking::BookingEvent;
use domain::payment::{Payment, PaymentEvent};
use domain::show::ShowEvent;
use domain::waitlist::WaitlistEvent;
use plumbing::consumer::{HandleError, Handler};
use plumbing::projection::Claims;
use schemas::{DecodedEvent, Envelope};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::decide::Step;
use crate::tasks::schedule_many;
use crate::worker::Stores;

pub const CONSUMER: &str = "saga";

pub struct Reactions {
    pub pool: PgPool,
    pub stores: Stores,
}

fn poison(what: &str, envelope: &Envelope) -> HandleError {
    HandleError::Poison(anyhow::anyhow!(
        "{what} id {:?} is malformed",
        envelope.aggregate_id
    ))
}

/// What a batch asks of the saga's tables.
#[derive(Default)]
struct Plan {
    steps: Vec<(Uuid, Step, DateTime<Utc>)>,
    /// (show, booking) of bookings placed.
    placed: Vec<(Uuid, Uuid)>,
    cancelled_shows: Vec<Uuid>,
    /// Shows someone joined the waiting list of.
    waitlisted: Vec<Uuid>,
    /// Shows one of whose bookings ended (or was paid): an offer may be due there.
    ended_in: Vec<Uuid>,
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
            self.observe(envelope, &event).await;
            let payment_booking = self.payment_booking(envelope, &event).await?;
            let ended_in = self.ended_in(envelope, &event).await?;
            decoded.push((envelope, event, payment_booking, ended_in));
        }
        let mut plan = Plan::default();
        let mut tx = self.pool.begin().await?;
        let mut claims = Claims::lock(&mut tx, CONSUMER, envelopes).await?;
        for (envelope, event, payment_booking, ended_in) in decoded {
            if claims.claim(&mut tx, envelope).await? {
                plan.ended_in.extend(ended_in);
                react(&mut plan, envelope, event, payment_booking, now)?;
            }
        }
        write(&mut tx, plan, now).await?;
        claims.save(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

impl Reactions {
    /// Feeds the event to the cache of its aggregate (sequence order is per aggregate, as
    /// Kafka delivers it; a gap makes the cache forget the aggregate).
    async fn observe(&self, envelope: &Envelope, event: &DecodedEvent) {
        let id = &envelope.aggregate_id;
        let sequence = envelope.sequence;
        match event {
            DecodedEvent::Booking(e) => self.stores.bookings.observe(id, sequence, e.clone()).await,
            DecodedEvent::Payment(e) => self.stores.payments.observe(id, sequence, e.clone()).await,
            DecodedEvent::Inventory(e) => {
                self.stores.inventory.observe(id, sequence, e.clone()).await;
            }
            DecodedEvent::Waitlist(e) => {
                self.stores.waitlists.observe(id, sequence, e.clone()).await;
            }
            _ => {}
        }
    }

    /// The show of a booking that ended or was paid (its buyer and show never change, so the
    /// cached copy the reactions keep is good enough). Before the transaction: a stream only
    /// grows.
    async fn ended_in(
        &self,
        envelope: &Envelope,
        event: &DecodedEvent,
    ) -> Result<Option<Uuid>, HandleError> {
        let DecodedEvent::Booking(
            BookingEvent::BookingCancelled { .. }
            | BookingEvent::BookingExpired { .. }
            | BookingEvent::BookingConfirmed { .. }
            | BookingEvent::BookingRefunded { .. },
        ) = event
        else {
            return Ok(None);
        };
        let (booking, _) = self
            .stores
            .bookings
            .cached(&envelope.aggregate_id, Duration::MAX, |b| b.exists())
            .await
            .map_err(|e| HandleError::Unavailable(anyhow::Error::new(e)))?;
        Ok(booking.show_id)
    }

    /// Payment events name the payment; its booking is in the payment's first event, which
    /// the cache has seen (or a read finds). Before the transaction: a stream only grows.
    async fn payment_booking(
        &self,
        envelope: &Envelope,
        event: &DecodedEvent,
    ) -> Result<Option<Uuid>, HandleError> {
        if !matches!(event, DecodedEvent::Payment(_)) {
            return Ok(None);
        }
        let (payment, _) = self
            .stores
            .payments
            .cached(&envelope.aggregate_id, Duration::MAX, Payment::exists)
            .await
            .map_err(|e| HandleError::Unavailable(anyhow::Error::new(e)))?;
        Ok(payment.booking_id)
    }
}

/// What one claimed event calls for.
fn react(
    plan: &mut Plan,
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
                    plan.steps
                        .push((booking_id, Step::HoldDeadline, hold_expires_at));
                    plan.placed.push((show_id, booking_id));
                }
                BookingEvent::PaymentRequested {
                    payment_deadline, ..
                } => {
                    plan.steps.push((booking_id, Step::Charge, now));
                    plan.steps
                        .push((booking_id, Step::PaymentDeadline, payment_deadline));
                }
                BookingEvent::RefundRequested { .. } => {
                    plan.steps.push((booking_id, Step::Refund, now));
                }
                // A booking's end and the release of its seats are one append: nothing
                // left to do. A payment that succeeds after it is refunded by `Settle`.
                BookingEvent::BookingCancelled { .. }
                | BookingEvent::BookingExpired { .. }
                | BookingEvent::BookingConfirmed { .. }
                | BookingEvent::BookingRefunded { .. }
                | BookingEvent::TicketCheckedIn { .. }
                | BookingEvent::TicketTransferred { .. } => {}
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
                    plan.steps.push((booking_id, Step::Settle, now));
                }
                PaymentEvent::PaymentRefunded { .. } => {
                    plan.steps.push((booking_id, Step::CompleteRefund, now));
                }
                PaymentEvent::PaymentRequested { .. }
                | PaymentEvent::PaymentRefundRequested { .. } => {}
            }
        }
        DecodedEvent::Waitlist(WaitlistEvent::WaitlistJoined { show_id, .. }) => {
            // Places may have freed up between the joiner's sold-out check and the join.
            plan.waitlisted.push(show_id);
            plan.steps.push((show_id, Step::WaitlistOffers, now));
        }
        DecodedEvent::Show(ShowEvent::ShowCancelled { .. }) => {
            let show_id: Uuid = envelope
                .aggregate_id
                .parse()
                .map_err(|_| poison("show", envelope))?;
            plan.cancelled_shows.push(show_id);
        }
        _ => {}
    }
    Ok(())
}

/// Writes a batch's plan: one statement per table.
async fn write(
    tx: &mut PgConnection,
    mut plan: Plan,
    now: DateTime<Utc>,
) -> Result<(), HandleError> {
    if !plan.cancelled_shows.is_empty() {
        sqlx::query(
            "INSERT INTO saga_cancelled_shows (show_id) SELECT * FROM unnest($1::uuid[])
             ON CONFLICT DO NOTHING",
        )
        .bind(&plan.cancelled_shows)
        .execute(&mut *tx)
        .await?;
    }
    if !plan.placed.is_empty() {
        let (shows, bookings): (Vec<Uuid>, Vec<Uuid>) = plan.placed.iter().copied().unzip();
        sqlx::query(
            "INSERT INTO saga_show_bookings (show_id, booking_id)
             SELECT * FROM unnest($1::uuid[], $2::uuid[]) ON CONFLICT DO NOTHING",
        )
        .bind(&shows)
        .bind(&bookings)
        .execute(&mut *tx)
        .await?;
        // Placed while (or just before) its show was cancelled: cancel it too.
        let distinct: Vec<Uuid> = shows
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let cancelled: Vec<Uuid> =
            sqlx::query_scalar("SELECT show_id FROM saga_cancelled_shows WHERE show_id = ANY($1)")
                .bind(&distinct)
                .fetch_all(&mut *tx)
                .await?;
        for (show, booking) in &plan.placed {
            if cancelled.contains(show) {
                plan.steps.push((*booking, Step::CancelForShow, now));
            }
        }
    }
    if !plan.cancelled_shows.is_empty() {
        let bookings: Vec<Uuid> =
            sqlx::query_scalar("SELECT booking_id FROM saga_show_bookings WHERE show_id = ANY($1)")
                .bind(&plan.cancelled_shows)
                .fetch_all(&mut *tx)
                .await?;
        plan.steps.extend(
            bookings
                .into_iter()
                .map(|booking| (booking, Step::CancelForShow, now)),
        );
    }
    if !plan.waitlisted.is_empty() {
        sqlx::query(
            "INSERT INTO saga_waitlist_shows (show_id) SELECT * FROM unnest($1::uuid[])
             ON CONFLICT DO NOTHING",
        )
        .bind(&plan.waitlisted)
        .execute(&mut *tx)
        .await?;
    }
    if !plan.ended_in.is_empty() {
        let shows: Vec<Uuid> = plan
            .ended_in
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let listed: Vec<Uuid> =
            sqlx::query_scalar("SELECT show_id FROM saga_waitlist_shows WHERE show_id = ANY($1)")
                .bind(&shows)
                .fetch_all(&mut *tx)
                .await?;
        plan.steps.extend(
            listed
                .into_iter()
                .map(|show| (show, Step::WaitlistOffers, now)),
        );
    }
    schedule_many(tx, &plan.steps).await?;
    Ok(())
}
