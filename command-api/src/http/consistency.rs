//! Read-your-writes for clients: commands answer `X-Event-Position`, queries honour
//! `X-Min-Position` by waiting (at most 5 s) for the read models they read, then answer
//! `X-Consistency: stale` if the wait ran out. A token beyond the store's head is refused at
//! once, and anonymous requests share a small number of waits.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, IntoResponseParts, Response, ResponseParts};
use plumbing::position::{self, Position, ReadModel};
use sqlx::PgPool;
use tokio::sync::Semaphore;

use super::auth::{JwtKeys, bearer};
use super::error::ApiError;

pub const EVENT_POSITION: HeaderName = HeaderName::from_static("x-event-position");
pub const MIN_POSITION: HeaderName = HeaderName::from_static("x-min-position");
pub const CONSISTENCY: HeaderName = HeaderName::from_static("x-consistency");
pub const MAX_WAIT: Duration = Duration::from_secs(5);

/// Anonymous requests that may wait at once, over every route of this instance; beyond
/// them an anonymous request answers at once (`X-Consistency: stale` if behind). A signed-in
/// caller's wait is bounded by the per-user command limits that produced its positions.
pub const ANONYMOUS_WAITS: usize = 32;
static ANONYMOUS: Semaphore = Semaphore::const_new(ANONYMOUS_WAITS);
/// Gauge of the anonymous waits in progress, and counter of the anonymous requests that
/// found every slot taken and answered without waiting.
pub const ANONYMOUS_WAITS_METRIC: &str = "consistency_anonymous_waits";
pub const ANONYMOUS_WAITS_FULL_METRIC: &str = "consistency_anonymous_waits_full_total";

/// One anonymous slot, counted in the gauge while held.
struct AnonymousSlot {
    _permit: tokio::sync::SemaphorePermit<'static>,
}

impl AnonymousSlot {
    fn take() -> Option<Self> {
        let permit = ANONYMOUS.try_acquire().ok()?;
        metrics::gauge!(ANONYMOUS_WAITS_METRIC).increment(1.0);
        Some(Self { _permit: permit })
    }
}

impl Drop for AnonymousSlot {
    fn drop(&mut self) {
        metrics::gauge!(ANONYMOUS_WAITS_METRIC).decrement(1.0);
    }
}

/// The `X-Min-Position` a query asked for (empty when absent); malformed → 400.
#[derive(Debug, Clone, Default)]
pub struct MinPosition {
    pub position: Position,
    /// No valid access token came with the request.
    anonymous: bool,
}

impl<S> FromRequestParts<S> for MinPosition
where
    Arc<JwtKeys>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(&MIN_POSITION) else {
            return Ok(Self::default());
        };
        let token = value
            .to_str()
            .map_err(|_| ApiError::BadRequest("X-Min-Position is not a position token".into()))?;
        let position = Position::decode(token)
            .map_err(|_| ApiError::BadRequest("X-Min-Position is not a position token".into()))?;
        let anonymous = bearer(&parts.headers)
            .is_none_or(|token| Arc::<JwtKeys>::from_ref(state).verify(token).is_err());
        Ok(Self {
            position,
            anonymous,
        })
    }
}

impl MinPosition {
    /// Waits for `models`; returns the freshness to put on the response. A token naming
    /// events the store does not hold is refused at once (400) instead of waiting.
    pub async fn wait(&self, pool: &PgPool, models: &[ReadModel]) -> Result<Freshness, ApiError> {
        if self.position.is_empty() {
            return Ok(Freshness::Fresh);
        }
        if !position::held(pool, &self.position).await? {
            return Err(ApiError::BadRequest(
                "X-Min-Position names events the store does not hold".into(),
            ));
        }
        let _slot = if self.anonymous {
            match AnonymousSlot::take() {
                Some(slot) => Some(slot),
                // Too many anonymous waits already: one more lookup, no wait.
                None => {
                    metrics::counter!(ANONYMOUS_WAITS_FULL_METRIC).increment(1);
                    let caught_up =
                        position::wait_applied(pool, models, &self.position, Duration::ZERO)
                            .await?;
                    return Ok(Freshness::of(caught_up));
                }
            }
        } else {
            None
        };
        let caught_up = position::wait_applied(pool, models, &self.position, MAX_WAIT).await?;
        Ok(Freshness::of(caught_up))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    Fresh,
    Stale,
}

impl Freshness {
    fn of(caught_up: bool) -> Self {
        if caught_up {
            Freshness::Fresh
        } else {
            Freshness::Stale
        }
    }
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
