//! The simulator's ledger: charges and refunds, one per payment id, and the webhooks owed,
//! written in the same transaction (so an answer is never lost or invented).

use std::time::Duration;

use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::provider::{ChargeRequest, RefundRequest};

pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    // Several simulators starting at once must not race on CREATE.
    sqlx::query("SELECT pg_advisory_xact_lock(8090)")
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(
        "CREATE SCHEMA IF NOT EXISTS payment_sim;
         CREATE TABLE IF NOT EXISTS payment_sim.charges (
             payment_id   uuid PRIMARY KEY,
             booking_id   uuid   NOT NULL,
             amount_minor bigint NOT NULL,
             currency     text   NOT NULL,
             token        text   NOT NULL,
             status       text   NOT NULL,
             created_at   timestamptz NOT NULL DEFAULT now());
         CREATE TABLE IF NOT EXISTS payment_sim.refunds (
             payment_id uuid PRIMARY KEY REFERENCES payment_sim.charges,
             created_at timestamptz NOT NULL DEFAULT now());
         CREATE TABLE IF NOT EXISTS payment_sim.outbox (
             notification_id uuid PRIMARY KEY,
             payload         jsonb NOT NULL,
             due_at          timestamptz NOT NULL,
             sent_at         timestamptz,
             attempts        integer NOT NULL DEFAULT 0);
         CREATE INDEX IF NOT EXISTS outbox_due_idx ON payment_sim.outbox (due_at) WHERE sent_at IS NULL;",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

fn notification(
    kind: &str,
    payment_id: Uuid,
    booking_id: Uuid,
    amount_minor: i64,
    currency: &str,
    reason: Option<&str>,
) -> serde_json::Value {
    let mut body = serde_json::json!({
        "notification_id": Uuid::new_v4().to_string(),
        "payment_id": payment_id,
        "booking_id": booking_id,
        "type": kind,
        "amount": {"amount_minor": amount_minor, "currency": currency},
        "occurred_at": chrono::Utc::now(),
    });
    if let (Some(reason), Some(obj)) = (reason, body.as_object_mut()) {
        obj.insert("reason".into(), reason.into());
    }
    body
}

async fn owe(
    tx: &mut sqlx::PgConnection,
    body: &serde_json::Value,
    after: Duration,
) -> Result<(), sqlx::Error> {
    let id: Uuid = body["notification_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(Uuid::new_v4);
    sqlx::query(
        "INSERT INTO payment_sim.outbox (notification_id, payload, due_at)
         VALUES ($1, $2, now() + make_interval(secs => $3))",
    )
    .bind(id)
    .bind(body)
    .bind(after.as_secs_f64())
    .execute(tx)
    .await?;
    Ok(())
}

/// Records a charge once per payment id and schedules its answer. Returns the charge status.
pub async fn charge(
    pool: &PgPool,
    request: &ChargeRequest,
    latency: Duration,
) -> Result<String, sqlx::Error> {
    let status = match request.token.as_str() {
        "tok_visa" => "succeeded",
        "tok_timeout" => "pending",
        _ => "declined",
    };
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO payment_sim.charges (payment_id, booking_id, amount_minor, currency, token, status)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (payment_id) DO NOTHING",
    )
    .bind(request.payment_id)
    .bind(request.booking_id)
    .bind(request.amount.amount_minor)
    .bind(&request.amount.currency)
    .bind(&request.token)
    .bind(status)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !inserted {
        // Asked again (a retry): the first charge stands; answer with its status.
        let existing: String =
            sqlx::query_scalar("SELECT status FROM payment_sim.charges WHERE payment_id = $1")
                .bind(request.payment_id)
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        return Ok(existing);
    }
    let (amount, currency) = (
        request.amount.amount_minor,
        request.amount.currency.as_str(),
    );
    match status {
        "succeeded" => {
            let body = notification(
                "payment.succeeded",
                request.payment_id,
                request.booking_id,
                amount,
                currency,
                None,
            );
            owe(&mut tx, &body, latency).await?;
        }
        "declined" => {
            let reason = if request.token == "tok_decline" {
                "card_declined"
            } else {
                "invalid_token"
            };
            let body = notification(
                "payment.failed",
                request.payment_id,
                request.booking_id,
                amount,
                currency,
                Some(reason),
            );
            owe(&mut tx, &body, latency).await?;
        }
        _ => {} // tok_timeout: accepted, never answered
    }
    tx.commit().await?;
    Ok(status.to_owned())
}

/// Refunds a captured charge once. False when nothing was captured.
pub async fn refund(pool: &PgPool, request: &RefundRequest) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let charge: Option<(Uuid, i64, String, String)> = sqlx::query_as(
        "SELECT booking_id, amount_minor, currency, status FROM payment_sim.charges
          WHERE payment_id = $1 FOR UPDATE",
    )
    .bind(request.payment_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((booking_id, amount, currency, status)) = charge else {
        return Ok(false);
    };
    if status != "succeeded" {
        return Ok(false);
    }
    let inserted = sqlx::query(
        "INSERT INTO payment_sim.refunds (payment_id) VALUES ($1) ON CONFLICT DO NOTHING",
    )
    .bind(request.payment_id)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if inserted {
        let body = notification(
            "refund.succeeded",
            request.payment_id,
            booking_id,
            amount,
            &currency,
            None,
        );
        owe(&mut tx, &body, Duration::from_millis(50)).await?;
    }
    tx.commit().await?;
    Ok(true)
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct ChargeEntry {
    pub payment_id: Uuid,
    pub booking_id: Uuid,
    pub amount_minor: i64,
    pub currency: String,
    pub token: String,
    pub status: String,
    pub refunded: bool,
}

#[derive(Debug, Serialize)]
pub struct Ledger {
    pub charges: Vec<ChargeEntry>,
}

pub async fn entries(pool: &PgPool) -> Result<Ledger, sqlx::Error> {
    let charges = sqlx::query_as(
        "SELECT c.payment_id, c.booking_id, c.amount_minor, c.currency, c.token, c.status,
                (r.payment_id IS NOT NULL) AS refunded
           FROM payment_sim.charges c LEFT JOIN payment_sim.refunds r USING (payment_id)
          ORDER BY c.created_at",
    )
    .fetch_all(pool)
    .await?;
    Ok(Ledger { charges })
}
