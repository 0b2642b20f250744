//! Integration tests of the notifier on real PostgreSQL and Kafka, with the real `relay` and
//! `notifier` binaries as processes: email through an aiosmtpd sink per test.

mod email;
mod smtp_sink;
mod stack;
