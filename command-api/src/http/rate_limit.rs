//! Rate limits of API.md, per instance: commands per user (token bucket) and failed logins
//! per (account, client address) (`lockout`). There is deliberately no per-IP limit on
//! anything else: many buyers share one address.

use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderName, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use super::auth::{JwtKeys, bearer};
use super::error::ApiError;
use super::lockout::LoginLockout;
use crate::settings::RateLimitSettings;

pub struct RateLimits {
    commands: DefaultKeyedRateLimiter<Uuid>,
    pub logins: LoginLockout,
    /// The header a trusted proxy puts the client's address in (`CLIENT_IP_HEADER`).
    pub client_ip_header: Option<HeaderName>,
}

fn non_zero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl RateLimits {
    pub fn new(settings: &RateLimitSettings) -> Self {
        let commands = Quota::per_second(non_zero(settings.commands_per_second))
            .allow_burst(non_zero(settings.commands_burst));
        Self {
            commands: RateLimiter::keyed(commands),
            logins: LoginLockout::new(settings.failed_logins_per_minute),
            client_ip_header: settings
                .client_ip_header
                .as_deref()
                .and_then(|name| HeaderName::try_from(name).ok()),
        }
    }

    fn check_command(&self, user_id: Uuid) -> Result<(), ApiError> {
        self.commands.check_key(&user_id).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::RateLimited {
                retry_after_secs: wait.as_secs_f64().ceil() as u64,
            }
        })
    }

    /// Forgets idle keys so memory stays bounded; run periodically.
    pub fn housekeeping(&self) {
        self.commands.retain_recent();
        self.logins.housekeeping();
    }
}

#[derive(Clone)]
pub struct CommandLimitState {
    pub limits: Arc<RateLimits>,
    pub jwt: Arc<JwtKeys>,
}

/// Middleware: state-changing requests of an authenticated user spend from that user's bucket.
/// Unauthenticated requests pass through (the handler answers 401, or they are register /
/// login, which have their own protection).
pub async fn limit_commands(
    State(state): State<CommandLimitState>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let (parts, body) = request.into_parts();
        let user = bearer(&parts.headers).and_then(|token| state.jwt.verify(token).ok());
        if let Some(claims) = user
            && let Err(err) = state.limits.check_command(claims.sub)
        {
            return err.into_response();
        }
        return next.run(Request::from_parts(parts, body)).await;
    }
    next.run(request).await
}
