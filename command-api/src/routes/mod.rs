//! HTTP handlers, one module per area of API.md.

pub mod admin;
pub mod auth;
pub mod booking_queries;
pub mod bookings;
pub mod catalog;
pub mod docs;
pub mod event_access;
pub mod events;
pub mod invoices;
pub mod queue;
pub mod sales;
pub mod sessions;
pub mod ticket_pdf;
pub mod ticket_transfer;
pub mod tickets;
pub mod users;
pub mod vouchers;
pub mod waitlist;
pub mod webhook;
