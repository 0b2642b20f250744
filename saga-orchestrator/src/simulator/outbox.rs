//! Delivers the webhooks the ledger owes, signed, until the receiver accepts them; survives
//! restarts because what is owed is in the ledger's database.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub struct Sender {
    pub pool: PgPool,
    pub url: String,
    pub secret: Vec<u8>,
    pub client: reqwest::Client,
}

impl Sender {
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let sent = match self.send_due().await {
                Ok(n) => n,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read the webhook outbox");
                    0
                }
            };
            if sent == 0 {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        }
    }

    async fn send_due(&self) -> Result<usize, sqlx::Error> {
        let due: Vec<(Uuid, serde_json::Value)> = sqlx::query_as(
            "SELECT notification_id, payload FROM payment_sim.outbox
              WHERE sent_at IS NULL AND due_at <= now() ORDER BY due_at LIMIT 50",
        )
        .fetch_all(&self.pool)
        .await?;
        let count = due.len();
        let sends = due
            .into_iter()
            .map(|(id, payload)| async move { (id, self.deliver(&payload).await) });
        for (id, delivered) in futures::future::join_all(sends).await {
            if delivered {
                sqlx::query(
                    "UPDATE payment_sim.outbox SET sent_at = now() WHERE notification_id = $1",
                )
                .bind(id)
                .execute(&self.pool)
                .await?;
            } else {
                sqlx::query(
                    "UPDATE payment_sim.outbox SET attempts = attempts + 1,
                            due_at = now() + make_interval(secs => least(30, 0.2 * power(2, least(attempts, 8))))
                      WHERE notification_id = $1",
                )
                .bind(id)
                .execute(&self.pool)
                .await?;
            }
        }
        Ok(count)
    }

    /// Whether the receiver took the notification (2xx), or refused it for good (4xx other
    /// than 401, which may be a clock or secret problem worth retrying).
    async fn deliver(&self, payload: &serde_json::Value) -> bool {
        let body = payload.to_string();
        let signature = schemas::webhook::sign(
            &self.secret,
            chrono::Utc::now().timestamp(),
            body.as_bytes(),
        );
        let reply = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("x-signature", signature)
            .body(body)
            .send()
            .await;
        match reply {
            Ok(r) if r.status().is_success() => true,
            Ok(r) if r.status().is_client_error() && r.status().as_u16() != 401 => {
                tracing::warn!(status = %r.status(), "webhook refused for good");
                true
            }
            Ok(r) => {
                tracing::debug!(status = %r.status(), "webhook not accepted yet");
                false
            }
            Err(err) => {
                tracing::debug!(error = %err, "webhook receiver unreachable");
                false
            }
        }
    }
}
