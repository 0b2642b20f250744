//! Integration tests of the notifier on real PostgreSQL and Kafka, with the real `relay` and
//! `notifier` binaries as processes: email through an aiosmtpd sink per test, and the
//! WebSocket protocol spoken by a client library.

mod email;
mod stack;
mod websocket;
