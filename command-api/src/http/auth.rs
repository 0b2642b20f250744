//! Access tokens: HS256 JWTs issued here and checked by the rule every process shares
//! (`plumbing::jwt::validation`: algorithm pinned, `exp`, `iss`, `aud`, `sub` required), and
//! the `Caller` extractor that every authenticated endpoint takes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use domain::user::Role;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::ApiError;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub roles: Vec<Role>,
    pub iss: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
    /// The session (refresh-token family) the token was issued in; absent in tokens minted
    /// outside a login (tests, tools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
}

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl JwtKeys {
    pub fn new(secret: &[u8], issuer: &str, audience: &str, ttl: Duration) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation: plumbing::jwt::validation(issuer, audience),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Issues a token for `user_id` carrying `roles` in `session_id`, valid from `now_unix`
    /// for the TTL.
    pub fn issue(
        &self,
        user_id: Uuid,
        roles: &BTreeSet<Role>,
        session_id: Uuid,
        now_unix: u64,
    ) -> Result<String, ApiError> {
        let claims = Claims {
            sub: user_id,
            roles: roles.iter().copied().collect(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now_unix,
            exp: now_unix + self.ttl.as_secs(),
            sid: Some(session_id),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ApiError::internal)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|err| {
                use jsonwebtoken::errors::ErrorKind;
                let why = match err.kind() {
                    ErrorKind::ExpiredSignature => "the access token has expired",
                    ErrorKind::InvalidAudience => "the access token is for another audience",
                    ErrorKind::InvalidIssuer => "the access token has an unknown issuer",
                    _ => "the access token is invalid",
                };
                ApiError::Unauthorized(why.into())
            })
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: Uuid,
    pub roles: BTreeSet<Role>,
    /// The session its token was issued in (see `Claims::sid`).
    pub session_id: Option<Uuid>,
}

impl Caller {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Organizers act on their own shows; admins on any.
    pub fn require_organizer(&self) -> Result<(), ApiError> {
        if self.has(Role::Organizer) || self.has(Role::Admin) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "this action needs the organizer role".into(),
            ))
        }
    }

    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.has(role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this action needs the {} role",
                role.as_str()
            )))
        }
    }
}

/// The bearer token of a request, if it has a well-formed `Authorization` header.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl<S> FromRequestParts<S> for Caller
where
    Arc<JwtKeys>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers)
            .ok_or_else(|| ApiError::Unauthorized("a bearer access token is required".into()))?;
        let claims = Arc::<JwtKeys>::from_ref(state).verify(token)?;
        Ok(Caller {
            user_id: claims.sub,
            roles: claims.roles.into_iter().collect(),
            session_id: claims.sid,
        })
    }
}
