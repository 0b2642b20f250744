//! Shared PostgreSQL and Kafka plumbing for every process: the event store with per-aggregate
//! command serialisation, read-your-writes positions, the at-least-once consumer runtime,
//! telemetry and the operations endpoints.

pub mod consumer;
pub mod db;
pub mod feed;
pub mod health;
pub mod jwt;
pub mod kafka;
pub mod ops;
pub mod position;
pub mod privileges;
pub mod projection;
pub mod readiness;
pub mod secrets;
pub mod settings;
pub mod shutdown;
pub mod store;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;
