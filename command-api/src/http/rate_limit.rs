//! Rate limits of API.md, per instance: commands per user (token bucket) and failed logins
//! per account. There is deliberately no per-IP limit: many buyers share one address.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use super::auth::{JwtKeys, bearer};
use super::error::ApiError;
use crate::settings::RateLimitSettings;

pub struct RateLimits {
    commands: DefaultKeyedRateLimiter<Uuid>,
    failed_logins: DefaultKeyedRateLimiter<String>,
    /// Accounts whose failed-login budget ran out, until when. Checked before a password is
    /// verified, so once locked even the right password gets 429 until the window passes.
    locked: DashMap<String, Instant>,
}

fn non_zero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl RateLimits {
    pub fn new(settings: &RateLimitSettings) -> Self {
        let commands = Quota::per_second(non_zero(settings.commands_per_second))
            .allow_burst(non_zero(settings.commands_burst));
        let failed = Quota::per_minute(non_zero(settings.failed_logins_per_minute));
        Self {
            commands: RateLimiter::keyed(commands),
            failed_logins: RateLimiter::keyed(failed),
            locked: DashMap::new(),
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

    /// Refuses a login attempt for an account that is locked out.
    pub fn check_login(&self, account: &str) -> Result<(), ApiError> {
        if let Some(until) = self.locked.get(account) {
            let now = Instant::now();
            if *until > now {
                return Err(ApiError::RateLimited {
                    retry_after_secs: (*until - now).as_secs_f64().ceil() as u64,
                });
            }
        }
        Ok(())
    }

    /// Counts a failed login; the attempt that exceeds the budget locks the account.
    pub fn record_failed_login(&self, account: &str) -> Result<(), ApiError> {
        match self.failed_logins.check_key(&account.to_owned()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let wait = wait.max(Duration::from_secs(1));
                self.locked
                    .insert(account.to_owned(), Instant::now() + wait);
                Err(ApiError::RateLimited {
                    retry_after_secs: wait.as_secs_f64().ceil() as u64,
                })
            }
        }
    }

    /// Forgets idle keys so memory stays bounded; run periodically.
    pub fn housekeeping(&self) {
        self.commands.retain_recent();
        self.failed_logins.retain_recent();
        let now = Instant::now();
        self.locked.retain(|_, until| *until > now);
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
