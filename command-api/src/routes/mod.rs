//! HTTP handlers, one module per area of API.md.

pub mod admin;
pub mod auth;
pub mod bookings;
pub mod catalog;
pub mod events;
pub mod users;
