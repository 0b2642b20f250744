//! `user-profiles`: each user's profile (`user_profile_view`) and addresses
//! (`user_address_view`), from the `User` stream. Tables: `migrations/0004_user_read_models.sql`.

use domain::user::{Role, UserEvent};
use plumbing::position::ReadModel;
use schemas::DecodedEvent;
use schemas::api::users::{AddressResponse, Profile};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use super::ids::uuid_id;
use crate::fold::{Fact, Model, NoGroup, Poison, Row, Ts};

pub const NAME: ReadModel = ReadModel {
    consumer: "user-profiles",
    aggregate_types: &["user"],
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileRow {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub phone: Option<String>,
    pub roles: Vec<String>,
    pub created_at: Ts,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UserKey {
    pub user_id: Uuid,
}

impl Row for ProfileRow {
    const TABLE: &'static str = "user_profile_view";
    type Key = UserKey;
    type Group = NoGroup;
    fn key(&self) -> UserKey {
        UserKey {
            user_id: self.user_id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddressRow {
    pub address_id: Uuid,
    pub user_id: Uuid,
    pub label: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    pub country: String,
    /// The sequence of the `AddressAdded` event: addresses list in the order they were added.
    pub added_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AddressKey {
    pub address_id: Uuid,
}

impl Row for AddressRow {
    const TABLE: &'static str = "user_address_view";
    type Key = AddressKey;
    type Group = NoGroup;
    fn key(&self) -> AddressKey {
        AddressKey {
            address_id: self.address_id,
        }
    }
}

crate::rows! {
    pub struct Rows { profiles: ProfileRow, addresses: AddressRow }
}

pub struct UserProfiles;

impl Model for UserProfiles {
    const NAME: ReadModel = NAME;
    type Rows = Rows;

    fn apply(rows: &mut Rows, fact: &Fact) -> Result<(), Poison> {
        let DecodedEvent::User(event) = &fact.event else {
            return Ok(());
        };
        let user_id = uuid_id("user", fact)?;
        let user = UserKey { user_id };
        match event {
            UserEvent::UserRegistered {
                email,
                name,
                registered_at,
                ..
            } => {
                rows.profiles.put_if_absent(ProfileRow {
                    user_id,
                    email: email.clone(),
                    name: name.clone(),
                    phone: None,
                    roles: vec![Role::Customer.as_str().to_owned()],
                    created_at: (*registered_at).into(),
                });
            }
            UserEvent::RoleGranted { role } => {
                rows.profiles.update(&user, |p| {
                    if !p.roles.iter().any(|r| r == role.as_str()) {
                        p.roles.push(role.as_str().to_owned());
                    }
                });
            }
            UserEvent::ProfileUpdated { name, phone } => {
                rows.profiles.update(&user, |p| {
                    p.name = name.clone();
                    p.phone = phone.clone();
                });
            }
            UserEvent::AddressAdded {
                address_id,
                address,
            } => {
                rows.addresses.put_if_absent(AddressRow {
                    address_id: *address_id,
                    user_id,
                    label: address.label.clone(),
                    line1: address.line1.clone(),
                    line2: address.line2.clone(),
                    city: address.city.clone(),
                    postal_code: address.postal_code.clone(),
                    country: address.country.clone(),
                    added_at: fact.sequence,
                });
            }
            UserEvent::AddressUpdated {
                address_id,
                address,
            } => {
                let key = AddressKey {
                    address_id: *address_id,
                };
                // Only the user's own address: an id is not a capability.
                if rows
                    .addresses
                    .get(&key)
                    .is_some_and(|a| a.user_id == user_id)
                {
                    rows.addresses.update(&key, |a| {
                        a.label = address.label.clone();
                        a.line1 = address.line1.clone();
                        a.line2 = address.line2.clone();
                        a.city = address.city.clone();
                        a.postal_code = address.postal_code.clone();
                        a.country = address.country.clone();
                    });
                }
            }
            UserEvent::AddressRemoved { address_id } => {
                let key = AddressKey {
                    address_id: *address_id,
                };
                if rows
                    .addresses
                    .get(&key)
                    .is_some_and(|a| a.user_id == user_id)
                {
                    rows.addresses.remove(&key);
                }
            }
        }
        Ok(())
    }
}

#[derive(sqlx::FromRow)]
struct Projected {
    user_id: Uuid,
    email: String,
    name: String,
    phone: Option<String>,
    roles: Vec<String>,
    created_at: chrono::DateTime<chrono::Utc>,
}

/// The profile of `user_id`, if projected.
pub async fn profile(pool: &PgPool, user_id: Uuid) -> Result<Option<Profile>, sqlx::Error> {
    let row: Option<Projected> = sqlx::query_as(
        "SELECT user_id, email, name, phone, roles, created_at
           FROM user_profile_view WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|row| Profile {
        user_id: row.user_id,
        email: row.email,
        name: row.name,
        phone: row.phone,
        roles: row.roles.iter().filter_map(|r| parse_role(r)).collect(),
        created_at: row.created_at,
    }))
}

fn parse_role(role: &str) -> Option<Role> {
    serde_json::from_value(serde_json::Value::String(role.to_owned())).ok()
}

/// The addresses of `user_id`, in the order they were added.
pub async fn addresses(pool: &PgPool, user_id: Uuid) -> Result<Vec<AddressResponse>, sqlx::Error> {
    sqlx::query_as(
        "SELECT address_id, label, line1, line2, city, postal_code, country
           FROM user_address_view WHERE user_id = $1 ORDER BY added_at, address_id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await
}
