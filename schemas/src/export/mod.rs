//! JSON Schemas of the wire contract, generated from the Rust types: one file per type under
//! `schemas/json` — the envelope, every event payload per aggregate, type and version, every
//! HTTP body and problem+json, the WebSocket frames (`ws/`) — plus `topics.json`, an index of the topics and what they
//! carry. `export-schemas` writes the files; a test fails when the committed ones drift.

mod events;
mod files;
mod http;
mod topics;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema};
use serde_json::Value;

use crate::Envelope;

pub use events::{EventSchema, event_schemas};
pub use files::{Drift, compare, write};

/// (type name, schema) of every HTTP body, for the OpenAPI document.
pub fn http_bodies() -> Vec<(String, Value)> {
    http::bodies()
}

/// The command that rewrites the committed schemas; drift messages quote it.
pub const REGENERATE: &str = "cargo run -p schemas --bin export-schemas";

/// Generated files: path relative to the schema directory (`/`-separated) → content.
pub type Catalog = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{aggregate_type}: the event enum is not an externally tagged enum of objects")]
    NotTagged { aggregate_type: String },
    #[error(
        "{aggregate_type}: variant #{index} has no payload object (unit variants cannot travel \
         as an envelope payload)"
    )]
    VariantShape {
        aggregate_type: String,
        index: usize,
    },
    #[error("no event enum is registered for the aggregate type {0:?} of AGGREGATE_TOPICS")]
    UnknownAggregate(String),
    #[error("rendering {path}: {source}")]
    Render {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where the committed schemas live: `schemas/json` in this crate.
pub fn json_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("json")
}

/// Every schema file, rendered, in memory.
pub fn generate() -> Result<Catalog, ExportError> {
    let mut documents: BTreeMap<String, Value> = BTreeMap::new();
    // Consumers validate what they receive, so the envelope follows the reading contract.
    documents.insert(
        "envelope.json".into(),
        schema_for::<Envelope>(Contract::Read),
    );
    let events = event_schemas()?;
    for event in &events {
        documents.insert(event.path(), event.schema.clone());
    }
    for (name, schema) in http::bodies() {
        documents.insert(format!("http/{name}.json"), schema);
    }
    documents.insert("topics.json".into(), topics::index(&events));
    // WebSocket frames: what a client sends is read by the server, what it receives is written.
    documents.insert(
        "ws/ClientMessage.json".into(),
        schema_for::<crate::ws::ClientMessage>(Contract::Read),
    );
    documents.insert(
        "ws/ServerMessage.json".into(),
        schema_for::<crate::ws::ServerMessage>(Contract::Write),
    );
    documents.insert("openapi.json".into(), crate::openapi::document());

    documents
        .into_iter()
        .map(|(path, value)| {
            let text = render(&value).map_err(|source| ExportError::Render {
                path: path.clone(),
                source,
            })?;
            Ok((path, text))
        })
        .collect()
}

/// Which side of a body the schema describes. They differ where serde does: a defaulted
/// field is optional to a reader but always written by a writer.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Contract {
    /// What the receiver accepts (requests, events, the envelope).
    Read,
    /// What the server writes (responses).
    Write,
}

pub(crate) fn schema_for<T: JsonSchema>(contract: Contract) -> Value {
    let settings = SchemaSettings::draft2020_12();
    let settings = match contract {
        Contract::Read => settings.for_deserialize(),
        Contract::Write => settings.for_serialize(),
    };
    let schema: Schema = settings.into_generator().into_root_schema_for::<T>();
    schema.to_value()
}

/// Pretty JSON with keys sorted at every level (whatever serde_json's map order is) and a
/// trailing newline, so a file changes only when its schema does.
fn render(value: &Value) -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string_pretty(&sorted(value))?;
    text.push('\n');
    Ok(text)
}

fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let ordered: BTreeMap<&String, Value> =
                map.iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(ordered.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}
