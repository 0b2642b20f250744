//! The sent-log (`email_sent_log`): which Message-IDs the SMTP server has accepted.
//!
//! A mail is sent while holding a transaction-scoped advisory lock on its Message-ID, so two
//! instances handling the same event during a rebalance take turns and the second one finds
//! the first one's row. The row is written only after the server accepted the mail: a crash
//! (or a failed commit) between the two resends the mail later — with the SAME Message-ID,
//! so the duplicate is recognisable. Recording before sending would instead lose the mail.

use sqlx::PgConnection;
use uuid::Uuid;

/// Serialises every sender of `message_id` until the caller's transaction ends.
pub async fn lock(tx: &mut PgConnection, message_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(message_id)
        .execute(tx)
        .await?;
    Ok(())
}

pub async fn contains(tx: &mut PgConnection, message_id: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM email_sent_log WHERE message_id = $1)")
        .bind(message_id)
        .fetch_one(tx)
        .await
}

pub async fn record(
    tx: &mut PgConnection,
    message_id: &str,
    booking_id: Uuid,
    state: &str,
    recipient: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO email_sent_log (message_id, booking_id, state, recipient)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (message_id) DO NOTHING",
    )
    .bind(message_id)
    .bind(booking_id)
    .bind(state)
    .bind(recipient)
    .execute(tx)
    .await?;
    Ok(())
}
