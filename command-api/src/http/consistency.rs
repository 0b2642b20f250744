//! Read-your-writes for clients: commands answer `X-Event-Position`, queries honour
//! `X-Min-Position` by waiting (at most 5 s) for the read models they read, then answer
//! `X-Consistency: stale` if the wait ran out.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, IntoResponseParts, Response, ResponseParts};
use plumbing::position::{self, Position, ReadModel};
use sqlx::PgPool;

use super::error::ApiError;

pub const EVENT_POSITION: HeaderName = HeaderName::from_static("x-event-position");
pub const MIN_POSITION: HeaderName = HeaderName::from_static("x-min-position");
pub const CONSISTENCY: HeaderName = HeaderName::from_static("x-consistency");
pub const MAX_WAIT: Duration = Duration::from_secs(5);

/// The `X-Min-Position` a query asked for (empty when absent); malformed → 400.
#[derive(Debug, Clone, Default)]
pub struct MinPosition(pub Position);

impl<S: Send + Sync> FromRequestParts<S> for MinPosition {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(&MIN_POSITION) else {
            return Ok(Self::default());
        };
        let token = value
            .to_str()
            .map_err(|_| ApiError::BadRequest("X-Min-Position is not a position token".into()))?;
        Position::decode(token)
            .map(Self)
            .map_err(|_| ApiError::BadRequest("X-Min-Position is not a position token".into()))
    }
}

impl MinPosition {
    /// Waits for `models`; returns the freshness to put on the response.
    pub async fn wait(&self, pool: &PgPool, models: &[ReadModel]) -> Result<Freshness, ApiError> {
        if self.0.is_empty() {
            return Ok(Freshness::Fresh);
        }
        let caught_up = position::wait_applied(pool, models, &self.0, MAX_WAIT).await?;
        Ok(if caught_up {
            Freshness::Fresh
        } else {
            Freshness::Stale
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    Fresh,
    Stale,
}

impl IntoResponseParts for Freshness {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        if self == Freshness::Stale {
            res.headers_mut()
                .insert(CONSISTENCY, HeaderValue::from_static("stale"));
        }
        Ok(res)
    }
}

/// Puts `X-Event-Position` on a command's response.
pub struct Written(pub Position);

impl IntoResponseParts for Written {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        if let Ok(value) = HeaderValue::from_str(&self.0.encode()) {
            res.headers_mut().insert(EVENT_POSITION, value);
        }
        Ok(res)
    }
}

impl IntoResponse for Written {
    fn into_response(self) -> Response {
        (self, ()).into_response()
    }
}
