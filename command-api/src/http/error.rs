//! `ApiError`: every failure a client can see, rendered as RFC 9457 problem+json with the
//! statuses of API.md. Unexpected failures are logged once with their cause chain and answer
//! an opaque 500.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::FieldError;
use serde_json::{Map, Value, json};

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body or a parameter does not deserialize into its type.
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed input breaking field rules (lengths, formats); lists every field.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// A queue-enabled event refuses bookings from users it has not admitted (403 with its
    /// own problem type, so clients can send the buyer to the waiting room).
    #[error("{0}")]
    QueueRequired(String),
    #[error("{0}")]
    NotFound(String),
    /// Conflict with current state; `extensions` become top-level members.
    #[error("{detail}")]
    Conflict {
        detail: String,
        extensions: Map<String, Value>,
    },
    #[error("request body exceeds 1 MiB")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Well-formed but breaks a business rule.
    #[error("{detail}")]
    Unprocessable {
        detail: String,
        extensions: Map<String, Value>,
    },
    /// A business rule with a problem type of its own (`/problems/{slug}`), so clients can
    /// tell it from other 422s: an invalid voucher, a customer limit.
    #[error("{detail}")]
    Rule {
        slug: &'static str,
        title: &'static str,
        detail: String,
        extensions: Map<String, Value>,
    },
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::Conflict {
            detail: detail.into(),
            extensions: Map::new(),
        }
    }

    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::Unprocessable {
            detail: detail.into(),
            extensions: Map::new(),
        }
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::Internal(err.into())
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::Rule { slug, title, .. } => (StatusCode::UNPROCESSABLE_ENTITY, slug, title),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Malformed request"),
            Self::Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Validation failed",
            ),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            Self::QueueRequired(_) => (
                StatusCode::FORBIDDEN,
                "queue-required",
                "Admission through the waiting room required",
            ),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Self::Conflict { .. } => (StatusCode::CONFLICT, "conflict", "Conflict"),
            Self::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
            ),
            Self::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            Self::Unprocessable { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "rule-violated",
                "Request breaks a rule",
            ),
            Self::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
            ),
            Self::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Temporarily unavailable",
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal server error",
            ),
        }
    }
}

/// Builds a problem+json response by hand, for layers that have no `ApiError` at hand.
pub fn problem(
    status: StatusCode,
    slug: &str,
    title: &str,
    detail: &str,
    extensions: Map<String, Value>,
) -> Response {
    let mut body = json!({
        "type": format!("/problems/{slug}"),
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
    });
    if let Value::Object(obj) = &mut body {
        // Extensions never replace the RFC 9457 members.
        for (key, value) in extensions {
            if !matches!(
                key.as_str(),
                "type" | "title" | "status" | "detail" | "instance"
            ) {
                obj.insert(key, value);
            }
        }
    }
    let mut response = (status, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.parts();
        let mut extensions = Map::new();
        let detail = match &self {
            Self::Internal(err) => {
                tracing::error!(error = ?err, "request failed");
                "an unexpected error occurred; it has been logged".to_owned()
            }
            Self::Validation(errors) => {
                extensions.insert("errors".into(), json!(errors));
                "one or more fields break a rule; see errors".to_owned()
            }
            Self::Conflict {
                detail,
                extensions: ext,
            }
            | Self::Unprocessable {
                detail,
                extensions: ext,
            }
            | Self::Rule {
                detail,
                extensions: ext,
                ..
            } => {
                extensions.extend(ext.clone());
                detail.clone()
            }
            other => other.to_string(),
        };
        let mut response = problem(status, slug, title, &detail, extensions);
        match &self {
            Self::Unauthorized(_) => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::RateLimited { retry_after_secs } => {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after_secs.max(&1).to_owned()),
                );
            }
            Self::Unavailable(_) => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        Self::Internal(err.into())
    }
}

/// Fallback for unknown paths.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such resource".into())
}

/// Fallback for a known path with a method it does not support.
pub async fn method_not_allowed() -> Response {
    problem(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this resource does not support the method",
        Map::new(),
    )
}
