//! The saga's side of the write side's card-token table (`payment_tokens`, filled by
//! command-api's pay route): a charge reads its token here, and forgets it once the provider
//! has accepted the charge — the provider charges a payment id at most once, so an accepted
//! charge is never asked for again. A token thus lives from the pay request to the
//! provider's acceptance, and never in an event.

use sqlx::PgPool;
use uuid::Uuid;

/// The token of `payment_id`, unless it was forgotten (its charge was accepted).
pub async fn token(pool: &PgPool, payment_id: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT token FROM payment_tokens WHERE payment_id = $1")
        .bind(payment_id)
        .fetch_optional(pool)
        .await
}

/// Forgets the token of `payment_id`, and every token older than a day (far past any
/// payment deadline: left by a charge that never got through, or by a pay request whose
/// process died before its event was appended).
pub async fn forget(pool: &PgPool, payment_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM payment_tokens
          WHERE payment_id = $1 OR created_at < now() - interval '1 day'",
    )
    .bind(payment_id)
    .execute(pool)
    .await?;
    Ok(())
}
