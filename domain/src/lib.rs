//! Aggregates, commands, events, errors and pure rules of the ticketing platform.
//!
//! Nothing here does I/O, reads a clock, draws random numbers or reads the environment:
//! the current time and new ids arrive inside the commands. Every aggregate is tested with
//! the cqrs-es `TestFramework` in the module beside it.

pub mod booking;
pub mod customer;
pub mod inventory;
pub mod ledger;
pub mod money;
pub mod payment;
pub mod purchase;
pub mod rules;
pub mod show;
pub mod user;
pub mod voucher;
pub mod waitlist;

pub use rules::FieldError;
