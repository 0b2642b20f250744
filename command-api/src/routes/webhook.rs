//! `POST /api/payments/webhook`: the payment provider's answers. The signature
//! (`X-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`) is checked on the raw
//! body before anything is parsed; older than five minutes, missing or wrong → 401. A
//! notification already applied answers 200 without effect.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use chrono::Utc;
use domain::payment::PaymentCommand;
use schemas::api::bookings::{WebhookNotification, WebhookType};

use crate::http::consistency::Written;
use crate::http::context::RequestContext;
use crate::http::error::ApiError;
use crate::http::store_error::from_execute;
use crate::state::AppState;

pub async fn webhook(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let header = headers.get("x-signature").and_then(|v| v.to_str().ok());
    schemas::webhook::verify(&state.webhook_secret, header, &body, Utc::now().timestamp())
        .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    let notification: WebhookNotification = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("not a provider notification: {e}")))?;
    if notification.notification_id.is_empty() || notification.notification_id.len() > 200 {
        return Err(ApiError::BadRequest(
            "notification_id must be 1 to 200 characters".into(),
        ));
    }
    let seen: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM payment_notifications WHERE notification_id = $1)",
    )
    .bind(&notification.notification_id)
    .fetch_one(&state.pool)
    .await?;
    if seen {
        return Ok((StatusCode::OK, Written(Default::default())));
    }
    let payment_id = notification.payment_id.to_string();
    let (payment, _) = state
        .payments
        .load(&payment_id)
        .await
        .map_err(|e| ApiError::internal(anyhow::Error::new(e)))?;
    if !payment.exists() || payment.booking_id != Some(notification.booking_id) {
        return Err(ApiError::unprocessable("no such payment for this booking"));
    }
    let now = Utc::now();
    let command = match notification.kind {
        WebhookType::PaymentSucceeded => PaymentCommand::RecordSuccess { now },
        WebhookType::PaymentFailed => PaymentCommand::RecordFailure {
            reason: notification
                .reason
                .clone()
                .unwrap_or_else(|| "the payment was declined".into()),
            now,
        },
        WebhookType::RefundSucceeded => PaymentCommand::RecordRefund { now },
    };
    let executed = state
        .payments
        .execute(&payment_id, command, &ctx.metadata(None))
        .await
        .map_err(|e| from_execute(e, |e| ApiError::unprocessable(e.to_string())))?;
    // Recorded after the effect: a crash in between redelivers, and the command is idempotent.
    sqlx::query(
        "INSERT INTO payment_notifications (notification_id) VALUES ($1) ON CONFLICT DO NOTHING",
    )
    .bind(&notification.notification_id)
    .execute(&state.pool)
    .await?;
    Ok((StatusCode::OK, Written(executed.position())))
}
