//! `bookings`: each buyer's bookings (`booking_view`) and tickets (`ticket_view`), from the
//! `Booking` stream. Tables: `plumbing/migrations/0007_bookings.sql` (with the saga's) and
//! `migrations/0020_ticket_view_by_booking.sql`.

use chrono::{DateTime, Utc};
use domain::booking::{BookingEvent, BookingStatus, GeneralAdmission, TicketStatus};
use domain::money::Money;
use plumbing::position::ReadModel;
use schemas::DecodedEvent;
use schemas::api::bookings::BookingView;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;

use super::ids::uuid_id;
use crate::fold::{Fact, Model, NoGroup, Poison, Row, Ts, json};

pub const NAME: ReadModel = ReadModel {
    consumer: "bookings",
    aggregate_types: &["booking"],
};

/// A status as the read models store it (its JSON name).
pub(crate) fn status(s: BookingStatus) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingRow {
    pub booking_id: Uuid,
    pub user_id: Uuid,
    pub event_id: Uuid,
    pub status: String,
    pub seats: Value,
    pub general_admission: Value,
    pub total: Value,
    /// What a voucher took off `total` (money), if one was used.
    pub discount: Option<Value>,
    /// A waiting-list offer.
    pub offer: bool,
    pub hold_expires_at: Ts,
    pub failure_reason: Option<String>,
    pub placed_at: Ts,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BookingKey {
    pub booking_id: Uuid,
}

impl Row for BookingRow {
    const TABLE: &'static str = "booking_view";
    type Key = BookingKey;
    type Group = NoGroup;
    fn key(&self) -> BookingKey {
        BookingKey {
            booking_id: self.booking_id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketRow {
    pub ticket_id: Uuid,
    pub booking_id: Uuid,
    pub user_id: Uuid,
    pub event_id: Uuid,
    pub idx: i16,
    pub seat_id: Option<String>,
    pub section_id: String,
    pub status: String,
    pub checked_in_at: Option<Ts>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TicketKey {
    pub ticket_id: Uuid,
}

impl Row for TicketRow {
    const TABLE: &'static str = "ticket_view";
    type Key = TicketKey;
    /// A booking's tickets.
    type Group = BookingKey;
    fn key(&self) -> TicketKey {
        TicketKey {
            ticket_id: self.ticket_id,
        }
    }
    fn group(&self) -> Option<BookingKey> {
        Some(BookingKey {
            booking_id: self.booking_id,
        })
    }
}

crate::rows! {
    pub struct Rows { bookings: BookingRow, tickets: TicketRow }
}

pub struct Bookings;

impl Model for Bookings {
    const NAME: ReadModel = NAME;
    type Rows = Rows;

    fn apply(rows: &mut Rows, fact: &Fact) -> Result<(), Poison> {
        let DecodedEvent::Booking(event) = &fact.event else {
            return Ok(());
        };
        let key = BookingKey {
            booking_id: uuid_id("booking", fact)?,
        };
        let mut set_status = |to: BookingStatus, reason: Option<&str>| {
            rows.bookings.update(&key, |b| {
                b.status = status(to);
                if let Some(reason) = reason {
                    b.failure_reason = Some(reason.to_owned());
                }
            });
        };
        match event {
            BookingEvent::BookingPlaced {
                user_id,
                show_id,
                seats,
                general_admission,
                total,
                terms,
                hold_expires_at,
                placed_at,
                ..
            } => {
                rows.bookings.put_if_absent(BookingRow {
                    booking_id: key.booking_id,
                    user_id: *user_id,
                    event_id: *show_id,
                    status: status(BookingStatus::Held),
                    seats: json(seats),
                    general_admission: json(general_admission),
                    total: json(total),
                    discount: terms.discount.as_ref().map(json),
                    offer: terms.offer,
                    hold_expires_at: (*hold_expires_at).into(),
                    failure_reason: None,
                    placed_at: (*placed_at).into(),
                });
            }
            BookingEvent::PaymentRequested { .. } => {
                set_status(BookingStatus::PaymentPending, None);
            }
            BookingEvent::BookingConfirmed { tickets, .. } => {
                set_status(BookingStatus::Confirmed, None);
                // Every ticket is looked up before the booking is consulted, so a live
                // batch learns in one pass which rows to load.
                let issued: Vec<_> = tickets
                    .iter()
                    .filter(|t| {
                        let key = TicketKey {
                            ticket_id: t.ticket_id,
                        };
                        rows.tickets.get(&key).is_none()
                    })
                    .collect();
                let Some((user_id, event_id)) =
                    rows.bookings.get(&key).map(|b| (b.user_id, b.event_id))
                else {
                    return Ok(());
                };
                for ticket in issued {
                    rows.tickets.put_if_absent(TicketRow {
                        ticket_id: ticket.ticket_id,
                        booking_id: key.booking_id,
                        user_id,
                        event_id,
                        idx: i16::from(ticket.index),
                        seat_id: ticket.seat_id.clone(),
                        section_id: ticket.section_id.clone(),
                        status: "valid".into(),
                        checked_in_at: None,
                    });
                }
            }
            BookingEvent::BookingCancelled { detail, .. } => {
                set_status(BookingStatus::Cancelled, Some(detail.as_str()));
            }
            BookingEvent::BookingExpired { .. } => {
                set_status(
                    BookingStatus::Expired,
                    Some("the hold expired before payment"),
                );
            }
            BookingEvent::RefundRequested { .. } => {
                set_status(BookingStatus::RefundPending, None);
            }
            BookingEvent::BookingRefunded { .. } => {
                set_status(BookingStatus::Refunded, None);
                for ticket in rows.tickets.group(&key) {
                    rows.tickets.update(&ticket, |t| t.status = "void".into());
                }
            }
            BookingEvent::TicketCheckedIn {
                ticket_id,
                checked_in_at,
            } => {
                let ticket = TicketKey {
                    ticket_id: *ticket_id,
                };
                rows.tickets.update(&ticket, |t| {
                    t.status = "checked_in".into();
                    t.checked_in_at = Some((*checked_in_at).into());
                });
            }
            BookingEvent::TicketTransferred {
                ticket_id,
                new_ticket,
                to_user_id,
                ..
            } => {
                let old = TicketKey {
                    ticket_id: *ticket_id,
                };
                let new = TicketKey {
                    ticket_id: new_ticket.ticket_id,
                };
                // Both tickets are looked up before the booking, as for a confirmation.
                rows.tickets.update(&old, |t| t.status = "void".into());
                let issued = rows.tickets.get(&new).is_none();
                let Some(event_id) = rows.bookings.get(&key).map(|b| b.event_id) else {
                    return Ok(());
                };
                if issued {
                    // The recipient holds the new ticket: it is listed under their id.
                    rows.tickets.put_if_absent(TicketRow {
                        ticket_id: new_ticket.ticket_id,
                        booking_id: key.booking_id,
                        user_id: *to_user_id,
                        event_id,
                        idx: i16::from(new_ticket.index),
                        seat_id: new_ticket.seat_id.clone(),
                        section_id: new_ticket.section_id.clone(),
                        status: "valid".into(),
                        checked_in_at: None,
                    });
                }
            }
        }
        Ok(())
    }
}

#[derive(sqlx::FromRow)]
struct Projected {
    booking_id: Uuid,
    event_id: Uuid,
    status: String,
    seats: Json<Vec<String>>,
    general_admission: Json<Vec<GeneralAdmission>>,
    total: Json<Money>,
    discount: Option<Json<Money>>,
    offer: bool,
    hold_expires_at: DateTime<Utc>,
    failure_reason: Option<String>,
    tickets: Vec<Uuid>,
}

impl From<Projected> for BookingView {
    fn from(row: Projected) -> Self {
        BookingView {
            booking_id: row.booking_id,
            event_id: row.event_id,
            status: serde_json::from_value(Value::String(row.status))
                .unwrap_or(BookingStatus::Held),
            seats: row.seats.0,
            general_admission: row.general_admission.0,
            discount: row
                .discount
                .map_or_else(|| Money::new(0, &row.total.0.currency), |d| d.0),
            total: row.total.0,
            offer: row.offer,
            hold_expires_at: row.hold_expires_at,
            tickets: row.tickets,
            failure_reason: row.failure_reason,
        }
    }
}

const SELECT: &str = "SELECT b.booking_id, b.event_id, b.status, b.seats, b.general_admission,
        b.total, b.discount, b.offer, b.hold_expires_at, b.failure_reason,
        coalesce(array(SELECT t.ticket_id FROM ticket_view t WHERE t.booking_id = b.booking_id
                       AND t.user_id = b.user_id ORDER BY t.idx), '{}') AS tickets
   FROM booking_view b";

/// `user_id`'s booking `booking_id`, if projected.
pub async fn booking(
    pool: &PgPool,
    booking_id: Uuid,
    user_id: Uuid,
) -> Result<Option<BookingView>, sqlx::Error> {
    let row: Option<Projected> = sqlx::query_as(&format!(
        "{SELECT} WHERE b.booking_id = $1 AND b.user_id = $2"
    ))
    .bind(booking_id)
    .bind(user_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(BookingView::from))
}

/// `user_id`'s bookings, newest first.
pub async fn of_user(
    pool: &PgPool,
    user_id: Uuid,
    limit: i64,
    offset: i64,
) -> Result<Vec<BookingView>, sqlx::Error> {
    let rows: Vec<Projected> = sqlx::query_as(&format!(
        "{SELECT} WHERE b.user_id = $1 ORDER BY b.placed_at DESC, b.booking_id LIMIT $2 OFFSET $3"
    ))
    .bind(user_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(BookingView::from).collect())
}

/// A ticket as listed to its holder (who signs its code at the edge).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Ticket {
    pub ticket_id: Uuid,
    pub booking_id: Uuid,
    pub event_id: Uuid,
    pub idx: i16,
    pub seat_id: Option<String>,
    pub section_id: String,
    status: String,
}

impl Ticket {
    pub fn status(&self) -> TicketStatus {
        serde_json::from_value(Value::String(self.status.clone())).unwrap_or(TicketStatus::Valid)
    }
}

/// The booking and event of ticket `ticket_id`, if projected (facts that never change).
pub async fn ticket_booking(
    pool: &PgPool,
    ticket_id: Uuid,
) -> Result<Option<(Uuid, Uuid)>, sqlx::Error> {
    sqlx::query_as("SELECT booking_id, event_id FROM ticket_view WHERE ticket_id = $1")
        .bind(ticket_id)
        .fetch_optional(pool)
        .await
}

/// Ticket `ticket_id` if `user_id` holds it.
pub async fn held_ticket(
    pool: &PgPool,
    ticket_id: Uuid,
    user_id: Uuid,
) -> Result<Option<Ticket>, sqlx::Error> {
    sqlx::query_as(
        "SELECT ticket_id, booking_id, event_id, idx, seat_id, section_id, status
           FROM ticket_view WHERE ticket_id = $1 AND user_id = $2",
    )
    .bind(ticket_id)
    .bind(user_id)
    .fetch_optional(pool)
    .await
}

/// `user_id`'s tickets (at most 1,000).
pub async fn tickets(pool: &PgPool, user_id: Uuid) -> Result<Vec<Ticket>, sqlx::Error> {
    sqlx::query_as(
        "SELECT ticket_id, booking_id, event_id, idx, seat_id, section_id, status
           FROM ticket_view WHERE user_id = $1 ORDER BY booking_id, idx LIMIT 1000",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await
}
