//! Bodies of the public HTTP API (API.md), one module per area. Requests reject unknown
//! fields, so a typo is a 400 rather than a silently ignored value.

pub mod bookings;
pub mod events;
pub mod invoices;
pub mod ops;
pub mod problem;
pub mod queue;
pub mod sales;
pub mod tickets;
pub mod users;
pub mod vouchers;
pub mod waitlist;
