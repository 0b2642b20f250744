//! The exported schemas describe what really travels: a sample event of every aggregate,
//! published the way the relay does it (the inner object of the stored, externally tagged
//! event, redacted), validates against `envelope.json` and its per-event payload schema, and
//! a payload missing a required field does not.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::DomainEvent;
use domain::booking::{BookingEvent, GeneralAdmission, Terms};
use domain::customer::{CustomerEvent, customer_places_id};
use domain::inventory::InventoryEvent;
use domain::ledger::{DocumentKind, InvoiceLine, LedgerEvent, document_id};
use domain::money::Money;
use domain::payment::PaymentEvent;
use domain::show::{Row, Section, ShowEvent};
use domain::user::UserEvent;
use domain::voucher::book::VoucherBookEvent;
use domain::voucher::{Discount, VoucherEvent};
use domain::waitlist::WaitlistEvent;
use jsonschema::Validator;
use schemas::envelope::{event_id, redact};
use schemas::export::{self, Catalog};
use schemas::topics::AGGREGATE_TOPICS;
use schemas::{Envelope, EventMetadata};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 5, 1, hour, 0, 0)
        .single()
        .expect("a valid time")
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// What the relay publishes for a stored event (see command-api's `envelope_of`).
fn publish<E: DomainEvent + Serialize>(
    aggregate_type: &str,
    aggregate_id: &str,
    event: &E,
) -> Value {
    let event_type = event.event_type();
    let mut stored = serde_json::to_value(event).expect("events serialize");
    let mut payload = stored
        .get_mut(&event_type)
        .map(Value::take)
        .expect("stored events are externally tagged by their type");
    redact(aggregate_type, &event_type, &mut payload);
    let envelope = Envelope {
        event_id: event_id(aggregate_type, aggregate_id, 1),
        aggregate_type: aggregate_type.to_owned(),
        aggregate_id: aggregate_id.to_owned(),
        sequence: 1,
        global_position: 42,
        event_type,
        event_version: event.event_version(),
        occurred_at: at(9),
        payload,
        metadata: EventMetadata {
            correlation_id: Some("req-1".into()),
            ..EventMetadata::default()
        },
    };
    serde_json::to_value(envelope).expect("envelopes serialize")
}

/// One published sample per aggregate type.
fn samples() -> Vec<Value> {
    let show = id(2);
    let booking = id(4);
    vec![
        publish(
            "user",
            &id(1).to_string(),
            &UserEvent::UserRegistered {
                user_id: id(1),
                email: "ada@example.com".into(),
                name: "Ada".into(),
                password_hash: "$argon2id$v=19$secret".into(),
                registered_at: at(8),
            },
        ),
        publish(
            "show",
            &show.to_string(),
            &ShowEvent::LayoutSet {
                sections: vec![
                    Section::Seated {
                        section_id: "stalls".into(),
                        name: "Stalls".into(),
                        rows: vec![Row {
                            row: "A".into(),
                            seats: 12,
                        }],
                    },
                    Section::GeneralAdmission {
                        section_id: "floor".into(),
                        name: "Floor".into(),
                        capacity: 500,
                    },
                ],
            },
        ),
        publish(
            "inventory",
            &format!("{show}:stalls"),
            &InventoryEvent::SeatsHeld {
                booking_id: booking,
                seats: vec!["stalls:A:1".into(), "stalls:A:2".into()],
                quantity: 0,
                expires_at: at(10),
            },
        ),
        publish(
            "booking",
            &booking.to_string(),
            &BookingEvent::BookingPlaced {
                booking_id: booking,
                user_id: id(1),
                show_id: show,
                seats: vec!["stalls:A:1".into()],
                general_admission: vec![GeneralAdmission {
                    section_id: "floor".into(),
                    quantity: 2,
                }],
                total: Money::new(13_500, "EUR"),
                terms: Terms {
                    voucher_id: Some(id(7)),
                    voucher_code: Some("EARLY-10".into()),
                    discount: Some(Money::new(1_500, "EUR")),
                    customer_limited: true,
                    offer: false,
                },
                hold_expires_at: at(10),
                placed_at: at(9),
            },
        ),
        publish(
            "payment",
            &id(5).to_string(),
            &PaymentEvent::PaymentRequested {
                booking_id: booking,
                amount: Money::new(13_500, "EUR"),
                card: "Visa test card".into(),
                requested_at: at(9),
            },
        ),
        publish(
            "ledger",
            &id(6).to_string(),
            &LedgerEvent::DocumentIssued {
                invoice_id: document_id(booking, DocumentKind::Invoice),
                kind: DocumentKind::Invoice,
                number: 1,
                booking_id: booking,
                event_id: show,
                buyer_id: id(1),
                lines: vec![InvoiceLine {
                    tier_id: "std".into(),
                    description: "Standard - Hamlet".into(),
                    quantity: 3,
                    unit_price: Money::new(4_500, "EUR"),
                    amount: Money::new(13_500, "EUR"),
                }],
                total: Money::new(13_500, "EUR"),
                issued_at: at(11),
            },
        ),
        publish(
            "voucher",
            &id(7).to_string(),
            &VoucherEvent::VoucherCreated {
                voucher_id: id(7),
                show_id: show,
                code: "EARLY-10".into(),
                discount: Discount::Percent(10),
                max_uses: 100,
                valid_until: Some(at(12)),
                tier_ids: vec!["std".into()],
                created_at: at(7),
            },
        ),
        publish(
            "voucher_book",
            &show.to_string(),
            &VoucherBookEvent::VoucherCodeAdded {
                voucher_id: id(7),
                code: "EARLY-10".into(),
            },
        ),
        publish(
            "customer_places",
            &customer_places_id(show, id(1)),
            &CustomerEvent::PlacesReserved {
                booking_id: booking,
                places: 3,
            },
        ),
        publish(
            "waitlist",
            &show.to_string(),
            &WaitlistEvent::WaitlistOffered {
                user_id: id(1),
                booking_id: booking,
                expires_at: at(10),
                offered_at: at(9),
            },
        ),
    ]
}

fn catalog() -> Catalog {
    export::generate().expect("every schema generates")
}

fn validator(catalog: &Catalog, path: &str) -> Validator {
    let text = catalog
        .get(path)
        .unwrap_or_else(|| panic!("{path} is exported"));
    let schema: Value = serde_json::from_str(text).expect("schemas are JSON");
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{path} is a valid JSON Schema: {e}"))
}

fn payload_schema_path(envelope: &Value) -> String {
    let field = |name: &str| {
        envelope[name]
            .as_str()
            .expect("envelope fields are strings")
    };
    format!(
        "events/{}/{}.v{}.json",
        field("aggregate_type"),
        field("event_type"),
        field("event_version")
    )
}

fn errors(validator: &Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn every_published_aggregate_has_a_sample() {
    let sampled: BTreeSet<String> = samples()
        .iter()
        .map(|e| e["aggregate_type"].as_str().unwrap_or_default().to_owned())
        .collect();
    let published: BTreeSet<String> = AGGREGATE_TOPICS
        .iter()
        .map(|(t, _)| (*t).to_owned())
        .collect();
    assert_eq!(sampled, published);
}

#[test]
fn sample_envelopes_validate_against_the_envelope_schema() {
    let catalog = catalog();
    let envelope_schema = validator(&catalog, "envelope.json");
    for envelope in samples() {
        assert_eq!(errors(&envelope_schema, &envelope), Vec::<String>::new());
    }
}

#[test]
fn sample_payloads_validate_against_their_event_schemas_and_decode() {
    let catalog = catalog();
    for published in samples() {
        let path = payload_schema_path(&published);
        let schema = validator(&catalog, &path);
        assert_eq!(
            errors(&schema, &published["payload"]),
            Vec::<String>::new(),
            "{path}"
        );
        let envelope: Envelope =
            serde_json::from_value(published.clone()).expect("consumers read the envelope");
        schemas::decode(&envelope).unwrap_or_else(|e| panic!("{path} decodes: {e}"));
    }
}

#[test]
fn redacted_password_hash_is_neither_published_nor_required() {
    let user = samples().remove(0);
    assert_eq!(user["event_type"], "UserRegistered");
    assert!(user["payload"].get("password_hash").is_none());
    let schema = validator(&catalog(), &payload_schema_path(&user));
    assert!(schema.is_valid(&user["payload"]));
}

#[test]
fn a_payload_missing_any_required_field_is_rejected() {
    let catalog = catalog();
    for published in samples() {
        let path = payload_schema_path(&published);
        let schema_text = &catalog[&path];
        let schema: Value = serde_json::from_str(schema_text).expect("schemas are JSON");
        let required = schema["required"]
            .as_array()
            .unwrap_or_else(|| panic!("{path} requires fields"));
        assert!(!required.is_empty(), "{path} requires nothing");
        let validator = validator(&catalog, &path);
        for field in required {
            let field = field.as_str().expect("required names are strings");
            let mut payload = published["payload"].clone();
            payload
                .as_object_mut()
                .expect("payloads are objects")
                .remove(field);
            assert!(
                !validator.is_valid(&payload),
                "{path} accepted a payload without {field}"
            );
        }
    }
}

#[test]
fn a_payload_with_a_malformed_id_is_rejected() {
    let booking = samples().remove(3);
    let schema = validator(&catalog(), &payload_schema_path(&booking));
    let mut payload = booking["payload"].clone();
    payload["booking_id"] = Value::String("not-a-uuid".into());
    assert!(!schema.is_valid(&payload));
}
