//! The wire contract every consumer depends on: the Kafka envelope, topic names, the one
//! decode function (envelope → current event version), the redaction of write-side-only
//! fields, and the JSON Schemas of events and bodies (`export`, committed under `json/`).

pub mod api;
pub mod decode;
pub mod envelope;
pub mod export;
pub mod openapi;
pub mod ticket_codes;
pub mod topics;
pub mod upcast;
pub mod webhook;
pub mod ws;

pub use decode::{DecodeError, DecodedEvent, decode};
pub use envelope::{Envelope, EventMetadata};
