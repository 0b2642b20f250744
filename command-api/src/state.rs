//! Everything a request handler can reach, cloned cheaply into each request.

use std::sync::Arc;

use axum::extract::FromRef;
use domain::booking::Booking;
use domain::customer::CustomerPlaces;
use domain::inventory::SectionInventory;
use domain::payment::Payment;
use domain::show::Show;
use domain::user::User;
use domain::voucher::Voucher;
use domain::voucher::book::VoucherBook;
use plumbing::ops::OpsState;
use plumbing::store::AggregateStore;
use sqlx::PgPool;

use crate::http::auth::JwtKeys;
use crate::http::idempotency::IdempotencyState;
use crate::http::rate_limit::{CommandLimitState, RateLimits};
use crate::passwords::Passwords;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub users: Arc<AggregateStore<User>>,
    pub shows: Arc<AggregateStore<Show>>,
    pub inventory: Arc<AggregateStore<SectionInventory>>,
    pub bookings: Arc<AggregateStore<Booking>>,
    pub payments: Arc<AggregateStore<Payment>>,
    pub vouchers: Arc<AggregateStore<Voucher>>,
    pub voucher_books: Arc<AggregateStore<VoucherBook>>,
    pub waitlists: Arc<AggregateStore<domain::waitlist::Waitlist>>,
    pub customers: Arc<AggregateStore<CustomerPlaces>>,
    pub payment_timeout: std::time::Duration,
    pub webhook_secret: Arc<Vec<u8>>,
    pub ticket_codes: schemas::ticket_codes::TicketCodes,
    pub hold_ttl: std::time::Duration,
    /// `TICKET_MAX_TRANSFERS`.
    pub ticket_max_transfers: u8,
    pub idempotency_key: Arc<Vec<u8>>,
    pub jwt: Arc<JwtKeys>,
    pub passwords: Passwords,
    pub limits: Arc<RateLimits>,
    /// The waiting room's join batcher.
    pub joiner: waiting_room::join::Joiner,
    /// The web app's pages, rendered at start.
    pub pages: crate::web::Pages,
    pub ops: OpsState,
}

impl FromRef<AppState> for Arc<JwtKeys> {
    fn from_ref(state: &AppState) -> Self {
        state.jwt.clone()
    }
}

impl AppState {
    pub fn idempotency(&self) -> IdempotencyState {
        IdempotencyState {
            pool: self.pool.clone(),
            jwt: self.jwt.clone(),
            hash_key: self.idempotency_key.clone(),
        }
    }

    pub fn command_limits(&self) -> CommandLimitState {
        CommandLimitState {
            limits: self.limits.clone(),
            jwt: self.jwt.clone(),
        }
    }
}
