//! `user_profile_view` and `user_address_view`: the profile and addresses of each user.

use async_trait::async_trait;
use domain::user::UserEvent;
use plumbing::consumer::HandleError;
use plumbing::projection::Projection;
use schemas::read_models::USER_PROFILES;
use schemas::{DecodedEvent, Envelope};
use sqlx::PgConnection;

pub struct UserProfiles;

#[async_trait]
impl Projection for UserProfiles {
    fn name(&self) -> &'static str {
        USER_PROFILES.consumer
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        envelope: &Envelope,
        event: DecodedEvent,
    ) -> Result<(), HandleError> {
        let DecodedEvent::User(event) = event else {
            return Ok(());
        };
        let user_id = parse_user_id(envelope)?;
        match event {
            UserEvent::UserRegistered {
                email,
                name,
                registered_at,
                ..
            } => {
                sqlx::query(
                    "INSERT INTO user_profile_view (user_id, email, name, phone, roles, created_at)
                     VALUES ($1, $2, $3, NULL, ARRAY['customer'], $4)
                     ON CONFLICT (user_id) DO NOTHING",
                )
                .bind(user_id)
                .bind(email)
                .bind(name)
                .bind(registered_at)
                .execute(&mut *tx)
                .await?;
            }
            UserEvent::RoleGranted { role } => {
                sqlx::query(
                    "UPDATE user_profile_view
                        SET roles = array_append(roles, $2)
                      WHERE user_id = $1 AND NOT ($2 = ANY(roles))",
                )
                .bind(user_id)
                .bind(role.as_str())
                .execute(&mut *tx)
                .await?;
            }
            UserEvent::ProfileUpdated { name, phone } => {
                sqlx::query(
                    "UPDATE user_profile_view SET name = $2, phone = $3 WHERE user_id = $1",
                )
                .bind(user_id)
                .bind(name)
                .bind(phone)
                .execute(&mut *tx)
                .await?;
            }
            UserEvent::AddressAdded {
                address_id,
                address,
            } => {
                sqlx::query(
                    "INSERT INTO user_address_view
                        (address_id, user_id, label, line1, line2, city, postal_code, country, added_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     ON CONFLICT (address_id) DO NOTHING",
                )
                .bind(address_id)
                .bind(user_id)
                .bind(address.label)
                .bind(address.line1)
                .bind(address.line2)
                .bind(address.city)
                .bind(address.postal_code)
                .bind(address.country)
                .bind(envelope.sequence as i64)
                .execute(&mut *tx)
                .await?;
            }
            UserEvent::AddressUpdated {
                address_id,
                address,
            } => {
                sqlx::query(
                    "UPDATE user_address_view
                        SET label = $3, line1 = $4, line2 = $5, city = $6, postal_code = $7,
                            country = $8
                      WHERE address_id = $1 AND user_id = $2",
                )
                .bind(address_id)
                .bind(user_id)
                .bind(address.label)
                .bind(address.line1)
                .bind(address.line2)
                .bind(address.city)
                .bind(address.postal_code)
                .bind(address.country)
                .execute(&mut *tx)
                .await?;
            }
            UserEvent::AddressRemoved { address_id } => {
                sqlx::query("DELETE FROM user_address_view WHERE address_id = $1 AND user_id = $2")
                    .bind(address_id)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        Ok(())
    }
}

fn parse_user_id(envelope: &Envelope) -> Result<uuid::Uuid, HandleError> {
    envelope.aggregate_id.parse().map_err(|e: uuid::Error| {
        HandleError::Poison(anyhow::Error::new(e).context("user aggregate id is not a UUID"))
    })
}
