//! Seat availability: `section_view` (layout, capacity, general-admission sales),
//! `seat_hold_view` (held and sold seats) and `ga_hold_view` (general-admission holds),
//! from the `Show` and `SectionInventory` streams. Applied incrementally; expiry is judged at
//! read time (a hold past `expires_at` counts as available), as the inventory itself does.

use async_trait::async_trait;
use domain::inventory::InventoryEvent;
use domain::show::{Section, ShowEvent};
use plumbing::consumer::HandleError;
use plumbing::projection::Projection;
use schemas::read_models::AVAILABILITY;
use schemas::{DecodedEvent, Envelope};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::ids::{inventory_id, show_id};

pub struct Availability;

#[async_trait]
impl Projection for Availability {
    fn name(&self) -> &'static str {
        AVAILABILITY.consumer
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        envelope: &Envelope,
        event: DecodedEvent,
    ) -> Result<(), HandleError> {
        match event {
            DecodedEvent::Show(ShowEvent::LayoutSet { sections }) => {
                set_layout(tx, show_id(envelope)?, &sections).await
            }
            DecodedEvent::Inventory(event) => {
                let (event_id, section_id) = inventory_id(envelope)?;
                apply_inventory(tx, event_id, &section_id, event).await
            }
            _ => Ok(()),
        }
    }
}

/// Replaces the sections of a (draft) show, keeping counters of sections that stay.
async fn set_layout(
    tx: &mut PgConnection,
    event_id: Uuid,
    sections: &[Section],
) -> Result<(), HandleError> {
    let ids: Vec<String> = sections.iter().map(|s| s.section_id().to_owned()).collect();
    sqlx::query("DELETE FROM section_view WHERE event_id = $1 AND NOT (section_id = ANY($2))")
        .bind(event_id)
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    for (position, section) in sections.iter().enumerate() {
        let kind = if section.is_seated() {
            "seated"
        } else {
            "general_admission"
        };
        sqlx::query(
            "INSERT INTO section_view (event_id, section_id, position, kind, capacity, layout)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (event_id, section_id) DO UPDATE
                SET position = EXCLUDED.position, kind = EXCLUDED.kind,
                    capacity = EXCLUDED.capacity, layout = EXCLUDED.layout",
        )
        .bind(event_id)
        .bind(section.section_id())
        .bind(position as i32)
        .bind(kind)
        .bind(section.capacity() as i32)
        .bind(Json(section))
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

async fn apply_inventory(
    tx: &mut PgConnection,
    event_id: Uuid,
    section_id: &str,
    event: InventoryEvent,
) -> Result<(), HandleError> {
    match event {
        InventoryEvent::SectionOpened { .. } => {}
        InventoryEvent::SeatsHeld {
            booking_id,
            seats,
            quantity,
            expires_at,
        } => {
            if seats.is_empty() {
                sqlx::query(
                    "INSERT INTO ga_hold_view (event_id, section_id, booking_id, quantity, expires_at)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (event_id, section_id, booking_id) DO UPDATE
                        SET quantity = EXCLUDED.quantity, expires_at = EXCLUDED.expires_at",
                )
                .bind(event_id)
                .bind(section_id)
                .bind(booking_id)
                .bind(quantity as i32)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
            } else {
                // The inventory only holds free (or expired) seats, so any row a held seat
                // still has is a superseded hold.
                sqlx::query(
                    "INSERT INTO seat_hold_view (event_id, section_id, seat_id, status, booking_id, expires_at)
                     SELECT $1, $2, seat, 'held', $3, $5 FROM unnest($4::text[]) AS seat
                     ON CONFLICT (event_id, seat_id) DO UPDATE
                        SET status = 'held', booking_id = EXCLUDED.booking_id,
                            expires_at = EXCLUDED.expires_at",
                )
                .bind(event_id)
                .bind(section_id)
                .bind(booking_id)
                .bind(&seats)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
            }
        }
        InventoryEvent::HoldExpired {
            booking_id, seats, ..
        }
        | InventoryEvent::HoldReleased {
            booking_id, seats, ..
        } => {
            release(tx, event_id, section_id, booking_id, &seats).await?;
        }
        InventoryEvent::HoldExtended {
            booking_id,
            expires_at,
        } => {
            sqlx::query(
                "UPDATE seat_hold_view SET expires_at = $3
                  WHERE event_id = $1 AND booking_id = $2 AND status = 'held'",
            )
            .bind(event_id)
            .bind(booking_id)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE ga_hold_view SET expires_at = $4
                  WHERE event_id = $1 AND section_id = $2 AND booking_id = $3",
            )
            .bind(event_id)
            .bind(section_id)
            .bind(booking_id)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
        }
        InventoryEvent::SaleReturned {
            booking_id,
            seats,
            quantity,
        } => {
            if seats.is_empty() {
                sqlx::query(
                    "UPDATE section_view SET sold_places = greatest(sold_places - $3, 0)
                      WHERE event_id = $1 AND section_id = $2",
                )
                .bind(event_id)
                .bind(section_id)
                .bind(quantity as i32)
                .execute(&mut *tx)
                .await?;
            } else {
                sqlx::query(
                    "DELETE FROM seat_hold_view
                      WHERE event_id = $1 AND seat_id = ANY($2) AND booking_id = $3 AND status = 'sold'",
                )
                .bind(event_id)
                .bind(&seats)
                .bind(booking_id)
                .execute(&mut *tx)
                .await?;
            }
        }
        InventoryEvent::HoldSold {
            booking_id,
            seats,
            quantity,
        } => {
            if seats.is_empty() {
                sqlx::query(
                    "DELETE FROM ga_hold_view WHERE event_id = $1 AND section_id = $2 AND booking_id = $3",
                )
                .bind(event_id)
                .bind(section_id)
                .bind(booking_id)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO section_view (event_id, section_id, sold_places) VALUES ($1, $2, $3)
                     ON CONFLICT (event_id, section_id) DO UPDATE
                        SET sold_places = section_view.sold_places + EXCLUDED.sold_places",
                )
                .bind(event_id)
                .bind(section_id)
                .bind(quantity as i32)
                .execute(&mut *tx)
                .await?;
            } else {
                sqlx::query(
                    "INSERT INTO seat_hold_view (event_id, section_id, seat_id, status, booking_id, expires_at)
                     SELECT $1, $2, seat, 'sold', $3, NULL FROM unnest($4::text[]) AS seat
                     ON CONFLICT (event_id, seat_id) DO UPDATE
                        SET status = 'sold', booking_id = EXCLUDED.booking_id, expires_at = NULL",
                )
                .bind(event_id)
                .bind(section_id)
                .bind(booking_id)
                .bind(&seats)
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    Ok(())
}

/// Frees what `booking_id` held (and only that: a seat may already be held by a newer booking).
async fn release(
    tx: &mut PgConnection,
    event_id: Uuid,
    section_id: &str,
    booking_id: Uuid,
    seats: &[String],
) -> Result<(), HandleError> {
    if seats.is_empty() {
        sqlx::query(
            "DELETE FROM ga_hold_view WHERE event_id = $1 AND section_id = $2 AND booking_id = $3",
        )
        .bind(event_id)
        .bind(section_id)
        .bind(booking_id)
        .execute(&mut *tx)
        .await?;
    } else {
        sqlx::query(
            "DELETE FROM seat_hold_view
              WHERE event_id = $1 AND seat_id = ANY($2) AND booking_id = $3 AND status = 'held'",
        )
        .bind(event_id)
        .bind(seats)
        .bind(booking_id)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}
