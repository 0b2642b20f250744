//! The wire contract every consumer depends on: the Kafka envelope, topic names, the one
//! decode function (envelope → current event version) and the redaction of write-side-only
//! fields.

pub mod api;
pub mod decode;
pub mod envelope;
pub mod read_models;
pub mod topics;

pub use decode::{DecodeError, DecodedEvent, decode};
pub use envelope::{Envelope, EventMetadata};
