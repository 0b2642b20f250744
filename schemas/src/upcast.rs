//! Schema evolution: stored events keep their version forever; these upcasters turn an old
//! version into the current one. The same functions serve `decode` (envelope payloads, for
//! every consumer and the replay) and the aggregates (as cqrs-es `EventUpcaster`s on the
//! store), so an old event means the same everywhere.
//!
//! History:
//! - `show` / `ShowCancelled` v1 → v2: `reason` added; every v1 cancellation was by the
//!   organizer.

use chrono::{DateTime, Utc};
use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use domain::show::CANCELLED_BY_ORGANIZER;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The version an event type is written at today.
pub fn current_version(aggregate_type: &str, event_type: &str) -> &'static str {
    match (aggregate_type, event_type) {
        ("show", "ShowCancelled") => "2",
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
        _ => None,
    }
}

/// `ShowCancelled` as version 1 wrote it; kept for its schema (old payloads still travel).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "ShowCancelled")]
pub struct ShowCancelledV1 {
    pub cancelled_at: DateTime<Utc>,
}

/// `upgrade` as a cqrs-es upcaster over stored (externally tagged) events.
struct StoredUpcaster;

impl EventUpcaster for StoredUpcaster {
    fn can_upcast(&self, event_type: &str, event_version: &str) -> bool {
        // The aggregate type is checked in `upcast`; event types are nearly unique.
        ["show"].iter().any(|a| {
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
