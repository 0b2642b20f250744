//! Events of the `User` aggregate: facts, in the past tense, stored forever at their version.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Organizer,
    Staff,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Organizer => "organizer",
            Role::Staff => "staff",
            Role::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Address {
    pub label: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
/// Stored (and published) externally tagged: `{"UserRegistered": {...}}` in the events table,
/// and the inner object as the envelope payload beside its `event_type`.
pub enum UserEvent {
    UserRegistered {
        user_id: Uuid,
        email: String,
        name: String,
        /// Never leaves the write side: the relay strips it before publishing, so on the
        /// wire it is absent and decodes as empty.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        password_hash: String,
        registered_at: DateTime<Utc>,
    },
    RoleGranted {
        role: Role,
    },
    ProfileUpdated {
        name: String,
        phone: Option<String>,
    },
    AddressAdded {
        address_id: Uuid,
        address: Address,
    },
    AddressUpdated {
        address_id: Uuid,
        address: Address,
    },
    AddressRemoved {
        address_id: Uuid,
    },
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> String {
        match self {
            UserEvent::UserRegistered { .. } => "UserRegistered",
            UserEvent::RoleGranted { .. } => "RoleGranted",
            UserEvent::ProfileUpdated { .. } => "ProfileUpdated",
            UserEvent::AddressAdded { .. } => "AddressAdded",
            UserEvent::AddressUpdated { .. } => "AddressUpdated",
            UserEvent::AddressRemoved { .. } => "AddressRemoved",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}
