//! The one decode function: envelope → the current version of the domain event. Consumers,
//! the relay's validation and the replay CLI all decode through here, so an upcaster added
//! for an old event version applies everywhere at once.

use domain::booking::BookingEvent;
use domain::inventory::InventoryEvent;
use domain::ledger::LedgerEvent;
use domain::payment::PaymentEvent;
use domain::show::ShowEvent;
use domain::user::UserEvent;
use serde::de::DeserializeOwned;

use crate::Envelope;

/// The version most events are written at today; see `upcast::current_version` for those
/// that evolved, and `upcast::upgrade` for how older versions become current.
pub const CURRENT_EVENT_VERSION: &str = "1";

/// Grows with every aggregate; consumers match the variants they care about.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum DecodedEvent {
    User(UserEvent),
    Show(ShowEvent),
    Inventory(InventoryEvent),
    Booking(BookingEvent),
    Payment(PaymentEvent),
    Ledger(LedgerEvent),
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown aggregate type {0:?}")]
    UnknownAggregate(String),
    #[error("unsupported version {version:?} of {event_type}")]
    UnsupportedVersion { event_type: String, version: String },
    #[error("payload of {event_type} does not match its schema: {source}")]
    Payload {
        event_type: String,
        source: serde_json::Error,
    },
}

pub fn decode(envelope: &Envelope) -> Result<DecodedEvent, DecodeError> {
    match envelope.aggregate_type.as_str() {
        "user" => decode_as(envelope).map(DecodedEvent::User),
        "show" => decode_as(envelope).map(DecodedEvent::Show),
        "inventory" => decode_as(envelope).map(DecodedEvent::Inventory),
        "booking" => decode_as(envelope).map(DecodedEvent::Booking),
        "payment" => decode_as(envelope).map(DecodedEvent::Payment),
        "ledger" => decode_as(envelope).map(DecodedEvent::Ledger),
        other => Err(DecodeError::UnknownAggregate(other.to_owned())),
    }
}

/// Upcasts to the current version, then rebuilds the externally tagged form the domain
/// enums deserialize from.
fn decode_as<E: DeserializeOwned>(envelope: &Envelope) -> Result<E, DecodeError> {
    let mut payload = envelope.payload.clone();
    let mut version = envelope.event_version.clone();
    while let Some(next) = crate::upcast::upgrade(
        &envelope.aggregate_type,
        &envelope.event_type,
        &version,
        &mut payload,
    ) {
        version = next.to_owned();
    }
    if version != crate::upcast::current_version(&envelope.aggregate_type, &envelope.event_type) {
        return Err(DecodeError::UnsupportedVersion {
            event_type: envelope.event_type.clone(),
            version: envelope.event_version.clone(),
        });
    }
    let tagged = serde_json::json!({ envelope.event_type.clone(): payload });
    serde_json::from_value(tagged).map_err(|source| DecodeError::Payload {
        event_type: envelope.event_type.clone(),
        source,
    })
}
