//! The request's correlation id (from `X-Request-Id`, set by the request-id layer when the
//! client sent none) and the event metadata built from it.

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use schemas::EventMetadata;
use uuid::Uuid;

use super::error::ApiError;

pub struct RequestContext {
    pub correlation_id: String,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let correlation_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| Uuid::new_v4().to_string());
        Ok(Self { correlation_id })
    }
}

impl RequestContext {
    /// Metadata stored with every event a command of this request writes.
    pub fn metadata(&self, user_id: Option<Uuid>) -> HashMap<String, String> {
        let mut meta = HashMap::from([(
            EventMetadata::CORRELATION_ID.to_owned(),
            self.correlation_id.clone(),
        )]);
        if let Some(user) = user_id {
            meta.insert(EventMetadata::USER_ID.to_owned(), user.to_string());
        }
        meta
    }
}
