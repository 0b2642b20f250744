//! Verification of the access tokens command-api issues (HS256 pinned; `exp`, `iss`, `aud`,
//! `sub` required), for every process that accepts them (the notifier's WebSocket).

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: Uuid,
    #[serde(default)]
    pub roles: Vec<String>,
    pub exp: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is invalid")]
    Invalid,
}

pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

/// The one rule every process checks access tokens by (command-api, which also issues them,
/// and the notifier): pinning HS256 is what refuses `alg: none` and algorithm-confusion
/// tokens; `exp`, `iss`, `aud` and `sub` are required; 5 s of clock leeway.
pub fn validation(issuer: &str, audience: &str) -> Validation {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 5;
    validation
}

impl TokenVerifier {
    pub fn new(secret: &[u8], issuer: &str, audience: &str) -> Self {
        Self {
            key: DecodingKey::from_secret(secret),
            validation: validation(issuer, audience),
        }
    }

    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        jsonwebtoken::decode::<AccessClaims>(token, &self.key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })
    }
}
