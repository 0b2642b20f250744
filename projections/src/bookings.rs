//! `booking_view` and `ticket_view`: each buyer's bookings and tickets, from the `Booking`
//! stream.

use async_trait::async_trait;
use domain::booking::{BookingEvent, BookingStatus};
use plumbing::consumer::HandleError;
use plumbing::projection::Projection;
use schemas::read_models::BOOKINGS;
use schemas::{DecodedEvent, Envelope};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

pub struct Bookings;

/// A status as the read models store it (its JSON name).
pub(crate) fn status(s: BookingStatus) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

async fn set_status(
    tx: &mut PgConnection,
    booking_id: Uuid,
    to: BookingStatus,
    failure_reason: Option<&str>,
) -> Result<(), HandleError> {
    sqlx::query(
        "UPDATE booking_view SET status = $2, failure_reason = coalesce($3, failure_reason)
          WHERE booking_id = $1",
    )
    .bind(booking_id)
    .bind(status(to))
    .bind(failure_reason)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[async_trait]
impl Projection for Bookings {
    fn name(&self) -> &'static str {
        BOOKINGS.consumer
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        envelope: &Envelope,
        event: DecodedEvent,
    ) -> Result<(), HandleError> {
        let DecodedEvent::Booking(event) = event else {
            return Ok(());
        };
        let booking_id = crate::ids::uuid_id("booking", envelope)?;
        match event {
            BookingEvent::BookingPlaced {
                user_id,
                show_id,
                seats,
                general_admission,
                total,
                hold_expires_at,
                placed_at,
                ..
            } => {
                sqlx::query(
                    "INSERT INTO booking_view (booking_id, user_id, event_id, status, seats,
                        general_admission, total, hold_expires_at, placed_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     ON CONFLICT (booking_id) DO NOTHING",
                )
                .bind(booking_id)
                .bind(user_id)
                .bind(show_id)
                .bind(status(BookingStatus::Held))
                .bind(Json(seats))
                .bind(Json(general_admission))
                .bind(Json(total))
                .bind(hold_expires_at)
                .bind(placed_at)
                .execute(&mut *tx)
                .await?;
            }
            BookingEvent::PaymentRequested { .. } => {
                set_status(tx, booking_id, BookingStatus::PaymentPending, None).await?;
            }
            BookingEvent::BookingConfirmed { tickets, .. } => {
                set_status(tx, booking_id, BookingStatus::Confirmed, None).await?;
                for ticket in tickets {
                    sqlx::query(
                        "INSERT INTO ticket_view (ticket_id, booking_id, user_id, event_id, idx,
                            seat_id, section_id, status)
                         SELECT $1, b.booking_id, b.user_id, b.event_id, $2, $3, $4, 'valid'
                           FROM booking_view b WHERE b.booking_id = $5
                         ON CONFLICT (ticket_id) DO NOTHING",
                    )
                    .bind(ticket.ticket_id)
                    .bind(i16::from(ticket.index))
                    .bind(ticket.seat_id)
                    .bind(ticket.section_id)
                    .bind(booking_id)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            BookingEvent::BookingCancelled { detail, .. } => {
                set_status(tx, booking_id, BookingStatus::Cancelled, Some(&detail)).await?;
            }
            BookingEvent::BookingExpired { .. } => {
                set_status(
                    tx,
                    booking_id,
                    BookingStatus::Expired,
                    Some("the hold expired before payment"),
                )
                .await?;
            }
            BookingEvent::RefundRequested { .. } => {
                set_status(tx, booking_id, BookingStatus::RefundPending, None).await?;
            }
            BookingEvent::BookingRefunded { .. } => {
                set_status(tx, booking_id, BookingStatus::Refunded, None).await?;
                sqlx::query("UPDATE ticket_view SET status = 'void' WHERE booking_id = $1")
                    .bind(booking_id)
                    .execute(&mut *tx)
                    .await?;
            }
            BookingEvent::TicketCheckedIn {
                ticket_id,
                checked_in_at,
            } => {
                sqlx::query(
                    "UPDATE ticket_view SET status = 'checked_in', checked_in_at = $2
                      WHERE ticket_id = $1",
                )
                .bind(ticket_id)
                .bind(checked_in_at)
                .execute(&mut *tx)
                .await?;
            }
        }
        Ok(())
    }
}
