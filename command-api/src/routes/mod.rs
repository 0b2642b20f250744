//! HTTP handlers, one module per area of API.md.

pub mod admin;
pub mod auth;
pub mod users;
