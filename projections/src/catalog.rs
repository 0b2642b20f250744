//! `show_view`: the catalogue and event details, from the `Show` stream.

use async_trait::async_trait;
use domain::show::{ShowEvent, ShowStatus, Tier};
use plumbing::consumer::HandleError;
use plumbing::projection::Projection;
use schemas::read_models::CATALOG;
use schemas::{DecodedEvent, Envelope};
use sqlx::PgConnection;
use sqlx::types::Json;

use crate::ids::show_id;

pub struct Catalog;

fn status(s: ShowStatus) -> &'static str {
    match s {
        ShowStatus::Draft => "draft",
        ShowStatus::Published => "published",
        ShowStatus::Cancelled => "cancelled",
    }
}

#[async_trait]
impl Projection for Catalog {
    fn name(&self) -> &'static str {
        CATALOG.consumer
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        envelope: &Envelope,
        event: DecodedEvent,
    ) -> Result<(), HandleError> {
        let DecodedEvent::Show(event) = event else {
            return Ok(());
        };
        let event_id = show_id(envelope)?;
        match event {
            ShowEvent::ShowCreated {
                organizer_id,
                name,
                venue,
                description,
                starts_at,
                created_at,
                ..
            } => {
                sqlx::query(
                    "INSERT INTO show_view (event_id, organizer_id, name, venue, description,
                                            starts_at, status, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (event_id) DO NOTHING",
                )
                .bind(event_id)
                .bind(organizer_id)
                .bind(name)
                .bind(venue)
                .bind(description)
                .bind(starts_at)
                .bind(status(ShowStatus::Draft))
                .bind(created_at)
                .execute(&mut *tx)
                .await?;
            }
            ShowEvent::LayoutSet { sections } => {
                sqlx::query(
                    "UPDATE show_view SET sections = $2, tiers = '[]', min_price_minor = NULL,
                            currency = NULL
                      WHERE event_id = $1",
                )
                .bind(event_id)
                .bind(Json(sections))
                .execute(&mut *tx)
                .await?;
            }
            ShowEvent::PricingSet { tiers } => {
                let min = tiers.iter().min_by_key(|t: &&Tier| t.price.amount_minor);
                sqlx::query(
                    "UPDATE show_view SET tiers = $2, min_price_minor = $3, currency = $4
                      WHERE event_id = $1",
                )
                .bind(event_id)
                .bind(Json(&tiers))
                .bind(min.map(|t| t.price.amount_minor))
                .bind(min.map(|t| t.price.currency.clone()))
                .execute(&mut *tx)
                .await?;
            }
            ShowEvent::ShowPublished {
                sales_open_at,
                sales_close_at,
                queue,
                ..
            } => {
                sqlx::query(
                    "UPDATE show_view SET status = $2, sales_open_at = $3, sales_close_at = $4,
                            queue = $5
                      WHERE event_id = $1",
                )
                .bind(event_id)
                .bind(status(ShowStatus::Published))
                .bind(sales_open_at)
                .bind(sales_close_at)
                .bind(queue.map(Json))
                .execute(&mut *tx)
                .await?;
            }
            // Announcements are pushed live by the notifier; the catalogue keeps none.
            ShowEvent::AnnouncementPosted { .. } => {}
            ShowEvent::ShowCancelled { .. } => {
                sqlx::query("UPDATE show_view SET status = $2 WHERE event_id = $1")
                    .bind(event_id)
                    .bind(status(ShowStatus::Cancelled))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        Ok(())
    }
}
