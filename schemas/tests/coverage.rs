//! Every type of `schemas::api` reaches a client through an exported schema: as a file of its
//! own under `http/` or inside one of their `$defs`. A new body type that is in neither
//! must be added to `src/export/http.rs`.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use schemas::export;
use serde_json::Value;

/// Names of the `pub struct`/`pub enum` items deriving `JsonSchema` in a source file.
fn schema_types(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut derives_schema = false;
    for line in source.lines().map(str::trim) {
        if line.starts_with("#[derive(") {
            derives_schema = line.contains("JsonSchema");
        } else if let Some(rest) = line
            .strip_prefix("pub struct ")
            .or_else(|| line.strip_prefix("pub enum "))
        {
            if derives_schema {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                found.push(name);
            }
            derives_schema = false;
        }
    }
    found
}

#[test]
fn every_api_type_is_in_an_exported_http_schema() {
    let api_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut declared = BTreeSet::new();
    for entry in fs::read_dir(&api_dir).expect("src/api is readable") {
        let path = entry.expect("a directory entry").path();
        let source = fs::read_to_string(&path).expect("a source file is readable");
        declared.extend(schema_types(&source));
    }
    assert!(declared.contains("RegisterRequest"), "the scan finds types");

    let mut covered = BTreeSet::new();
    for (path, text) in export::generate().expect("every schema generates") {
        let Some(name) = path
            .strip_prefix("http/")
            .and_then(|p| p.strip_suffix(".json"))
        else {
            continue;
        };
        covered.insert(name.to_owned());
        let schema: Value = serde_json::from_str(&text).expect("schemas are JSON");
        if let Some(defs) = schema.get("$defs").and_then(Value::as_object) {
            covered.extend(defs.keys().cloned());
        }
    }

    let uncovered: Vec<&String> = declared.difference(&covered).collect();
    assert!(
        uncovered.is_empty(),
        "schemas::api types in no exported schema (add them to src/export/http.rs, then run \
         `cargo run -p schemas --bin export-schemas`): {uncovered:?}"
    );
}
