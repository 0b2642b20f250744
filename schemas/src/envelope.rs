//! The JSON envelope the relay publishes for every stored event.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Namespace of event ids: an event id is derived from (aggregate type, id, sequence), so a
/// resent event is byte-for-byte the same message and consumers can recognise it.
const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x2d4f_91b3_7c1a_4e0f_b8a5_6c3e_9f12_0a77);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    pub event_id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// 1-based position of the event within its aggregate's stream.
    pub sequence: u64,
    /// Position in the events table; unique, but publication follows commit order, not this.
    pub global_position: i64,
    pub event_type: String,
    pub event_version: String,
    pub occurred_at: DateTime<Utc>,
    /// The event's fields (the inner object of the stored, externally tagged event).
    pub payload: serde_json::Value,
    pub metadata: EventMetadata,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EventMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

impl EventMetadata {
    pub const CORRELATION_ID: &'static str = "correlation_id";
    pub const CAUSATION_ID: &'static str = "causation_id";
    pub const USER_ID: &'static str = "user_id";

    /// Reads the stored metadata map (a JSON object of strings); unknown keys are ignored.
    pub fn from_stored(value: &serde_json::Value) -> Self {
        let get = |k: &str| value.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        Self {
            correlation_id: get(Self::CORRELATION_ID),
            causation_id: get(Self::CAUSATION_ID),
            user_id: get(Self::USER_ID),
        }
    }
}

pub fn event_id(aggregate_type: &str, aggregate_id: &str, sequence: u64) -> Uuid {
    Uuid::new_v5(
        &EVENT_ID_NAMESPACE,
        format!("{aggregate_type}/{aggregate_id}/{sequence}").as_bytes(),
    )
}

/// Whether events of this type carry fields that must never leave the write side.
pub fn redacts(aggregate_type: &str, event_type: &str) -> bool {
    aggregate_type == "user" && event_type == "UserRegistered"
}

/// Removes fields that must never leave the write side from a payload before it is
/// published: password hashes, and the card tokens version-1 payment requests stored (the
/// card's label takes the token's place; version 2 never holds one).
pub fn redact(aggregate_type: &str, event_type: &str, payload: &mut serde_json::Value) {
    let Some(obj) = payload.as_object_mut() else {
        return;
    };
    if redacts(aggregate_type, event_type) {
        obj.remove("password_hash");
    }
    if matches!(aggregate_type, "booking" | "payment") && event_type == "PaymentRequested" {
        let field = crate::upcast::payment_token_field(aggregate_type);
        if obj.contains_key(field) {
            crate::upcast::label_card(field, obj);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_stable_and_distinct() {
        assert_eq!(event_id("user", "a", 1), event_id("user", "a", 1));
        assert_ne!(event_id("user", "a", 1), event_id("user", "a", 2));
        assert_ne!(event_id("user", "a", 1), event_id("show", "a", 1));
    }

    #[test]
    fn a_stored_card_token_is_published_as_the_cards_label() {
        let mut payload = serde_json::json!({"payment_id": "p", "payment_token": "tok_visa"});
        redact("booking", "PaymentRequested", &mut payload);
        assert_eq!(
            payload,
            serde_json::json!({"payment_id": "p", "card": "Visa test card"})
        );
        let mut payload = serde_json::json!({"booking_id": "b", "token": "tok_timeout"});
        redact("payment", "PaymentRequested", &mut payload);
        assert_eq!(
            payload,
            serde_json::json!({"booking_id": "b", "card": "Unanswered test card"})
        );
    }

    #[test]
    fn password_hashes_are_redacted() {
        let mut payload = serde_json::json!({"email": "a@b.c", "password_hash": "$argon2id$x"});
        redact("user", "UserRegistered", &mut payload);
        assert_eq!(payload, serde_json::json!({"email": "a@b.c"}));
    }
}
