//! Where the pay route leaves the provider's card token: the write side's `payment_tokens`
//! table, keyed by payment id, from which the saga takes it when it charges (its
//! `payment_tokens` module). Events carry the card's label instead, so no token reaches
//! Kafka, a read model or a dead-letter topic.
//!
//! The token is stored before the event that names its payment id is appended, not in the
//! same transaction: the store's append is one statement over the events of a whole batch of
//! units, and a fresh payment id cannot collide. So no event ever names a payment whose token
//! is missing. A refused append forgets the token again; a crash in between leaves a row no
//! event names, which the saga purges with every token older than a day.

use sqlx::PgPool;
use uuid::Uuid;

/// Stores `token` for `payment_id`; storing it again changes nothing.
pub async fn keep(pool: &PgPool, payment_id: Uuid, token: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO payment_tokens (payment_id, token) VALUES ($1, $2)
         ON CONFLICT (payment_id) DO NOTHING",
    )
    .bind(payment_id)
    .bind(token)
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets the token of a payment no event names (its request was refused).
pub async fn forget(pool: &PgPool, payment_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM payment_tokens WHERE payment_id = $1")
        .bind(payment_id)
        .execute(pool)
        .await?;
    Ok(())
}
