//! The cross-cutting HTTP layer: problem+json errors, extractors whose rejections are ours,
//! authentication, idempotency keys, rate limits and read-your-writes consistency.

pub mod auth;
pub mod consistency;
pub mod context;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod lockout;
pub mod rate_limit;
pub mod store_error;
