//! `sales_section_tier` and `sales_booking`: what each event sold, by tier and by minute.
//! A booking keeps its places per section; tiers are joined in at query time. Pricing them
//! here would depend on the show stream having been applied first, and the show and booking
//! topics are not ordered with each other (pricing is frozen once the event is published,
//! so the join gives the prices the booking was made at).

use std::collections::BTreeMap;

use async_trait::async_trait;
use domain::booking::{BookingEvent, BookingStatus};
use domain::show::ShowEvent;
use plumbing::consumer::HandleError;
use plumbing::projection::Projection;
use schemas::read_models::SALES;
use schemas::{DecodedEvent, Envelope};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::bookings::status;
use crate::ids;

pub struct Sales;

async fn set_status(
    tx: &mut PgConnection,
    booking_id: Uuid,
    to: BookingStatus,
) -> Result<(), HandleError> {
    sqlx::query("UPDATE sales_booking SET status = $2 WHERE booking_id = $1")
        .bind(booking_id)
        .bind(status(to))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

#[async_trait]
impl Projection for Sales {
    fn name(&self) -> &'static str {
        SALES.consumer
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        envelope: &Envelope,
        event: DecodedEvent,
    ) -> Result<(), HandleError> {
        match event {
            DecodedEvent::Show(ShowEvent::PricingSet { tiers }) => {
                let event_id = ids::show_id(envelope)?;
                sqlx::query("DELETE FROM sales_section_tier WHERE event_id = $1")
                    .bind(event_id)
                    .execute(&mut *tx)
                    .await?;
                for tier in tiers {
                    for section in &tier.section_ids {
                        sqlx::query(
                            "INSERT INTO sales_section_tier
                                (event_id, section_id, tier_id, price_minor, currency)
                             VALUES ($1, $2, $3, $4, $5)",
                        )
                        .bind(event_id)
                        .bind(section)
                        .bind(&tier.tier_id)
                        .bind(tier.price.amount_minor)
                        .bind(&tier.price.currency)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
            }
            DecodedEvent::Booking(event) => {
                apply_booking(tx, ids::uuid_id("booking", envelope)?, event).await?;
            }
            _ => {}
        }
        Ok(())
    }
}

async fn apply_booking(
    tx: &mut PgConnection,
    booking_id: Uuid,
    event: BookingEvent,
) -> Result<(), HandleError> {
    match event {
        BookingEvent::BookingPlaced {
            show_id,
            seats,
            general_admission,
            total,
            hold_expires_at,
            placed_at,
            ..
        } => {
            // Places per section: a seat id starts with its section.
            let mut places: BTreeMap<String, i64> = BTreeMap::new();
            for seat in &seats {
                let section = seat.split(':').next().unwrap_or_default();
                *places.entry(section.to_owned()).or_default() += 1;
            }
            for ga in &general_admission {
                *places.entry(ga.section_id.clone()).or_default() += i64::from(ga.quantity);
            }
            let lines: Vec<_> = places
                .iter()
                .map(|(section, places)| json!({"section_id": section, "places": places}))
                .collect();
            sqlx::query(
                "INSERT INTO sales_booking (booking_id, event_id, status, places, total_minor,
                     currency, lines, hold_expires_at, placed_at)
                 VALUES ($1, $2, 'held', $3, $4, $5, $6, $7, $8)",
            )
            .bind(booking_id)
            .bind(show_id)
            .bind(i32::try_from(places.values().sum::<i64>()).unwrap_or(i32::MAX))
            .bind(total.amount_minor)
            .bind(&total.currency)
            .bind(sqlx::types::Json(lines))
            .bind(hold_expires_at)
            .bind(placed_at)
            .execute(&mut *tx)
            .await?;
        }
        BookingEvent::PaymentRequested { .. } => {
            set_status(tx, booking_id, BookingStatus::PaymentPending).await?;
        }
        BookingEvent::BookingConfirmed { confirmed_at, .. } => {
            sqlx::query(
                "UPDATE sales_booking SET status = $2, confirmed_at = $3 WHERE booking_id = $1",
            )
            .bind(booking_id)
            .bind(status(BookingStatus::Confirmed))
            .bind(confirmed_at)
            .execute(&mut *tx)
            .await?;
        }
        BookingEvent::BookingCancelled { .. } => {
            set_status(tx, booking_id, BookingStatus::Cancelled).await?;
        }
        BookingEvent::BookingExpired { .. } => {
            set_status(tx, booking_id, BookingStatus::Expired).await?;
        }
        BookingEvent::RefundRequested { .. } => {
            set_status(tx, booking_id, BookingStatus::RefundPending).await?;
        }
        BookingEvent::BookingRefunded { refunded_at } => {
            sqlx::query(
                "UPDATE sales_booking SET status = $2, refunded_at = $3 WHERE booking_id = $1",
            )
            .bind(booking_id)
            .bind(status(BookingStatus::Refunded))
            .bind(refunded_at)
            .execute(&mut *tx)
            .await?;
        }
        BookingEvent::TicketCheckedIn { .. } => {}
    }
    Ok(())
}
