//! Commands of the `User` aggregate. Inputs are already checked against `rules`; the
//! password arrives hashed and the time arrives from the caller.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Address, Role};

#[derive(Debug, Clone, PartialEq)]
pub enum UserCommand {
    Register {
        user_id: Uuid,
        /// Normalised (trimmed, lower-case).
        email: String,
        name: String,
        password_hash: String,
        now: DateTime<Utc>,
    },
    GrantRole {
        role: Role,
    },
    /// `None` keeps a field; `phone: Some(None)` clears the phone.
    UpdateProfile {
        name: Option<String>,
        phone: Option<Option<String>>,
    },
    AddAddress {
        address_id: Uuid,
        address: Address,
    },
    UpdateAddress {
        address_id: Uuid,
        address: Address,
    },
    RemoveAddress {
        address_id: Uuid,
    },
}
