//! Schema evolution: stored events keep their version forever; these upcasters turn an old
//! version into the current one. The same functions serve `decode` (envelope payloads, for
//! every consumer and the replay) and the aggregates (as cqrs-es `EventUpcaster`s on the
//! store), so an old event means the same everywhere.
//!
//! History:
//! - `show` / `ShowCancelled` v1 → v2: `reason` added; every v1 cancellation was by the
//!   organizer.
//! - `booking` / `PaymentRequested` and `payment` / `PaymentRequested` v1 → v2: the
//!   provider's card token (`payment_token`, `token`) gave way to the card's label (`card`),
//!   so tokens stay on the write side (issue 22). A v1 payload may still hold its token in
//!   the events table; `envelope::redact` swaps it for the label before it is published.

use chrono::{DateTime, Utc};
use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use domain::money::Money;
use domain::payment::card_label;
use domain::show::CANCELLED_BY_ORGANIZER;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The version an event type is written at today.
pub fn current_version(aggregate_type: &str, event_type: &str) -> &'static str {
    match (aggregate_type, event_type) {
        ("show", "ShowCancelled") => "2",
        ("booking" | "payment", "PaymentRequested") => "2",
        _ => "1",
    }
}

/// Upgrades an event's inner payload by one version, returning the new version, or `None`
/// when no upcaster applies.
pub fn upgrade(
    aggregate_type: &str,
    event_type: &str,
    version: &str,
    payload: &mut Value,
) -> Option<&'static str> {
    match (aggregate_type, event_type, version) {
        ("show", "ShowCancelled", "1") => {
            payload
                .as_object_mut()?
                .insert("reason".into(), CANCELLED_BY_ORGANIZER.into());
            Some("2")
        }
        ("booking" | "payment", "PaymentRequested", "1") => {
            label_card(
                payment_token_field(aggregate_type),
                payload.as_object_mut()?,
            );
            Some("2")
        }
        _ => None,
    }
}

/// Where a version-1 `PaymentRequested` of `aggregate_type` kept the provider's token.
pub(crate) fn payment_token_field(aggregate_type: &str) -> &'static str {
    if aggregate_type == "payment" {
        "token"
    } else {
        "payment_token"
    }
}

/// Removes the token under `field` and labels the card from it (a label already there,
/// set when the payload was redacted for publication, stays).
pub(crate) fn label_card(field: &str, payload: &mut serde_json::Map<String, Value>) {
    let token = payload.remove(field);
    if !payload.contains_key("card") {
        let label = card_label(token.as_ref().and_then(Value::as_str).unwrap_or_default());
        payload.insert("card".into(), label.into());
    }
}

/// `ShowCancelled` as version 1 wrote it; kept for its schema (old payloads still travel).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "ShowCancelled")]
pub struct ShowCancelledV1 {
    pub cancelled_at: DateTime<Utc>,
}

/// A booking's payment request as version 1 wrote it (old payloads still travel). Stored
/// v1 events held the provider's card token; a published one carries the card's label.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "PaymentRequested")]
pub struct BookingPaymentRequestedV1 {
    pub payment_id: uuid::Uuid,
    /// Never published since issue 22: the relay swaps it for `card`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub payment_token: Option<String>,
    /// What the buyer may see of the card, in place of the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub card: Option<String>,
    pub payment_deadline: DateTime<Utc>,
    pub requested_at: DateTime<Utc>,
}

/// A payment's request as version 1 wrote it (old payloads still travel). Stored v1 events
/// held the provider's card token; a published one carries the card's label.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "PaymentRequested")]
pub struct PaymentRequestedV1 {
    pub booking_id: uuid::Uuid,
    pub amount: Money,
    /// Never published since issue 22: the relay swaps it for `card`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub token: Option<String>,
    /// What the buyer may see of the card, in place of the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub card: Option<String>,
    pub requested_at: DateTime<Utc>,
}

/// `upgrade` as a cqrs-es upcaster over stored (externally tagged) events.
struct StoredUpcaster;

impl EventUpcaster for StoredUpcaster {
    fn can_upcast(&self, event_type: &str, event_version: &str) -> bool {
        // The aggregate type is checked in `upcast`; event types are nearly unique.
        ["show", "booking", "payment"].iter().any(|a| {
            let mut probe = Value::Object(Default::default());
            upgrade(a, event_type, event_version, &mut probe).is_some()
        })
    }

    fn upcast(&self, mut event: SerializedEvent) -> SerializedEvent {
        let mut version = event.event_version.clone();
        if let Some(inner) = event.payload.get_mut(&event.event_type) {
            while let Some(next) =
                upgrade(&event.aggregate_type, &event.event_type, &version, inner)
            {
                version = next.to_owned();
            }
        }
        event.event_version = version;
        event
    }
}

/// The upcasters every `AggregateStore` of an aggregate with evolved events is built with.
pub fn upcasters() -> Vec<Box<dyn EventUpcaster>> {
    vec![Box::new(StoredUpcaster)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v1_cancellation_gains_its_reason() {
        let mut payload = serde_json::json!({"cancelled_at": "2026-11-01T12:00:00Z"});
        assert_eq!(
            upgrade("show", "ShowCancelled", "1", &mut payload),
            Some("2")
        );
        assert_eq!(payload["reason"], CANCELLED_BY_ORGANIZER);
        assert_eq!(upgrade("show", "ShowCancelled", "2", &mut payload), None);
        assert_eq!(current_version("show", "ShowCancelled"), "2");
        assert_eq!(current_version("show", "ShowCreated"), "1");
    }

    #[test]
    fn a_v1_payment_request_trades_its_token_for_the_cards_label() {
        let mut booking = serde_json::json!({"payment_id": "8d0e1f2a-3b4c-4d5e-8f60-718293a4b5c6",
            "payment_token": "tok_visa", "payment_deadline": "2026-11-01T12:07:00Z",
            "requested_at": "2026-11-01T12:00:00Z"});
        assert_eq!(
            upgrade("booking", "PaymentRequested", "1", &mut booking),
            Some("2")
        );
        assert_eq!(booking.get("payment_token"), None);
        assert_eq!(booking["card"], "Visa test card");
        let mut payment =
            serde_json::json!({"token": "tok_decline", "card": "Declining test card"});
        assert_eq!(
            upgrade("payment", "PaymentRequested", "1", &mut payment),
            Some("2")
        );
        assert_eq!(payment, serde_json::json!({"card": "Declining test card"}));
        assert_eq!(current_version("payment", "PaymentRequested"), "2");
    }

    #[test]
    fn the_stored_upcaster_rewrites_tagged_events() {
        let stored = SerializedEvent::new(
            "s".into(),
            3,
            "show".into(),
            "ShowCancelled".into(),
            "1".into(),
            serde_json::json!({"ShowCancelled": {"cancelled_at": "2026-11-01T12:00:00Z"}}),
            serde_json::json!({}),
        );
        let upcaster = StoredUpcaster;
        assert!(upcaster.can_upcast("ShowCancelled", "1"));
        assert!(!upcaster.can_upcast("ShowCancelled", "2"));
        let upcast = upcaster.upcast(stored);
        assert_eq!(upcast.event_version, "2");
        assert_eq!(
            upcast.payload["ShowCancelled"]["reason"],
            CANCELLED_BY_ORGANIZER
        );
    }
}
