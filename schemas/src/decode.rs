//! The one decode function: envelope → the current version of the domain event. Consumers,
//! the relay's validation and the replay CLI all decode through here, so an upcaster added
//! for an old event version applies everywhere at once.

use domain::booking::BookingEvent;
use domain::customer::CustomerEvent;
use domain::inventory::InventoryEvent;
use domain::ledger::LedgerEvent;
use domain::payment::PaymentEvent;
use domain::show::ShowEvent;
use domain::user::UserEvent;
use domain::voucher::VoucherEvent;
use domain::voucher::book::VoucherBookEvent;
use domain::waitlist::WaitlistEvent;
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
    Voucher(VoucherEvent),
    VoucherBook(VoucherBookEvent),
    Customer(CustomerEvent),
    Waitlist(WaitlistEvent),
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
    decode_payload(
        &envelope.aggregate_type,
        &envelope.event_type,
        &envelope.event_version,
        envelope.payload.clone(),
    )
}

/// `decode` of an event as the events table stores it (externally tagged:
/// `{"EventType": {...}}`), without building its envelope — the replay reads millions.
/// The result equals `decode` of the envelope the relay would publish for it: an event at
/// its current version without write-side-only fields is deserialized straight from the
/// stored text; any other takes the envelope's path (redaction, upcasting).
pub fn decode_stored(
    aggregate_type: &str,
    event_type: &str,
    version: &str,
    stored: &str,
) -> Result<DecodedEvent, DecodeError> {
    let payload_error = |source| DecodeError::Payload {
        event_type: event_type.to_owned(),
        source,
    };
    if version == crate::upcast::current_version(aggregate_type, event_type)
        && !crate::envelope::redacts(aggregate_type, event_type)
    {
        return match aggregate_type {
            "user" => from_stored(stored).map(DecodedEvent::User),
            "show" => from_stored(stored).map(DecodedEvent::Show),
            "inventory" => from_stored(stored).map(DecodedEvent::Inventory),
            "booking" => from_stored(stored).map(DecodedEvent::Booking),
            "payment" => from_stored(stored).map(DecodedEvent::Payment),
            "ledger" => from_stored(stored).map(DecodedEvent::Ledger),
            "voucher" => from_stored(stored).map(DecodedEvent::Voucher),
            "voucher_book" => from_stored(stored).map(DecodedEvent::VoucherBook),
            "customer_places" => from_stored(stored).map(DecodedEvent::Customer),
            "waitlist" => from_stored(stored).map(DecodedEvent::Waitlist),
            other => return Err(DecodeError::UnknownAggregate(other.to_owned())),
        }
        .map_err(payload_error);
    }
    let mut payload = match serde_json::from_str::<serde_json::Value>(stored)
        .map_err(payload_error)?
    {
        serde_json::Value::Object(mut map) if map.len() == 1 && map.contains_key(event_type) => {
            map.remove(event_type).unwrap_or_default()
        }
        other => other,
    };
    crate::envelope::redact(aggregate_type, event_type, &mut payload);
    decode_payload(aggregate_type, event_type, version, payload)
}

fn from_stored<E: DeserializeOwned>(stored: &str) -> Result<E, serde_json::Error> {
    serde_json::from_str(stored)
}

fn decode_payload(
    aggregate_type: &str,
    event_type: &str,
    version: &str,
    payload: serde_json::Value,
) -> Result<DecodedEvent, DecodeError> {
    let parts = (aggregate_type, event_type, version, payload);
    match aggregate_type {
        "user" => decode_as(parts).map(DecodedEvent::User),
        "show" => decode_as(parts).map(DecodedEvent::Show),
        "inventory" => decode_as(parts).map(DecodedEvent::Inventory),
        "booking" => decode_as(parts).map(DecodedEvent::Booking),
        "payment" => decode_as(parts).map(DecodedEvent::Payment),
        "ledger" => decode_as(parts).map(DecodedEvent::Ledger),
        "voucher" => decode_as(parts).map(DecodedEvent::Voucher),
        "voucher_book" => decode_as(parts).map(DecodedEvent::VoucherBook),
        "customer_places" => decode_as(parts).map(DecodedEvent::Customer),
        "waitlist" => decode_as(parts).map(DecodedEvent::Waitlist),
        other => Err(DecodeError::UnknownAggregate(other.to_owned())),
    }
}

/// Upcasts to the current version, then rebuilds the externally tagged form the domain
/// enums deserialize from.
fn decode_as<E: DeserializeOwned>(
    (aggregate_type, event_type, version, mut payload): (&str, &str, &str, serde_json::Value),
) -> Result<E, DecodeError> {
    let mut current = version.to_owned();
    while let Some(next) =
        crate::upcast::upgrade(aggregate_type, event_type, &current, &mut payload)
    {
        current = next.to_owned();
    }
    if current != crate::upcast::current_version(aggregate_type, event_type) {
        return Err(DecodeError::UnsupportedVersion {
            event_type: event_type.to_owned(),
            version: version.to_owned(),
        });
    }
    let tagged = serde_json::json!({ event_type: payload });
    serde_json::from_value(tagged).map_err(|source| DecodeError::Payload {
        event_type: event_type.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use domain::show::{CANCELLED_BY_ORGANIZER, ShowEvent};
    use domain::user::UserEvent;

    use super::*;

    #[test]
    fn a_stored_event_decodes_as_its_envelope_does() {
        let stored = r#"{"ShowCreated":{"show_id":"8d0e1f2a-3b4c-4d5e-8f60-718293a4b5c6","organizer_id":"8d0e1f2a-3b4c-4d5e-8f60-718293a4b5c7","name":"Hamlet","venue":"Globe","description":null,"starts_at":"2027-06-01T19:00:00Z","created_at":"2026-11-26T10:00:00.123456789Z"}}"#;
        let envelope = Envelope {
            event_id: uuid::Uuid::nil(),
            aggregate_type: "show".into(),
            aggregate_id: "8d0e1f2a-3b4c-4d5e-8f60-718293a4b5c6".into(),
            sequence: 1,
            global_position: 1,
            event_type: "ShowCreated".into(),
            event_version: "1".into(),
            occurred_at: chrono::Utc::now(),
            payload:
                serde_json::from_str::<serde_json::Value>(stored).expect("json")["ShowCreated"]
                    .clone(),
            metadata: Default::default(),
        };
        assert_eq!(
            decode_stored("show", "ShowCreated", "1", stored).expect("stored"),
            decode(&envelope).expect("envelope")
        );
    }

    #[test]
    fn a_stored_version_1_cancellation_is_upcast() {
        let stored = r#"{"ShowCancelled":{"cancelled_at":"2026-11-26T10:00:00Z"}}"#;
        let DecodedEvent::Show(ShowEvent::ShowCancelled { reason, .. }) =
            decode_stored("show", "ShowCancelled", "1", stored).expect("decodes")
        else {
            panic!("not a cancellation");
        };
        assert_eq!(reason, CANCELLED_BY_ORGANIZER);
    }

    #[test]
    fn a_stored_password_hash_never_reaches_a_consumer() {
        let stored = r#"{"UserRegistered":{"user_id":"8d0e1f2a-3b4c-4d5e-8f60-718293a4b5c6","email":"a@b.c","name":"A","password_hash":"$argon2id$secret","registered_at":"2026-11-26T10:00:00Z"}}"#;
        let DecodedEvent::User(UserEvent::UserRegistered { password_hash, .. }) =
            decode_stored("user", "UserRegistered", "1", stored).expect("decodes")
        else {
            panic!("not a registration");
        };
        assert_eq!(password_hash, "");
    }

    #[test]
    fn an_unknown_stored_version_is_refused() {
        let stored = r#"{"ShowCancelled":{"cancelled_at":"2026-11-26T10:00:00Z"}}"#;
        assert!(matches!(
            decode_stored("show", "ShowCancelled", "9", stored),
            Err(DecodeError::UnsupportedVersion { .. })
        ));
    }
}
