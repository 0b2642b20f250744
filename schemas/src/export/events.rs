//! Event payload schemas. The domain enums are externally tagged in the events table
//! (`{"UserRegistered": {...}}`) but an envelope's `payload` is the inner object with the
//! variant in `event_type`; so each enum's schema is split into one schema per variant's inner
//! object. The split is generic: a new variant gets its schema without touching this file.

use domain::booking::BookingEvent;
use domain::inventory::InventoryEvent;
use domain::ledger::LedgerEvent;
use domain::payment::PaymentEvent;
use domain::show::ShowEvent;
use domain::user::UserEvent;
use serde_json::{Map, Value};

use super::{Contract, ExportError, schema_for};
use crate::topics::AGGREGATE_TOPICS;

/// The schema of one event type at one version, as it travels in an envelope's `payload`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSchema {
    pub aggregate_type: String,
    pub event_type: String,
    pub event_version: String,
    pub schema: Value,
}

impl EventSchema {
    /// `events/<aggregate>/<EventType>.v<N>.json`.
    pub fn path(&self) -> String {
        format!(
            "events/{}/{}.v{}.json",
            self.aggregate_type, self.event_type, self.event_version
        )
    }
}

/// Every published event type of every aggregate of `AGGREGATE_TOPICS`, in topic order and
/// then declaration order.
// When an event gains a version, its older payload type must be registered here too: stored
// events keep their version, so older payloads still travel.
pub fn event_schemas() -> Result<Vec<EventSchema>, ExportError> {
    let mut all = Vec::new();
    for (aggregate_type, _) in AGGREGATE_TOPICS {
        let tagged = match *aggregate_type {
            "user" => schema_for::<UserEvent>(Contract::Read),
            "show" => schema_for::<ShowEvent>(Contract::Read),
            "inventory" => schema_for::<InventoryEvent>(Contract::Read),
            "booking" => schema_for::<BookingEvent>(Contract::Read),
            "payment" => schema_for::<PaymentEvent>(Contract::Read),
            "ledger" => schema_for::<LedgerEvent>(Contract::Read),
            "voucher" => schema_for::<domain::voucher::VoucherEvent>(Contract::Read),
            "voucher_book" => schema_for::<domain::voucher::book::VoucherBookEvent>(Contract::Read),
            "customer_places" => schema_for::<domain::customer::CustomerEvent>(Contract::Read),
            "waitlist" => schema_for::<domain::waitlist::WaitlistEvent>(Contract::Read),
            other => return Err(ExportError::UnknownAggregate(other.to_owned())),
        };
        all.extend(split(aggregate_type, &tagged)?);
    }
    // Older versions still travel (stored events keep their version).
    all.push(older(
        "show",
        "ShowCancelled",
        schema_for::<crate::upcast::ShowCancelledV1>(Contract::Read),
    ));
    all.push(older(
        "booking",
        "PaymentRequested",
        schema_for::<crate::upcast::BookingPaymentRequestedV1>(Contract::Read),
    ));
    all.push(older(
        "payment",
        "PaymentRequested",
        schema_for::<crate::upcast::PaymentRequestedV1>(Contract::Read),
    ));
    Ok(all)
}

/// The version-1 schema of an event that has a newer version.
fn older(aggregate_type: &str, event_type: &str, mut schema: Value) -> EventSchema {
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("title".into(), Value::String(event_type.into()));
    }
    EventSchema {
        aggregate_type: aggregate_type.into(),
        event_type: event_type.into(),
        event_version: "1".into(),
        schema,
    }
}

/// One schema per variant: the inner object, titled by the variant, with the definitions it
/// references (and only those).
fn split(aggregate_type: &str, tagged: &Value) -> Result<Vec<EventSchema>, ExportError> {
    let not_tagged = || ExportError::NotTagged {
        aggregate_type: aggregate_type.to_owned(),
    };
    let variants = tagged
        .get("oneOf")
        .and_then(Value::as_array)
        .ok_or_else(not_tagged)?;
    let defs = tagged
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();

    variants
        .iter()
        .enumerate()
        .map(|(index, variant)| {
            let (event_type, inner) =
                payload_of(variant).ok_or_else(|| ExportError::VariantShape {
                    aggregate_type: aggregate_type.to_owned(),
                    index,
                })?;
            let mut schema = inner.clone();
            if let Some(description) = variant.get("description") {
                schema
                    .entry("description")
                    .or_insert_with(|| description.clone());
            }
            schema.insert("title".into(), Value::String(event_type.clone()));
            if let Some(dialect) = tagged.get("$schema") {
                schema.insert("$schema".into(), dialect.clone());
            }
            let used = referenced(&Value::Object(schema.clone()), &defs);
            if !used.is_empty() {
                schema.insert("$defs".into(), Value::Object(used));
            }
            let event_version =
                crate::upcast::current_version(aggregate_type, &event_type).to_owned();
            Ok(EventSchema {
                aggregate_type: aggregate_type.to_owned(),
                event_type,
                event_version,
                schema: Value::Object(schema),
            })
        })
        .collect()
}

/// A variant of an externally tagged enum is an object with exactly one property, required,
/// named after the variant; its value is the payload's schema.
fn payload_of(variant: &Value) -> Option<(String, &Map<String, Value>)> {
    let properties = variant.get("properties")?.as_object()?;
    let required = variant.get("required")?.as_array()?;
    let [(name, inner)] = properties.iter().collect::<Vec<_>>()[..] else {
        return None;
    };
    let [only] = &required[..] else {
        return None;
    };
    (only.as_str() == Some(name.as_str())).then_some((name.clone(), inner.as_object()?))
}

/// The definitions `schema` references through `#/$defs/…`, followed transitively.
fn referenced(schema: &Value, defs: &Map<String, Value>) -> Map<String, Value> {
    let mut used = Map::new();
    let mut pending = Vec::new();
    refs(schema, &mut pending);
    while let Some(name) = pending.pop() {
        if used.contains_key(&name) {
            continue;
        }
        if let Some(def) = defs.get(&name) {
            refs(def, &mut pending);
            used.insert(name, def.clone());
        }
    }
    used
}

fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/$defs/"))
            {
                out.push(name.to_owned());
            }
            map.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}
