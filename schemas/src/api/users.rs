//! Auth and users bodies.

use chrono::{DateTime, Utc};
use domain::user::{Address, Role};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub email: String,
    pub password: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct RegisterResponse {
    pub user_id: Uuid,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
    /// Opaque, single use, valid 30 days: `POST /api/auth/refresh` trades it for a new access
    /// token and a new refresh token.
    pub refresh_token: String,
    pub session_id: Uuid,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// One of the caller's signed-in sessions (a login and the refresh tokens rotated from it).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct SessionView {
    pub session_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    /// The `User-Agent` of the login or the latest refresh (at most 256 characters).
    pub user_agent: String,
    /// Whether the request's own access token belongs to it.
    pub current: bool,
}

/// Roles an admin can grant (everyone is a customer already).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantableRole {
    Organizer,
    Staff,
    Admin,
}

impl From<GrantableRole> for Role {
    fn from(role: GrantableRole) -> Self {
        match role {
            GrantableRole::Organizer => Role::Organizer,
            GrantableRole::Staff => Role::Staff,
            GrantableRole::Admin => Role::Admin,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRoleRequest {
    pub role: GrantableRole,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct RolesResponse {
    pub user_id: Uuid,
    pub roles: Vec<Role>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct Profile {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub phone: Option<String>,
    pub roles: Vec<Role>,
    pub created_at: DateTime<Utc>,
}

/// Omitted fields stay as they are; `"phone": null` removes the phone.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProfileRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<String>")]
    pub phone: Option<Option<String>>,
}

/// Tells an explicit `null` (Some(None)) from an absent field (None, via `default`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// An address as clients send it (create and replace).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressRequest {
    pub label: String,
    pub line1: String,
    #[serde(default)]
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code, e.g. `DE`.
    pub country: String,
}

impl From<AddressRequest> for Address {
    fn from(a: AddressRequest) -> Self {
        Address {
            label: a.label,
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            postal_code: a.postal_code,
            country: a.country,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema, sqlx::FromRow)]
pub struct AddressResponse {
    pub address_id: Uuid,
    pub label: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    pub country: String,
}

impl AddressResponse {
    pub fn new(address_id: Uuid, a: Address) -> Self {
        Self {
            address_id,
            label: a.label,
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            postal_code: a.postal_code,
            country: a.country,
        }
    }
}
