//! Failed-login lockout keyed on (account, client address), with growing delays (OWASP
//! Authentication Cheat Sheet): a client that keeps guessing waits longer and longer, while
//! the same account still logs in from any other client. Keyed on the account alone, anyone
//! who knew an email could keep its owner locked out.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::error::ApiError;
use crate::state::AppState;

/// The longest delay a guessing client is made to wait between attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// How long a client's strikes are remembered after its last lockout ended.
const STRIKES_KEPT: Duration = Duration::from_secs(60 * 60);

type Key = (String, IpAddr);

struct Strikes {
    until: Instant,
    count: u32,
}

pub struct LoginLockout {
    failures: DefaultKeyedRateLimiter<Key>,
    locked: DashMap<Key, Strikes>,
}

impl LoginLockout {
    /// `per_minute` failed logins of one client on one account are free; each one beyond
    /// locks that pair for twice as long as the time before (from when the budget refills).
    pub fn new(per_minute: u32) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN));
        Self {
            failures: RateLimiter::keyed(quota),
            locked: DashMap::new(),
        }
    }

    /// Refuses an attempt while this client is locked out of this account.
    pub fn check(&self, account: &str, client: IpAddr) -> Result<(), ApiError> {
        if let Some(strikes) = self.locked.get(&(account.to_owned(), client)) {
            let now = Instant::now();
            if strikes.until > now {
                return Err(rate_limited(strikes.until - now));
            }
        }
        Ok(())
    }

    /// Counts a failed login; over the budget, locks (account, client) for a growing delay.
    pub fn failed(&self, account: &str, client: IpAddr) -> Result<(), ApiError> {
        let key = (account.to_owned(), client);
        let Err(not_until) = self.failures.check_key(&key) else {
            return Ok(());
        };
        let refill = not_until
            .wait_time_from(DefaultClock::default().now())
            .max(Duration::from_secs(1));
        let now = Instant::now();
        let mut strikes = self.locked.entry(key).or_insert(Strikes {
            until: now,
            count: 0,
        });
        strikes.count = strikes.count.saturating_add(1);
        let factor = 2u32.saturating_pow(strikes.count - 1);
        let delay = refill.saturating_mul(factor).min(MAX_DELAY);
        strikes.until = now + delay;
        Err(rate_limited(delay))
    }

    /// A right password: this client's strikes on this account are forgotten.
    pub fn succeeded(&self, account: &str, client: IpAddr) {
        self.locked.remove(&(account.to_owned(), client));
    }

    /// Forgets idle clients so memory stays bounded; run periodically.
    pub fn housekeeping(&self) {
        self.failures.retain_recent();
        let now = Instant::now();
        self.locked
            .retain(|_, strikes| strikes.until + STRIKES_KEPT > now);
    }
}

fn rate_limited(wait: Duration) -> ApiError {
    ApiError::RateLimited {
        retry_after_secs: wait.as_secs_f64().ceil() as u64,
    }
}

/// The address a request came from: the TCP peer, or, behind a proxy, the last entry of
/// the header `CLIENT_IP_HEADER` names (the one the proxy itself appended). Unknown
/// (in-process tests) is `0.0.0.0`.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let forwarded = state.limits.client_ip_header.as_ref().and_then(|name| {
            let value = parts.headers.get(name)?.to_str().ok()?;
            value.rsplit(',').next()?.trim().parse::<IpAddr>().ok()
        });
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        Ok(Self(
            forwarded
                .or(peer)
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    #[test]
    fn a_locked_client_does_not_lock_the_account_for_another_client() {
        let lockout = LoginLockout::new(3);
        for _ in 0..3 {
            assert!(lockout.failed("ada@example.com", client(1)).is_ok());
        }
        assert!(lockout.failed("ada@example.com", client(1)).is_err());
        assert!(lockout.check("ada@example.com", client(1)).is_err());
        assert!(lockout.check("ada@example.com", client(2)).is_ok());
    }

    #[test]
    fn each_lockout_of_the_same_client_lasts_longer() {
        let lockout = LoginLockout::new(1);
        let retry = |result: Result<(), ApiError>| match result {
            Err(ApiError::RateLimited { retry_after_secs }) => retry_after_secs,
            other => panic!("expected a lockout, got {other:?}"),
        };
        assert!(lockout.failed("ada@example.com", client(1)).is_ok());
        let first = retry(lockout.failed("ada@example.com", client(1)));
        let second = retry(lockout.failed("ada@example.com", client(1)));
        let third = retry(lockout.failed("ada@example.com", client(1)));
        assert!(
            second > first && third > second,
            "{first} < {second} < {third}"
        );
        assert!(third <= MAX_DELAY.as_secs());
    }

    #[test]
    fn a_right_password_forgets_the_strikes() {
        let lockout = LoginLockout::new(1);
        let _ = lockout.failed("ada@example.com", client(1));
        let _ = lockout.failed("ada@example.com", client(1));
        lockout.succeeded("ada@example.com", client(1));
        assert!(lockout.check("ada@example.com", client(1)).is_ok());
    }
}
