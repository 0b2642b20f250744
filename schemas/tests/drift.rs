//! Contract drift: the JSON Schemas committed under `schemas/json` are exactly what the Rust
//! types generate today.

use std::path::Path;

use schemas::export;

#[test]
fn committed_schemas_match_the_types() {
    let catalog = export::generate().expect("every schema generates");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("json");
    let drift = export::compare(&dir, &catalog).expect("the schema directory is readable");
    let listed: Vec<String> = drift.iter().map(ToString::to_string).collect();
    assert!(
        drift.is_empty(),
        "the JSON Schemas in {} no longer match the types:\n  {}\nRegenerate them with \
         `cargo run -p schemas --bin export-schemas` and commit the result.",
        dir.display(),
        listed.join("\n  "),
    );
}

#[test]
fn generation_is_deterministic() {
    let first = export::generate().expect("every schema generates");
    let second = export::generate().expect("every schema generates");
    assert_eq!(first, second);
}

#[test]
fn every_file_is_pretty_json_with_a_trailing_newline() {
    for (path, text) in export::generate().expect("every schema generates") {
        let value: serde_json::Value =
            serde_json::from_str(&text).expect("a generated file is JSON");
        let pretty = serde_json::to_string_pretty(&value).expect("JSON renders");
        assert_eq!(text, format!("{pretty}\n"), "{path} is not canonical");
    }
}
