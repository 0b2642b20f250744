//! The API's own description: `GET /api/openapi.json` (OpenAPI 3.1, built once from the
//! schemars types in `schemas::openapi`) and `GET /api/docs`, a browsable page bundled into
//! the binary that renders it (nothing is fetched from elsewhere).

use std::sync::LazyLock;

use axum::Json;
use axum::response::Html;
use serde_json::Value;

static DOCUMENT: LazyLock<Value> = LazyLock::new(schemas::openapi::document);

pub async fn openapi() -> Json<Value> {
    Json(DOCUMENT.clone())
}

pub async fn page() -> Html<&'static str> {
    Html(include_str!("assets/docs.html"))
}
