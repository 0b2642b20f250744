//! The OpenAPI 3.1 document of the public HTTP API, built from the same schemars types as the
//! JSON Schemas (`export`): a table of the routes of API.md with their bodies, parameters and
//! answers, and every body schema as a component. Served by command-api at
//! `/api/openapi.json` and committed as `schemas/json/openapi.json` (drift-checked).
//!
//! Where API.md is silent the document says what the server does: 413 for bodies over
//! 1 MiB, 415 for a JSON body without `Content-Type: application/json`, 503 with
//! `Retry-After` when a resource stays contended, and the void ticket's status travelling as
//! `ticket_status` (RFC 9457 reserves `status` for the HTTP status).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::export::http_bodies;

/// The success "body" of an operation that answers a PDF document.
const PDF: &str = "pdf";
/// The success "body" of an operation that answers an SVG image.
const SVG: &str = "svg";

/// One operation of the API.
struct Route {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    tag: &'static str,
    /// Needs a bearer token.
    auth: bool,
    request: Option<&'static str>,
    query: Option<&'static str>,
    /// Success status and its body: a schema name, `[Name]` for an array, or none.
    success: (u16, Option<&'static str>),
    errors: &'static [u16],
    /// Reads honour `X-Min-Position`; commands answer `X-Event-Position`.
    read_model: bool,
    command: bool,
}

const fn route(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    tag: &'static str,
) -> Route {
    Route {
        method,
        path,
        summary,
        tag,
        auth: true,
        request: None,
        query: None,
        success: (200, None),
        errors: &[],
        read_model: false,
        command: false,
    }
}

fn routes() -> Vec<Route> {
    vec![
        Route {
            auth: false,
            request: Some("RegisterRequest"),
            success: (201, Some("RegisterResponse")),
            errors: &[400, 409, 413, 415, 422, 503],
            command: true,
            ..route("post", "/api/auth/register", "Register an account", "auth")
        },
        Route {
            auth: false,
            request: Some("LoginRequest"),
            success: (200, Some("TokenResponse")),
            errors: &[400, 401, 415, 429, 503],
            ..route(
                "post",
                "/api/auth/login",
                "Log in for an access token and a session's first refresh token",
                "auth",
            )
        },
        Route {
            auth: false,
            request: Some("RefreshRequest"),
            success: (200, Some("TokenResponse")),
            errors: &[400, 401, 413, 415, 503],
            ..route(
                "post",
                "/api/auth/refresh",
                "Trade a refresh token for new tokens (the old one is spent; a spent one presented again revokes the session)",
                "auth",
            )
        },
        Route {
            success: (204, None),
            errors: &[401, 503],
            command: true,
            ..route(
                "post",
                "/api/auth/logout",
                "Revoke the caller's session (its refresh token stops working)",
                "auth",
            )
        },
        Route {
            success: (200, Some("[SessionView]")),
            errors: &[401, 503],
            ..route(
                "get",
                "/api/auth/sessions",
                "The caller's signed-in sessions",
                "auth",
            )
        },
        Route {
            success: (204, None),
            errors: &[400, 401, 404, 503],
            command: true,
            ..route(
                "delete",
                "/api/auth/sessions/{session_id}",
                "Revoke one of the caller's sessions (another user's → 404)",
                "auth",
            )
        },
        Route {
            request: Some("GrantRoleRequest"),
            success: (200, Some("RolesResponse")),
            errors: &[400, 401, 403, 404],
            command: true,
            ..route(
                "post",
                "/api/admin/users/{user_id}/roles",
                "Grant a role (admin)",
                "users",
            )
        },
        Route {
            success: (200, Some("ProjectionsHealth")),
            errors: &[401, 403],
            ..route(
                "get",
                "/api/admin/projections",
                "Each read model's applied position, lag and dead letters (admin)",
                "users",
            )
        },
        Route {
            success: (200, Some("Profile")),
            errors: &[400, 401, 404],
            read_model: true,
            ..route("get", "/api/users/profile", "The caller's profile", "users")
        },
        Route {
            request: Some("UpdateProfileRequest"),
            success: (200, Some("Profile")),
            errors: &[400, 401, 422],
            command: true,
            ..route(
                "put",
                "/api/users/profile",
                "Update name and phone",
                "users",
            )
        },
        Route {
            success: (200, Some("[AddressResponse]")),
            errors: &[400, 401],
            read_model: true,
            ..route(
                "get",
                "/api/users/addresses",
                "The caller's addresses",
                "users",
            )
        },
        Route {
            request: Some("AddressRequest"),
            success: (201, Some("AddressResponse")),
            errors: &[400, 401, 422],
            command: true,
            ..route("post", "/api/users/addresses", "Add an address", "users")
        },
        Route {
            request: Some("AddressRequest"),
            success: (200, Some("AddressResponse")),
            errors: &[400, 401, 404, 422],
            command: true,
            ..route(
                "put",
                "/api/users/addresses/{address_id}",
                "Replace an address",
                "users",
            )
        },
        Route {
            success: (204, None),
            errors: &[400, 401, 404],
            command: true,
            ..route(
                "delete",
                "/api/users/addresses/{address_id}",
                "Delete an address",
                "users",
            )
        },
        Route {
            auth: false,
            success: (200, Some("[Template]")),
            ..route("get", "/api/events/templates", "Venue templates", "events")
        },
        Route {
            auth: false,
            query: Some("EventListQuery"),
            success: (200, Some("EventPage")),
            errors: &[400, 401, 403, 422],
            read_model: true,
            ..route(
                "get",
                "/api/events",
                "Published events (or the organizer's own with mine=true)",
                "events",
            )
        },
        Route {
            request: Some("CreateEventRequest"),
            success: (201, Some("EventStatusResponse")),
            errors: &[400, 401, 403, 422],
            command: true,
            ..route(
                "post",
                "/api/events",
                "Create a draft event (organizer)",
                "events",
            )
        },
        Route {
            auth: false,
            success: (200, Some("EventDetail")),
            errors: &[400, 404],
            read_model: true,
            ..route(
                "get",
                "/api/events/{event_id}",
                "Event details (drafts: owner only)",
                "events",
            )
        },
        Route {
            request: Some("LayoutRequest"),
            success: (200, Some("LayoutResponse")),
            errors: &[400, 401, 403, 404, 409, 422],
            command: true,
            ..route(
                "post",
                "/api/events/{event_id}/layout",
                "Set the layout from a template or sections",
                "events",
            )
        },
        Route {
            request: Some("PricingRequest"),
            success: (200, Some("PricingResponse")),
            errors: &[400, 401, 403, 404, 409, 422],
            command: true,
            ..route(
                "post",
                "/api/events/{event_id}/pricing",
                "Set the price tiers",
                "events",
            )
        },
        Route {
            request: Some("PublishRequest"),
            success: (200, Some("EventStatusResponse")),
            errors: &[400, 401, 403, 404, 409, 422],
            command: true,
            ..route(
                "post",
                "/api/events/{event_id}/publish",
                "Publish (body optional)",
                "events",
            )
        },
        Route {
            success: (202, Some("EventStatusResponse")),
            errors: &[400, 401, 403, 404, 409],
            command: true,
            ..route(
                "post",
                "/api/events/{event_id}/cancel",
                "Cancel; open bookings are cancelled, confirmed ones refunded",
                "events",
            )
        },
        Route {
            request: Some("AnnouncementRequest"),
            success: (202, None),
            errors: &[400, 401, 403, 404, 409, 422],
            command: true,
            ..route(
                "post",
                "/api/events/{event_id}/announcements",
                "Announce a message to everyone watching the event (owner)",
                "events",
            )
        },
        Route {
            auth: false,
            query: Some("AvailabilityQuery"),
            success: (200, Some("Availability")),
            errors: &[400, 404],
            read_model: true,
            ..route(
                "get",
                "/api/events/{event_id}/availability",
                "Seat availability, with an ETag (If-None-Match → 304)",
                "events",
            )
        },
        Route {
            request: Some("CreateVoucherRequest"),
            success: (201, Some("VoucherResponse")),
            errors: &[400, 401, 403, 404, 409, 413, 415, 422, 503],
            command: true,
            ..route(
                "post",
                "/api/events/{event_id}/vouchers",
                "Create a discount code (owner); codes are unique per event, any case",
                "commerce",
            )
        },
        Route {
            success: (200, Some("[VoucherResponse]")),
            errors: &[400, 401, 403, 404, 503],
            ..route(
                "get",
                "/api/events/{event_id}/vouchers",
                "The event's vouchers with their live uses (owner)",
                "commerce",
            )
        },
        Route {
            request: Some("JoinWaitlistRequest"),
            success: (201, Some("WaitlistEntryResponse")),
            errors: &[400, 401, 404, 409, 413, 415, 422, 503],
            command: true,
            ..route(
                "post",
                "/api/events/{event_id}/waitlist",
                "Join a sold-out event's waiting list (409 while places are available); joining again answers the same entry, also 201",
                "commerce",
            )
        },
        Route {
            success: (200, Some("WaitlistEntryResponse")),
            errors: &[400, 401, 404, 503],
            ..route(
                "get",
                "/api/events/{event_id}/waitlist",
                "The caller's place on the event's waiting list (404 when not on it)",
                "commerce",
            )
        },
        Route {
            success: (204, None),
            errors: &[400, 401, 404, 503],
            command: true,
            ..route(
                "delete",
                "/api/events/{event_id}/waitlist",
                "Leave the waiting list; an open offer stays a held booking until paid, cancelled or expired",
                "commerce",
            )
        },
        Route {
            request: Some("CreateBookingRequest"),
            success: (201, Some("BookingHeldResponse")),
            errors: &[400, 401, 403, 409, 422, 429, 503],
            command: true,
            ..route(
                "post",
                "/api/bookings",
                "Hold seats and places (all or nothing)",
                "bookings",
            )
        },
        Route {
            success: (200, Some("SalesReport")),
            errors: &[400, 401, 403, 404],
            read_model: true,
            ..route(
                "get",
                "/api/events/{event_id}/sales",
                "Sales figures of an event (owner, admin)",
                "events",
            )
        },
        Route {
            success: (200, Some("SalesTimeseries")),
            errors: &[400, 401, 403, 404],
            read_model: true,
            ..route(
                "get",
                "/api/events/{event_id}/sales/timeseries",
                "Tickets and revenue per minute (owner, admin)",
                "events",
            )
        },
        Route {
            success: (201, Some("QueuePlace")),
            errors: &[400, 401, 404, 422, 429],
            ..route(
                "post",
                "/api/events/{event_id}/queue",
                "Join the event's waiting room (joining again keeps the place)",
                "queue",
            )
        },
        Route {
            success: (200, Some("QueuePlace")),
            errors: &[400, 401, 404],
            ..route(
                "get",
                "/api/events/{event_id}/queue",
                "The caller's place in the waiting room",
                "queue",
            )
        },
        Route {
            success: (200, Some("QueueStats")),
            errors: &[400, 401, 403, 404],
            ..route(
                "get",
                "/api/events/{event_id}/queue/stats",
                "Waiting-room figures (owner, admin)",
                "queue",
            )
        },
        Route {
            query: Some("PageQuery"),
            success: (200, Some("BookingPage")),
            errors: &[400, 401, 422],
            read_model: true,
            ..route(
                "get",
                "/api/bookings",
                "The caller's bookings, newest first",
                "bookings",
            )
        },
        Route {
            success: (200, Some("BookingView")),
            errors: &[400, 401, 404],
            read_model: true,
            ..route(
                "get",
                "/api/bookings/{booking_id}",
                "One of the caller's bookings",
                "bookings",
            )
        },
        Route {
            request: Some("PayRequest"),
            success: (202, Some("BookingStatusResponse")),
            errors: &[400, 401, 404, 409, 422],
            command: true,
            ..route(
                "post",
                "/api/bookings/{booking_id}/pay",
                "Pay a held booking",
                "bookings",
            )
        },
        Route {
            success: (202, Some("BookingStatusResponse")),
            errors: &[400, 401, 404, 409],
            command: true,
            ..route(
                "post",
                "/api/bookings/{booking_id}/cancel",
                "Cancel (held, pending) or refund (confirmed)",
                "bookings",
            )
        },
        Route {
            success: (200, Some("[InvoiceSummary]")),
            errors: &[401],
            read_model: true,
            ..route(
                "get",
                "/api/invoices",
                "The caller's invoices and credit notes, newest first",
                "bookings",
            )
        },
        Route {
            success: (200, Some("InvoiceDocument")),
            errors: &[400, 401, 404],
            read_model: true,
            ..route(
                "get",
                "/api/invoices/{invoice_id}",
                "One of the caller's invoices or credit notes, with its lines",
                "bookings",
            )
        },
        Route {
            success: (200, Some(PDF)),
            errors: &[400, 401, 404],
            read_model: true,
            ..route(
                "get",
                "/api/invoices/{invoice_id}/pdf",
                "The invoice or credit note as a PDF",
                "bookings",
            )
        },
        Route {
            success: (200, Some("[TicketView]")),
            errors: &[400, 401],
            read_model: true,
            ..route(
                "get",
                "/api/tickets",
                "The caller's tickets with their codes",
                "tickets",
            )
        },
        Route {
            request: Some("TicketQrRequest"),
            success: (200, Some(SVG)),
            errors: &[400, 401, 413, 415, 422],
            ..route(
                "post",
                "/api/tickets/qr",
                "A ticket's code as a QR code (SVG), for the web app",
                "tickets",
            )
        },
        Route {
            request: Some("TransferTicketRequest"),
            success: (202, Some("TicketTransferResponse")),
            errors: &[400, 401, 404, 409, 413, 415, 422, 503],
            command: true,
            ..route(
                "post",
                "/api/tickets/{ticket_id}/transfer",
                "Transfer one of the caller's tickets to a registered user (a new ticket and code)",
                "tickets",
            )
        },
        Route {
            success: (200, Some(PDF)),
            errors: &[400, 401, 404],
            read_model: true,
            ..route(
                "get",
                "/api/tickets/{ticket_id}/pdf",
                "One of the caller's tickets as a PDF with its QR code",
                "tickets",
            )
        },
        Route {
            request: Some("CheckInRequest"),
            success: (200, Some("CheckInResponse")),
            errors: &[400, 401, 403, 409, 422],
            command: true,
            ..route(
                "post",
                "/api/checkin",
                "Check a ticket in (staff, or the event's organizer)",
                "tickets",
            )
        },
        Route {
            auth: false,
            request: Some("WebhookNotification"),
            success: (200, None),
            errors: &[400, 401, 422],
            command: true,
            ..route(
                "post",
                "/api/payments/webhook",
                "Payment provider notifications (X-Signature)",
                "payments",
            )
        },
    ]
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn body_schema(spec: &str) -> Value {
    match spec.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        Some(item) => json!({"type": "array", "items": reference(item)}),
        None => reference(spec),
    }
}

fn problem(status: u16) -> Value {
    let description = match status {
        400 => {
            "The body or a parameter does not deserialize (malformed JSON, wrong types, unknown or missing fields, malformed UUID or position token)"
        }
        401 => "Missing, invalid or expired token (or webhook signature)",
        403 => {
            "Authenticated but lacking the role, or not the owner of a published event; a booking on a queue-enabled event without a valid admission has type `/problems/queue-required`"
        }
        404 => "Unknown resource, or a private one of someone else",
        409 => {
            "Conflicts with the current state (seats taken: `unavailable`, `unavailable_sections`; second scan: `checked_in_at`; void ticket: `ticket_status`)"
        }
        413 => "Body over 1 MiB",
        415 => "A JSON body without Content-Type: application/json",
        422 => "Well-formed but breaks a rule; field rules list `errors: [{field, message}]`",
        429 => "Rate limited; see Retry-After",
        503 => "Temporarily unavailable (contention or overload); see Retry-After",
        _ => "Error",
    };
    json!({
        "description": description,
        "content": {"application/problem+json": {"schema": reference("Problem")}}
    })
}

/// Query-string parameters from an object schema's properties.
fn query_parameters(schema: &Value) -> Vec<Value> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    schema["properties"]
        .as_object()
        .map(|props| {
            props
                .iter()
                .map(|(name, prop)| {
                    json!({"name": name, "in": "query", "required": required.contains(&name.as_str()), "schema": prop})
                })
                .collect()
        })
        .unwrap_or_default()
}

fn operation(route: &Route, bodies: &BTreeMap<String, Value>) -> Value {
    let mut op = Map::new();
    op.insert("summary".into(), route.summary.into());
    op.insert("tags".into(), json!([route.tag]));
    op.insert(
        "operationId".into(),
        format!(
            "{}{}",
            route.method,
            route.path.replace(['/', '{', '}'], "_")
        )
        .into(),
    );
    let mut parameters: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}))
        .collect();
    if let Some(query) = route.query.and_then(|q| bodies.get(q)) {
        parameters.extend(query_parameters(query));
    }
    if route.read_model {
        parameters.push(json!({"name": "X-Min-Position", "in": "header", "required": false,
            "description": "Wait (at most 5 s) until the read models have applied these events; malformed → 400",
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]*$", "maxLength": 8192}}));
    }
    if route.command && route.method == "post" {
        parameters.push(
            json!({"name": "Idempotency-Key", "in": "header", "required": false,
            "description": "Replays the first answer for the same key and body within 24 h",
            "schema": {"type": "string", "maxLength": 255}}),
        );
    }
    if route.path == "/api/payments/webhook" {
        parameters.push(
            json!({"name": "X-Signature", "in": "header", "required": true,
            "schema": {"type": "string", "pattern": "^t=[0-9]+,v1=[0-9a-f]+$"}}),
        );
    }
    op.insert("parameters".into(), Value::Array(parameters));
    if let Some(request) = route.request {
        op.insert(
            "requestBody".into(),
            json!({"required": route.path != "/api/events/{event_id}/publish",
                   "content": {"application/json": {"schema": reference(request)}}}),
        );
    }
    let mut responses = Map::new();
    let mut success = json!({"description": "Success"});
    match route.success.1 {
        Some(PDF) => {
            success["content"] = json!({"application/pdf":
                {"schema": {"type": "string", "contentMediaType": "application/pdf"}}});
        }
        Some(SVG) => {
            success["content"] = json!({"image/svg+xml":
                {"schema": {"type": "string", "contentMediaType": "image/svg+xml"}}});
        }
        Some(body) => {
            success["content"] = json!({"application/json": {"schema": body_schema(body)}});
        }
        None => {}
    }
    let mut headers = Map::new();
    if route.command {
        headers.insert("X-Event-Position".into(), json!({"description": "Position token of the events written", "schema": {"type": "string"}}));
    }
    if route.read_model {
        headers.insert("X-Consistency".into(), json!({"description": "`stale` when the X-Min-Position wait ran out", "schema": {"type": "string", "enum": ["stale"]}}));
    }
    if !headers.is_empty() {
        success["headers"] = Value::Object(headers);
    }
    responses.insert(route.success.0.to_string(), success);
    if route.path.ends_with("/availability") {
        responses.insert(
            "304".into(),
            json!({"description": "Not modified (If-None-Match matched the ETag)"}),
        );
    }
    for status in route.errors {
        responses.insert(status.to_string(), problem(*status));
    }
    op.insert("responses".into(), Value::Object(responses));
    if route.auth {
        op.insert("security".into(), json!([{"bearer": []}]));
    }
    Value::Object(op)
}

/// Moves every `$defs` entry into `components` and points `#/$defs/X` references there.
fn hoist(schema: &Value, components: &mut BTreeMap<String, Value>) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, value) in map {
                match key.as_str() {
                    "$defs" => {
                        for (name, def) in value.as_object().into_iter().flatten() {
                            let hoisted = hoist(def, components);
                            components.entry(name.clone()).or_insert(hoisted);
                        }
                    }
                    "$schema" => {}
                    "$ref" => {
                        let target = value
                            .as_str()
                            .unwrap_or_default()
                            .replace("#/$defs/", "#/components/schemas/");
                        out.insert(key.clone(), Value::String(target));
                    }
                    _ => {
                        out.insert(key.clone(), hoist(value, components));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| hoist(v, components)).collect()),
        other => other.clone(),
    }
}

pub fn document() -> Value {
    let bodies: BTreeMap<String, Value> = http_bodies().into_iter().collect();
    let mut components: BTreeMap<String, Value> = BTreeMap::new();
    for (name, schema) in &bodies {
        let hoisted = hoist(schema, &mut components);
        components.insert(name.clone(), hoisted);
    }
    let mut paths: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for route in routes() {
        paths
            .entry(route.path)
            .or_default()
            .insert(route.method.to_owned(), operation(&route, &bodies));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Ticketing on Kafka",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Public HTTP API (see API.md). Errors are application/problem+json (RFC 9457)."
        },
        "servers": [{"url": "http://127.0.0.1:8080"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r.clone());
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves_to_a_component() {
        let doc = document();
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("foreign ref {r}"));
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "{r} is not a component"
            );
        }
    }

    #[test]
    fn describes_every_route_of_the_contract() {
        let doc = document();
        for (method, path) in [
            ("post", "/api/auth/register"),
            ("get", "/api/events/{event_id}/availability"),
            ("post", "/api/bookings/{booking_id}/pay"),
            ("post", "/api/checkin"),
            ("post", "/api/tickets/{ticket_id}/transfer"),
            ("get", "/api/tickets/{ticket_id}/pdf"),
            ("post", "/api/payments/webhook"),
        ] {
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} missing"
            );
        }
    }
}
