//! The `User` aggregate: an account, its roles, profile and postal addresses.
//!
//! The aggregate id is derived from the normalised email (`user_id_for_email`), so two
//! registrations of one address land on the same stream and the event store's uniqueness
//! of (aggregate, sequence) decides which one wins — strongly consistent across instances,
//! without a lagging read model.

mod commands;
mod events;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use commands::UserCommand;
pub use events::{Address, Role, UserEvent};

/// Most addresses one account may keep; a guard against unbounded aggregates.
pub const MAX_ADDRESSES: usize = 50;

/// Namespace for the v5 UUIDs of user ids (a fixed random value; never change it).
const USER_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f0c_2a1e_8d4b_4f53_9a8e_2b7c_51d0_e3a4);

/// The one user id an email address can ever have.
pub fn user_id_for_email(normalized_email: &str) -> Uuid {
    Uuid::new_v5(&USER_ID_NAMESPACE, normalized_email.as_bytes())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("no such user")]
    UnknownUser,
    #[error("no such address")]
    UnknownAddress,
    #[error("an address with this id already exists")]
    DuplicateAddress,
    #[error("at most {MAX_ADDRESSES} addresses per account")]
    TooManyAddresses,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub user_id: Option<Uuid>,
    pub email: String,
    pub name: String,
    pub phone: Option<String>,
    /// Argon2id PHC string; verified by command-api on login.
    pub password_hash: String,
    pub roles: BTreeSet<Role>,
    pub addresses: BTreeMap<Uuid, Address>,
    pub created_at: Option<DateTime<Utc>>,
}

impl User {
    pub fn is_registered(&self) -> bool {
        self.user_id.is_some()
    }

    fn require_registered(&self) -> Result<(), UserError> {
        if self.is_registered() {
            Ok(())
        } else {
            Err(UserError::UnknownUser)
        }
    }
}

impl Aggregate for User {
    const TYPE: &'static str = "user";
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;
    type Services = ();

    async fn handle(
        &mut self,
        command: UserCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), UserError> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: UserEvent) {
        match event {
            UserEvent::UserRegistered {
                user_id,
                email,
                name,
                password_hash,
                registered_at,
            } => {
                self.user_id = Some(user_id);
                self.email = email;
                self.name = name;
                self.password_hash = password_hash;
                self.roles.insert(Role::Customer);
                self.created_at = Some(registered_at);
            }
            UserEvent::RoleGranted { role } => {
                self.roles.insert(role);
            }
            UserEvent::ProfileUpdated { name, phone } => {
                self.name = name;
                self.phone = phone;
            }
            UserEvent::AddressAdded {
                address_id,
                address,
            }
            | UserEvent::AddressUpdated {
                address_id,
                address,
            } => {
                self.addresses.insert(address_id, address);
            }
            UserEvent::AddressRemoved { address_id } => {
                self.addresses.remove(&address_id);
            }
        }
    }
}

impl User {
    /// The pure decision: which events a command produces in the current state.
    fn decide(&self, command: UserCommand) -> Result<Vec<UserEvent>, UserError> {
        match command {
            UserCommand::Register {
                user_id,
                email,
                name,
                password_hash,
                now,
            } => {
                if self.is_registered() {
                    return Err(UserError::EmailTaken);
                }
                Ok(vec![UserEvent::UserRegistered {
                    user_id,
                    email,
                    name,
                    password_hash,
                    registered_at: now,
                }])
            }
            UserCommand::GrantRole { role } => {
                self.require_registered()?;
                // Granting a role the user already has is a no-op, so bootstrapping and
                // retried grants are idempotent.
                if self.roles.contains(&role) {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::RoleGranted { role }])
            }
            UserCommand::UpdateProfile { name, phone } => {
                self.require_registered()?;
                let name = name.unwrap_or_else(|| self.name.clone());
                let phone = match phone {
                    Some(p) => p,
                    None => self.phone.clone(),
                };
                if name == self.name && phone == self.phone {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::ProfileUpdated { name, phone }])
            }
            UserCommand::AddAddress {
                address_id,
                address,
            } => {
                self.require_registered()?;
                if self.addresses.contains_key(&address_id) {
                    return Err(UserError::DuplicateAddress);
                }
                if self.addresses.len() >= MAX_ADDRESSES {
                    return Err(UserError::TooManyAddresses);
                }
                Ok(vec![UserEvent::AddressAdded {
                    address_id,
                    address,
                }])
            }
            UserCommand::UpdateAddress {
                address_id,
                address,
            } => {
                self.require_registered()?;
                match self.addresses.get(&address_id) {
                    None => Err(UserError::UnknownAddress),
                    Some(current) if *current == address => Ok(vec![]),
                    Some(_) => Ok(vec![UserEvent::AddressUpdated {
                        address_id,
                        address,
                    }]),
                }
            }
            UserCommand::RemoveAddress { address_id } => {
                self.require_registered()?;
                if !self.addresses.contains_key(&address_id) {
                    return Err(UserError::UnknownAddress);
                }
                Ok(vec![UserEvent::AddressRemoved { address_id }])
            }
        }
    }
}
