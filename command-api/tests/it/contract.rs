//! Contract checks for the end-to-end tests: every HTTP answer against the OpenAPI document
//! and every Kafka record against `envelope.json` and its payload's event schema, compiled
//! once per test binary from `schemas::export::generate()` (what `schemas/json` commits; a
//! drift test keeps the two equal).
//!
//! A failure is a contract bug (the schema or the server is wrong), never something to skip:
//! an undocumented status, a body where the document has none, a missing or non-JSON body
//! where it has one, a content type it does not list, or a body its schema rejects.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use jsonschema::Validator;
use serde_json::{Value, json};

/// HTTP answers validated so far by this test binary.
pub static RESPONSES: AtomicUsize = AtomicUsize::new(0);
/// Kafka records validated so far by this test binary.
pub static MESSAGES: AtomicUsize = AtomicUsize::new(0);

const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// What one (operation, status) answers: no body, or a body of these media types.
struct Answer {
    media_types: Vec<String>,
    /// `None` when the document describes no content.
    validator: Option<Validator>,
}

struct Operation {
    /// Path template split at `/`; `{name}` segments match any non-empty segment.
    segments: Vec<String>,
    template: String,
    method: String,
    answers: HashMap<u16, Answer>,
}

struct Contracts {
    operations: Vec<Operation>,
    /// The `Problem` component: what an unknown route or method answers.
    problem: Validator,
    envelope: Validator,
    /// `events/<aggregate>/<Type>.v<N>.json` → validator.
    events: HashMap<String, Validator>,
}

fn compile(what: &str, schema: &Value) -> Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|e| panic!("{what} is not a valid JSON Schema: {e}"))
}

fn errors(validator: &Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("at {:?}: {e}", e.instance_path().to_string()))
        .collect()
}

/// One response schema of the document, with the document's components beside it so that
/// `#/components/schemas/X` references (and the `$defs` hoisted there) resolve.
fn response_validator(what: &str, schema: &Value, components: &Value) -> Validator {
    let root = json!({
        "$schema": DIALECT,
        "allOf": [schema],
        "components": components,
    });
    compile(what, &root)
}

fn operations(document: &Value) -> Vec<Operation> {
    let components = &document["components"];
    let mut out = Vec::new();
    let paths = document["paths"]
        .as_object()
        .expect("the document has paths");
    for (template, item) in paths {
        let item = item.as_object().expect("path items are objects");
        for (method, op) in item {
            let responses = op["responses"]
                .as_object()
                .unwrap_or_else(|| panic!("{method} {template} has responses"));
            let answers = responses
                .iter()
                .map(|(status, response)| {
                    let status: u16 = status
                        .parse()
                        .unwrap_or_else(|_| panic!("{method} {template}: status {status}"));
                    let content = response.get("content").and_then(Value::as_object);
                    let media_types: Vec<String> = content
                        .into_iter()
                        .flatten()
                        .map(|(m, _)| m.clone())
                        .collect();
                    // JSON bodies are validated; others (a PDF) only need their media type.
                    let schemas: Vec<&Value> = content
                        .into_iter()
                        .flatten()
                        .filter(|(m, _)| m.ends_with("json"))
                        .filter_map(|(_, media)| media.get("schema"))
                        .collect();
                    let validator = match schemas.as_slice() {
                        [] => None,
                        [schema] => Some(response_validator(
                            &format!("{method} {template} {status}"),
                            schema,
                            components,
                        )),
                        _ => panic!("{method} {template} {status}: one schema per answer"),
                    };
                    (
                        status,
                        Answer {
                            media_types,
                            validator,
                        },
                    )
                })
                .collect();
            out.push(Operation {
                segments: template.split('/').map(str::to_owned).collect(),
                template: template.clone(),
                method: method.to_ascii_lowercase(),
                answers,
            });
        }
    }
    out
}

static CONTRACTS: LazyLock<Contracts> = LazyLock::new(|| {
    let catalog = schemas::export::generate().expect("every schema generates");
    let parse = |path: &str, text: &str| -> Value {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{path} is JSON: {e}"))
    };
    let envelope = compile(
        "envelope.json",
        &parse("envelope.json", &catalog["envelope.json"]),
    );
    let events = catalog
        .iter()
        .filter(|(path, _)| path.starts_with("events/"))
        .map(|(path, text)| (path.clone(), compile(path, &parse(path, text))))
        .collect();
    let document = parse("openapi.json", &catalog["openapi.json"]);
    let problem = response_validator(
        "the Problem component",
        &json!({"$ref": "#/components/schemas/Problem"}),
        &document["components"],
    );
    Contracts {
        operations: operations(&document),
        problem,
        envelope,
        events,
    }
});

/// Validates one Kafka record value: the envelope against `envelope.json`, its payload
/// against the schema of its aggregate type, event type and version. Returns the envelope.
pub fn assert_envelope(bytes: &[u8]) -> Value {
    let value: Value = serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "a Kafka record is not JSON ({e}): {}",
            String::from_utf8_lossy(bytes)
        )
    });
    assert_envelope_value(&value);
    value
}

pub fn assert_envelope_value(envelope: &Value) {
    let contracts = &*CONTRACTS;
    let field = |name: &str| envelope[name].as_str().unwrap_or("?");
    let event_type = field("event_type");
    let failures = errors(&contracts.envelope, envelope);
    assert!(
        failures.is_empty(),
        "the envelope of a {event_type} event breaks envelope.json:\n  {}\n{envelope}",
        failures.join("\n  ")
    );
    let path = format!(
        "events/{}/{event_type}.v{}.json",
        field("aggregate_type"),
        field("event_version")
    );
    let validator = contracts.events.get(&path).unwrap_or_else(|| {
        panic!("a published {event_type} event has no payload schema ({path} is not exported): {envelope}")
    });
    let failures = errors(validator, &envelope["payload"]);
    assert!(
        failures.is_empty(),
        "the payload of a {event_type} event breaks {path}:\n  {}\n{envelope}",
        failures.join("\n  ")
    );
    MESSAGES.fetch_add(1, Ordering::Relaxed);
}

/// The operation of `method` whose template matches `path` (query string ignored); a literal
/// segment beats a parameter (`/api/events/templates` over `/api/events/{event_id}`).
fn operation(method: &str, path: &str) -> Option<&'static Operation> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').collect();
    let method = method.to_ascii_lowercase();
    CONTRACTS
        .operations
        .iter()
        .filter(|op| op.method == method && op.segments.len() == segments.len())
        .filter_map(|op| {
            let mut literal = 0;
            for (want, got) in op.segments.iter().zip(&segments) {
                if want.starts_with('{') && want.ends_with('}') {
                    if got.is_empty() {
                        return None;
                    }
                } else if want == got {
                    literal += 1;
                } else {
                    return None;
                }
            }
            Some((literal, op))
        })
        .max_by_key(|(literal, _)| *literal)
        .map(|(_, op)| op)
}

/// Validates an HTTP answer to `method path` (a concrete path or a template) against the
/// OpenAPI document: the status must be documented for the operation; a documented body
/// must come with a listed media type and satisfy its schema; where the document has no
/// body, none may be JSON.
pub fn assert_response(
    method: &str,
    path: &str,
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) {
    let what = format!("{} {path} → {status}", method.to_ascii_uppercase());
    let Some(op) = operation(method, path) else {
        return assert_unrouted(&what, method, path, status, content_type, body);
    };
    let answer = op.answers.get(&status).unwrap_or_else(|| {
        let mut documented: Vec<_> = op.answers.keys().collect();
        documented.sort();
        panic!(
            "{what}: status {status} is not documented for {} {} (documented: {documented:?}); body: {}",
            op.method,
            op.template,
            String::from_utf8_lossy(body)
        )
    });
    let media_type = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase());
    let Some(validator) = &answer.validator else {
        let json = media_type.as_deref().is_some_and(|m| m.ends_with("json"));
        assert!(
            !json || body.is_empty(),
            "{what}: the document describes no body, but a {} one came: {}",
            media_type.unwrap_or_default(),
            String::from_utf8_lossy(body)
        );
        RESPONSES.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let media_type = media_type.unwrap_or_else(|| panic!("{what}: no Content-Type"));
    assert!(
        answer.media_types.contains(&media_type),
        "{what}: Content-Type {media_type} is not documented ({:?}); body: {}",
        answer.media_types,
        String::from_utf8_lossy(body)
    );
    let value: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "{what}: the body is not JSON ({e}): {}",
            String::from_utf8_lossy(body)
        )
    });
    let failures = errors(validator, &value);
    assert!(
        failures.is_empty(),
        "{what} ({} {}) breaks its OpenAPI response schema:\n  {}\nbody: {value}",
        op.method,
        op.template,
        failures.join("\n  ")
    );
    RESPONSES.fetch_add(1, Ordering::Relaxed);
}

/// Where the server publishes its own description (the document itself and its HTML page):
/// outside the API the document describes.
const DESCRIPTION_PATHS: &[&str] = &["/api/openapi.json", "/api/docs"];

/// An answer to a request the document has no operation for: only the router's own
/// problem+json 404 (unknown path) or 405 (known path, other method) is acceptable.
fn assert_unrouted(
    what: &str,
    method: &str,
    path: &str,
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) {
    let bare = path.split(['?', '#']).next().unwrap_or_default();
    if DESCRIPTION_PATHS.contains(&bare) && method.eq_ignore_ascii_case("get") {
        return;
    }
    let known_path = ["get", "put", "post", "delete", "patch"]
        .iter()
        .any(|m| operation(m, path).is_some());
    let expected = if known_path { 405 } else { 404 };
    assert_eq!(
        status,
        expected,
        "{what}: the OpenAPI document has no such operation (an undocumented route?); body: {}",
        String::from_utf8_lossy(body)
    );
    assert_eq!(
        content_type,
        Some("application/problem+json"),
        "{what}: an unrouted request must get problem+json"
    );
    let value: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{what}: the problem is not JSON ({e})"));
    let failures = errors(&CONTRACTS.problem, &value);
    assert!(
        failures.is_empty(),
        "{what}: breaks the Problem schema:\n  {}\nbody: {value}",
        failures.join("\n  ")
    );
    RESPONSES.fetch_add(1, Ordering::Relaxed);
}

/// Reads a `reqwest` answer, validates it (`assert_response`) and hands back an equivalent
/// one (status, headers, body; the URL is lost).
pub async fn checked(method: &str, path: &str, reply: reqwest::Response) -> reqwest::Response {
    let status = reply.status();
    let version = reply.version();
    let headers = reply.headers().clone();
    let body = reply.bytes().await.expect("response body");
    let content_type = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    assert_response(method, path, status.as_u16(), content_type, &body);
    let mut rebuilt = axum::http::Response::new(body);
    *rebuilt.status_mut() = status;
    *rebuilt.version_mut() = version;
    *rebuilt.headers_mut() = headers;
    reqwest::Response::from(rebuilt)
}

#[test]
fn the_contracts_compile_and_catch_a_broken_body() {
    let op = operation("get", "/api/events/templates").expect("templates");
    assert_eq!(op.template, "/api/events/templates");
    let op = operation("GET", "/api/bookings/abc?x=1").expect("a booking");
    assert_eq!(op.template, "/api/bookings/{booking_id}");
    assert!(operation("get", "/api/nowhere").is_none());
    let nowhere =
        json!({"type": "about:blank", "title": "Not Found", "status": 404, "detail": "none"});
    assert_response(
        "GET",
        "/api/nowhere",
        404,
        Some("application/problem+json"),
        nowhere.to_string().as_bytes(),
    );
    let unrouted = std::panic::catch_unwind(|| {
        assert_response("GET", "/api/nowhere", 200, Some("application/json"), b"{}")
    });
    assert!(unrouted.is_err(), "an undocumented route passed");
    let problem =
        json!({"type": "about:blank", "title": "Not Found", "status": 404, "detail": "no"});
    let bytes = problem.to_string();
    assert_response(
        "GET",
        "/api/bookings/00000000-0000-0000-0000-000000000001",
        404,
        Some("application/problem+json"),
        bytes.as_bytes(),
    );
    let broken = std::panic::catch_unwind(|| {
        assert_response(
            "GET",
            "/api/bookings/x",
            200,
            Some("application/json"),
            br#"{"booking_id": 1}"#,
        )
    });
    assert!(broken.is_err(), "a broken body passed");
    let undocumented =
        std::panic::catch_unwind(|| assert_response("GET", "/api/bookings/x", 418, None, b""));
    assert!(undocumented.is_err(), "an undocumented status passed");
    assert!(!CONTRACTS.events.is_empty());
}
